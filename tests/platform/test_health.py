"""Liveness and readiness against the real database, Redis and a real Celery worker."""

from tests import servers


def test_healthz_answers_without_any_backing_service(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_green_with_a_real_worker(client, celery_worker):
    # A worker answers pings once its consumer runs, which can take a moment on a busy machine.
    servers.wait_until(
        lambda: client.get("/readyz").status_code == 200, timeout=30, what="readyz green"
    )
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert {name: check["status"] for name, check in checks.items()} == {
        "database": "ok",
        "redis": "ok",
        "worker": "ok",
    }
