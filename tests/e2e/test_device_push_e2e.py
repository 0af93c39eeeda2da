"""Device push end to end: an ingested incoming_call crosses a real Celery worker to fake APNs."""

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from devices.models import DevicePush, PushAttempt, Registration
from events.models import EventType
from tests import servers
from tests.push_fakes import Answer, PushFakes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

APP = "com.acme.phone"
TOKEN = "c0ffee" + "0" * 58


@pytest.fixture(scope="module")
def fakes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PushFakes]:
    push = PushFakes(Path(tmp_path_factory.mktemp("push-e2e")))
    yield push
    push.stop()


@pytest.fixture
def push_worker(
    transactional_db, celery_queue: str, log_dir: Path, fakes: PushFakes
) -> Iterator[servers.Process]:
    """A real worker whose settings point at the fake providers (through its environment)."""
    fakes.reset()
    process = servers.start_worker(log_dir, queue=celery_queue, **fakes.env())
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def event_types(transactional_db) -> None:
    """Transactional tests flush the seeded catalogue between tests; put the type back."""
    EventType.objects.get_or_create(id="incoming_call")


def register_phone(member) -> None:
    client = APIClient()
    client.credentials(HTTP_X_AUTH_TOKEN=member.token)
    response = client.put(
        f"/v2/accounts/acme/push_notification_subscriptions/{APP}/desk-phone",
        {
            "data": {
                "mobile_device_id": "iphone-15",
                "platform": "ios",
                "sip_proxy_server": "sip.acme.test",
                "notification_registration_ids": {
                    TOKEN: {
                        "notification_preferences": ["incoming_call"],
                        "notification_type": "apns",
                    }
                },
            }
        },
        format="json",
    )
    assert response.status_code == 201, response.content


def ingest_call(producer) -> str:
    response = producer.api().post(
        "/v1/notifications",
        {"event": {"type": "incoming_call", "payload": {"account_id": "acme", "from": "+1555"}}},
        format="json",
        HTTP_API_VERSION="3.0",
    )
    assert response.status_code == 200, response.content
    return response.json()["id"]


def wait_for(predicate, what: str, process: servers.Process, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout}s\n{process.output()}")


def test_an_incoming_call_reaches_apns_over_http2_with_a_valid_jwt(
    member, producer, push_worker, fakes
):
    register_phone(member)
    event_id = ingest_call(producer)

    wait_for(lambda: fakes.apns.requests, "fake APNs receiving the push", push_worker)
    assert fakes.apns.rejected == []
    [request] = fakes.apns.requests
    assert request["http_version"] == "2"
    assert request["token"] == TOKEN
    assert request["jwt"]["iss"] == "TEAM123456"  # Signature checked by the fake.
    assert request["headers"]["apns-priority"] == "10"
    assert request["headers"]["apns-topic"] == APP
    assert request["headers"]["apns-collapse-id"] == event_id
    assert request["payload"]["event_id"] == event_id

    wait_for(
        lambda: DevicePush.objects.filter(event_id=event_id, status="sent").exists(),
        "the push settled as sent",
        push_worker,
    )
    attempt = PushAttempt.objects.get(event_id=event_id)
    assert attempt.status_code == 200
    assert attempt.registration.token == TOKEN


def test_an_unregistered_answer_deactivates_the_token(member, producer, push_worker, fakes):
    register_phone(member)
    fakes.apns.script(TOKEN, Answer(410, {"reason": "Unregistered", "timestamp": 1700000000000}))
    event_id = ingest_call(producer)

    wait_for(
        lambda: not Registration.objects.get(token=TOKEN).active,
        "the token deactivated",
        push_worker,
    )
    registration = Registration.objects.get(token=TOKEN)
    assert registration.deactivation_reason == "Unregistered"
    assert DevicePush.objects.get(event_id=event_id).status == DevicePush.Status.INVALID_TOKEN
    assert PushAttempt.objects.get(event_id=event_id).status_code == 410
