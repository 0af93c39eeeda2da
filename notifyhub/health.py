"""Liveness and readiness probes, answered as JSON naming each check.

/readyz asks only what this tier needs to serve (the database, Redis) and answers in
milliseconds. What it cannot fix by itself (workers, beat, push providers) is reported in its
`detail`, from heartbeats and registered status functions, and never makes it unready: a web
process taken out of its load balancer because the workers are down only adds an outage.
"""

import logging
from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from notifyhub.heartbeats import liveness_read
from notifyhub.redis import redis_client

logger = logging.getLogger(__name__)

Status = dict[str, str]  # {"status": "ok" | "down" | "not configured" | ..., "detail": "..."}

_statuses: dict[str, Callable[[], Status]] = {}


def status_register(*, name: str, compute: Callable[[], Status]) -> None:
    """Add a part of the hub to /readyz's detail (called from an AppConfig.ready())."""
    _statuses[name] = compute


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


def statuses_read(*, redis_up: bool = True) -> dict[str, Status]:
    """Workers, beat and every registered part, as the operator should see them."""
    detail: dict[str, Status] = {}
    if redis_up:
        try:
            for role, liveness in liveness_read().items():
                detail[role] = {
                    "status": "ok" if liveness.up else "down",
                    "detail": liveness.describe(),
                }
        except Exception as exc:
            for role in ("worker", "beat"):
                detail[role] = {"status": "unknown", "detail": f"heartbeats unreadable: {exc}"}
    else:
        for role in ("worker", "beat"):
            detail[role] = {"status": "unknown", "detail": "heartbeats unreadable: Redis is down"}
    for name, compute in _statuses.items():
        try:
            detail[name] = compute()
        except Exception as exc:
            detail[name] = {"status": "unknown", "detail": str(exc) or type(exc).__name__}
    return detail


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """The database and Redis answer (503 naming what does not); `detail` says how workers, beat
    and the push providers are, without deciding readiness."""
    checks: dict[str, Status] = {}
    ready = True
    for name, check in (("database", _check_database), ("redis", _check_redis)):
        try:
            checks[name] = {"status": "ok", "detail": check()}
        except Exception as exc:
            logger.warning("readiness check %s failed: %s", name, exc)
            checks[name] = {"status": "error", "detail": str(exc) or type(exc).__name__}
            ready = False
    detail = statuses_read(redis_up=checks["redis"]["status"] == "ok")
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks, "detail": detail},
        status=200 if ready else 503,
    )
