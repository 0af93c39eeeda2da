"""Liveness and readiness against the real database, Redis and a real Celery worker."""

from tests import servers


def test_healthz_answers_without_any_backing_service(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_green_and_shows_a_real_workers_heartbeat(client, celery_worker):
    # The worker's heartbeat thread starts once its consumer is ready.
    servers.wait_until(
        lambda: client.get("/readyz").json()["detail"]["worker"]["status"] == "ok",
        timeout=30,
        what="the worker's heartbeat in /readyz",
    )
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    checks = response.json()["checks"]
    assert {name: check["status"] for name, check in checks.items()} == {
        "database": "ok",
        "redis": "ok",
    }
    assert response.json()["detail"]["worker"]["detail"].startswith("up:")
