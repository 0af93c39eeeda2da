"""/healthz and /readyz: readiness is the database and Redis only; workers, beat and the push
providers are reported from heartbeats and settings, never making the web tier unready."""

import uuid

import pytest

from notifyhub.heartbeats import HeartbeatThread, heartbeat_write


@pytest.fixture
def own_heartbeats(settings):
    """A Redis prefix of this test's own, so no other test's worker beats in it."""
    settings.NOTIFYHUB_REDIS_PREFIX = f"test-health-{uuid.uuid4().hex[:8]}"


@pytest.mark.django_db
def test_readyz_is_ready_with_no_worker_and_no_beat_and_says_so(client, own_heartbeats):
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "redis": "ok",
    }
    assert body["detail"]["worker"] == {"status": "down", "detail": "down: no heartbeat seen"}
    assert body["detail"]["beat"]["status"] == "down"


@pytest.mark.django_db
def test_a_stale_heartbeat_shows_the_worker_down_with_its_age(client, settings, own_heartbeats):
    settings.NOTIFYHUB_HEARTBEAT_INTERVAL = 0.1
    heartbeat_write(role="worker", name="w1@host")
    settings.NOTIFYHUB_HEARTBEAT_INTERVAL = 0.0001  # the beat above is now many intervals old
    worker = client.get("/readyz").json()["detail"]["worker"]
    assert worker["status"] == "down"
    assert worker["detail"].startswith("down: last heartbeat")


@pytest.mark.django_db
def test_beat_heartbeats_show_beat_up_until_it_stops(client, own_heartbeats):
    thread = HeartbeatThread(role="beat", name="beat-test")
    thread.start()
    try:
        # The thread writes its first heartbeat at once; wait for it without a time threshold.
        thread.stopped.wait(0)
        for _ in range(100):
            if client.get("/readyz").json()["detail"]["beat"]["status"] == "ok":
                break
            thread.stopped.wait(0.05)
        beat = client.get("/readyz").json()["detail"]["beat"]
        assert beat["status"] == "ok"
        assert beat["detail"].startswith("up: 1 process")
    finally:
        thread.stop()
    assert client.get("/readyz").json()["detail"]["beat"]["status"] == "down"


@pytest.mark.django_db
def test_unconfigured_push_providers_are_named_in_readyz(client, settings, own_heartbeats):
    settings.NOTIFYHUB_APNS_KEY_FILE = ""
    settings.NOTIFYHUB_FCM_CREDENTIALS_FILE = "/etc/fcm.json"
    detail = client.get("/readyz").json()["detail"]
    assert detail["apns"]["status"] == "provider not configured"
    assert "NOTIFYHUB_APNS_KEY_FILE" in detail["apns"]["detail"]
    assert detail["fcm"] == {"status": "ok", "detail": "configured"}


@pytest.mark.django_db
def test_the_admin_index_shows_heartbeats_and_providers(admin_client, settings, own_heartbeats):
    settings.NOTIFYHUB_APNS_KEY_FILE = ""
    heartbeat_write(role="worker", name="w1@host")
    page = admin_client.get("/admin/").content.decode()
    assert "Worker heartbeat" in page
    assert "up: 1 process" in page
    assert "Beat heartbeat" in page
    assert "down: no heartbeat seen" in page
    assert "Push provider APNs" in page
    assert "provider not configured: NOTIFYHUB_APNS_KEY_FILE" in page


@pytest.mark.django_db
def test_readyz_with_redis_down_is_unavailable_and_cannot_read_heartbeats(client, settings):
    from notifyhub.redis import redis_client

    redis_client.cache_clear()
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    try:
        response = client.get("/readyz")
    finally:
        redis_client.cache_clear()
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["redis"]["status"] == "error"
    assert body["detail"]["worker"]["status"] == "unknown"
