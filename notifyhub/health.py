"""Liveness and readiness probes, answered as JSON naming each check."""

import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from notifyhub.celery import app as celery_app
from notifyhub.redis import redis_client

logger = logging.getLogger(__name__)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and serving requests."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_redis() -> str:
    redis_client().ping()
    return "ok"


def _check_worker() -> str:
    replies = celery_app.control.ping(timeout=2.0)
    if not replies:
        raise RuntimeError("no Celery worker answered within 2 s")
    return f"ok ({len(replies)} worker{'s' if len(replies) != 1 else ''})"


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """The database, Redis and at least one Celery worker answer; 503 naming what does not."""
    checks: dict[str, dict[str, str]] = {}
    ready = True
    for name, check in (
        ("database", _check_database),
        ("redis", _check_redis),
        ("worker", _check_worker),
    ):
        if name == "worker" and checks["redis"]["status"] != "ok":
            # Workers are reached through Redis; asking them now would only wait for a timeout.
            checks[name] = {"status": "error", "detail": "unreachable while Redis is down"}
            ready = False
            continue
        try:
            checks[name] = {"status": "ok", "detail": check()}
        except Exception as exc:
            logger.warning("readiness check %s failed: %s", name, exc)
            checks[name] = {"status": "error", "detail": str(exc) or type(exc).__name__}
            ready = False
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )
