"""Real processes: a daphne and a Celery worker sharing one metrics directory, with no APNs key.

One scrape of the web process adds up the worker's counters (multiprocess mode); pushes to the
unconfigured provider fail at once with the reason on their attempt rows, warned about once and
without a traceback; the worker's heartbeat shows in /readyz; log lines carry the request id."""

import json
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devices.models import DevicePush, PushAttempt
from events.models import Event, EventType
from events.operational import PROVIDER_FAILING
from notifyhub.redis import redis_client, redis_key
from tests import servers
from tests.e2e.test_device_push_e2e import register_phone

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EVENTS = 3


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def hub(tmp_path: Path, log_dir: Path):
    EventType.objects.get_or_create(id="incoming_call")
    # The provider alert is throttled per deployment: forget an earlier test's.
    redis_client().delete(redis_key("operational", PROVIDER_FAILING, "apns"))
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "NOTIFYHUB_APNS_KEY_FILE": "",
        "NOTIFYHUB_HEARTBEAT_INTERVAL": "0.5",
    }
    (tmp_path / "metrics").mkdir()
    # The queue daphne enqueues on (its settings' default), as tests/faults/test_worker_killed.
    worker = servers.start_worker(log_dir, queue="notifyhub", concurrency=1, **env)
    web = servers.start_daphne(log_dir, **env)
    with servers.running(web, worker):
        yield web, worker


def test_one_scrape_adds_up_web_and_worker_and_unconfigured_pushes_fail_at_once(
    hub, member, producer
):
    web, worker = hub
    register_phone(member)
    for n in range(EVENTS):
        response = httpx.post(
            f"{web.url}/v1/notifications",
            json={"event": {"type": "incoming_call", "payload": {"account_id": "acme", "n": n}}},
            headers={"Authorization": f"Bearer {producer.token}", "Api-Version": "3.0"},
            timeout=10,
        )
        assert response.status_code == 200, response.text

    servers.wait_until(
        lambda: DevicePush.objects.filter(status=DevicePush.Status.FAILED).count() == EVENTS,
        timeout=60,
        what="every push failed",
        process=worker,
    )
    attempts = list(PushAttempt.objects.all())
    assert len(attempts) == EVENTS  # one attempt each: no retries of a configuration error
    assert {a.reason for a in attempts} == {"provider not configured"}
    assert all("NOTIFYHUB_APNS_KEY_FILE" in a.answer for a in attempts)
    # And the operator hears of it through the hub itself, once (throttled per provider).
    servers.wait_until(
        lambda: Event.objects.filter(type_id=PROVIDER_FAILING).exists(),
        timeout=30,
        what="the provider alert",
        process=worker,
    )
    [alert] = Event.objects.filter(type_id=PROVIDER_FAILING)
    assert alert.payload["provider"] == "apns"
    assert alert.payload["reason"] == "provider not configured"

    samples = scrape(web.url)
    stored = (("outcome", "stored"), ("type", "incoming_call"))
    ingested = ("notifyhub_events_ingested_total", stored)
    assert samples[ingested] == EVENTS  # recorded by the web process
    pushes = ("notifyhub_device_pushes_total", (("outcome", "failed"), ("provider", "apns")))
    assert samples[pushes] == EVENTS  # recorded by the worker's pool processes
    # The producer's events on the web process, and the provider alert the worker ingested.
    assert samples[("notifyhub_ingest_seconds_count", ())] == EVENTS + 1
    assert samples[("notifyhub_device_provider_configured", (("provider", "apns"),))] == 0

    log = worker.output()
    assert log.count("push provider apns is not configured") == 1  # once per process
    assert "Traceback" not in log
    assert log.count("WARNING devices.services") == EVENTS
    assert "succeeded in" not in log  # Celery's routine per-task line is gone

    servers.wait_until(
        lambda: httpx.get(f"{web.url}/readyz").json()["detail"]["worker"]["status"] == "ok",
        timeout=30,
        what="the worker's heartbeat in /readyz",
        process=web,
    )
    ages = scrape(web.url)
    assert ("notifyhub_heartbeat_age_seconds", (("role", "worker"),)) in ages


def test_a_request_id_is_on_the_log_lines_of_its_request(log_dir: Path):
    web = servers.start_daphne(log_dir, NOTIFYHUB_LOG_FORMAT="json")
    with servers.running(web):
        response = httpx.get(
            f"{web.url}/api/no-such-thing", headers={"X-Request-ID": "rid-ops-42"}, timeout=10
        )
        assert response.status_code == 404
        servers.wait_until(
            lambda: "rid-ops-42" in web.output(), timeout=10, what="the 404 logged", process=web
        )
    lines = [json.loads(line) for line in web.output().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "rid-ops-42"]
    assert mine, web.output()
    assert mine[0]["level"] == "WARNING"
    assert mine[0]["logger"] == "django.request"
    assert mine[0]["status_code"] == 404
