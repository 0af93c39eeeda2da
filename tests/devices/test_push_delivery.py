"""Routing events to phone tokens and pushing them to APNs and FCM (fake providers on loopback)."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from ulid import ULID

from devices.api.kazoo_document import device_document_validate
from devices.models import DevicePush, PushAttempt, Registration
from devices.services import device_create, device_pushes_due, device_pushes_send
from events.services import event_ingest
from notifyhub.models import Account
from notifyhub.tenancy import HUB
from tests.devices.conftest import device_callbacks
from tests.push_fakes import Answer, fcm_error

pytestmark = pytest.mark.django_db

APP = "com.acme.phone"
IOS = "1" * 64
IOS_VOIP = "2" * 64
IOS_CHAT = "3" * 64
ANDROID = "fcm:android-token-1"


def register(account: str, device: str, mobile: str, registrations: dict) -> None:
    document = device_document_validate(
        app_name=APP,
        data={
            "mobile_device_id": mobile,
            "platform": "ios",
            "sip_proxy_server": "sip.test",
            "notification_registration_ids": registrations,
        },
    )
    device_create(account_id=account, app_name=APP, device_id=device, document=document)


def reg(provider: str, *preferences: str, push_type: str | None = None) -> dict:
    spec = {"notification_type": provider, "notification_preferences": list(preferences)}
    if push_type:
        spec["push_type"] = push_type
    return spec


@pytest.fixture
def phones(db) -> None:
    Account.objects.create(id="acme")
    Account.objects.create(id="globex")
    register("acme", "iphone", "m1", {IOS: reg("apns", "incoming_call", "new_voicemail")})
    register("acme", "android", "m2", {ANDROID: reg("fcm", "incoming_call", "chat")})
    register("acme", "voip", "m3", {IOS_VOIP: reg("apns", "incoming_call", push_type="voip")})
    register("acme", "chatty", "m4", {IOS_CHAT: reg("apns", "chat")})
    register("globex", "other", "m1", {"9" * 64: reg("apns", "incoming_call")})


def ingest(type_id: str, **payload) -> str:
    result = event_ingest(
        producer="test",
        reach=HUB,
        type_id=type_id,
        payload=payload,
        idempotency_key=uuid.uuid4().hex,
    )
    return result.event_id


def pushes_for(event_id: str) -> list[int]:
    return list(DevicePush.objects.filter(event_id=event_id).values_list("pk", flat=True))


def tokens_of(event_id: str) -> set[str]:
    return set(
        DevicePush.objects.filter(event_id=event_id).values_list("registration__token", flat=True)
    )


# --- Routing ---


def test_an_event_owes_one_push_per_token_that_wants_its_type(
    phones, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        event_id = ingest("incoming_call", account_id="acme", caller="+15550100")
    assert tokens_of(event_id) == {IOS, ANDROID, IOS_VOIP}
    # One send task for the batch, enqueued after commit (other channels add their own).
    assert len(device_callbacks(callbacks)) == 1


def test_device_id_targets_one_device(phones):
    event_id = ingest("incoming_call", account_id="acme", device_id="android")
    assert tokens_of(event_id) == {ANDROID}


def test_chat_reaches_only_tokens_that_prefer_chat(phones):
    assert tokens_of(ingest("chat", account_id="acme")) == {ANDROID, IOS_CHAT}


@pytest.mark.parametrize(
    ("type_id", "payload"),
    [
        ("incoming_call", {}),
        ("incoming_call", {"account_id": "nobody"}),
        ("newMessage", {"account_id": "acme"}),
    ],
)
def test_events_without_a_matching_account_or_type_owe_nothing(phones, type_id, payload):
    assert tokens_of(ingest(type_id, **payload)) == set()


def test_a_deactivated_token_is_not_routed(phones):
    Registration.objects.filter(token=IOS).update(active=False)
    assert IOS not in tokens_of(ingest("incoming_call", account_id="acme"))


# --- APNs ---


def test_apns_push_is_http2_with_a_valid_provider_token(phones, push_fakes):
    event_id = ingest("incoming_call", account_id="acme", device_id="iphone", message="Bob")
    result = device_pushes_send(push_ids=pushes_for(event_id))
    assert result.sent == 1
    assert push_fakes.apns.rejected == []
    [request] = push_fakes.apns.requests
    assert request["http_version"] == "2"
    assert request["token"] == IOS
    assert request["jwt"]["iss"] == "TEAM123456"
    headers = request["headers"]
    assert headers["apns-topic"] == APP
    assert headers["apns-push-type"] == "alert"
    assert headers["apns-priority"] == "10"
    assert headers["apns-id"] == str(ULID.from_str(event_id).to_uuid())
    assert headers["apns-collapse-id"] == event_id
    assert request["payload"]["event_id"] == event_id
    assert request["payload"]["data"]["message"] == "Bob"
    push = DevicePush.objects.get(event_id=event_id)
    assert push.status == DevicePush.Status.SENT
    assert push.sent_at is not None
    attempt = PushAttempt.objects.get(push=push)
    assert (attempt.event_id, attempt.status_code, attempt.provider) == (event_id, 200, "apns")
    assert attempt.device.device_id == "iphone"
    assert attempt.registration.token == IOS
    assert attempt.message_id == headers["apns-id"]


def test_voip_registrations_get_the_voip_push_type_and_topic(phones, push_fakes):
    event_id = ingest("incoming_call", account_id="acme", device_id="voip")
    device_pushes_send(push_ids=pushes_for(event_id))
    [request] = push_fakes.apns.requests
    assert request["headers"]["apns-push-type"] == "voip"
    assert request["headers"]["apns-topic"] == f"{APP}.voip"
    assert request["headers"]["apns-priority"] == "10"


def test_other_events_are_normal_priority(phones, push_fakes):
    event_id = ingest("chat", account_id="acme")
    device_pushes_send(push_ids=pushes_for(event_id))
    [apns] = push_fakes.apns.requests
    assert apns["headers"]["apns-priority"] == "5"
    [fcm] = push_fakes.fcm.requests
    assert fcm["message"]["android"]["priority"] == "NORMAL"


def test_the_apns_topic_setting_overrides_the_app_name(phones, push_fakes, settings):
    settings.NOTIFYHUB_APNS_TOPIC = "com.acme.bundle"
    event_id = ingest("incoming_call", account_id="acme", device_id="iphone")
    device_pushes_send(push_ids=pushes_for(event_id))
    assert push_fakes.apns.requests[0]["headers"]["apns-topic"] == "com.acme.bundle"


def test_a_payload_too_big_for_apns_is_cut_to_the_event_reference(phones, push_fakes):
    event_id = ingest("incoming_call", account_id="acme", device_id="iphone", blob="x" * 6000)
    result = device_pushes_send(push_ids=pushes_for(event_id))
    assert result.sent == 1
    payload = push_fakes.apns.requests[0]["payload"]
    assert payload["truncated"] is True
    assert payload["event_id"] == event_id
    assert "data" not in payload


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (Answer(410, {"reason": "Unregistered", "timestamp": 1700000000000}), "Unregistered"),
        (Answer(400, {"reason": "BadDeviceToken"}), "BadDeviceToken"),
    ],
)
def test_an_apns_invalid_token_deactivates_the_registration(phones, push_fakes, answer, reason):
    push_fakes.apns.script(IOS, answer)
    event_id = ingest("incoming_call", account_id="acme", device_id="iphone")
    result = device_pushes_send(push_ids=pushes_for(event_id))
    assert result.invalid == 1
    registration = Registration.objects.get(token=IOS)
    assert not registration.active
    assert registration.deactivation_reason == reason
    assert registration.deactivated_at is not None
    assert DevicePush.objects.get(event_id=event_id).status == DevicePush.Status.INVALID_TOKEN
    assert PushAttempt.objects.get(event_id=event_id).reason == reason
    assert tokens_of(ingest("incoming_call", account_id="acme", device_id="iphone")) == set()


def test_a_429_is_retried_no_sooner_than_retry_after(phones, push_fakes):
    push_fakes.apns.script(IOS, Answer(429, {"reason": "TooManyRequests"}, {"retry-after": "120"}))
    event_id = ingest("incoming_call", account_id="acme", device_id="iphone")
    before = timezone.now()
    result = device_pushes_send(push_ids=pushes_for(event_id))
    assert list(result.retries.due_in) == pushes_for(event_id)
    assert result.retries.soonest >= 119
    push = DevicePush.objects.get(event_id=event_id)
    assert push.status == DevicePush.Status.PENDING
    assert push.next_attempt_at >= before + timedelta(seconds=120)

    # Not due yet: sending again does nothing.
    assert device_pushes_send(push_ids=[push.pk]).sent == 0
    DevicePush.objects.filter(pk=push.pk).update(next_attempt_at=timezone.now())
    assert device_pushes_send(push_ids=[push.pk]).sent == 1
    push.refresh_from_db()
    assert (push.status, push.attempts) == (DevicePush.Status.SENT, 2)
    assert list(
        PushAttempt.objects.filter(push=push).order_by("id").values_list("status_code", flat=True)
    ) == [429, 200]


def test_server_errors_back_off_and_give_up_after_the_last_attempt(phones, push_fakes, settings):
    settings.NOTIFYHUB_PUSH_MAX_ATTEMPTS = 2
    push_fakes.apns.script(
        IOS,
        Answer(503, {"reason": "ServiceUnavailable"}),
        Answer(500, {"reason": "InternalServerError"}),
    )
    event_id = ingest("incoming_call", account_id="acme", device_id="iphone")
    [push_id] = pushes_for(event_id)
    first = device_pushes_send(push_ids=[push_id])
    assert first.retries.soonest == pytest.approx(settings.NOTIFYHUB_PUSH_BACKOFF, abs=1)
    DevicePush.objects.filter(pk=push_id).update(next_attempt_at=timezone.now())
    second = device_pushes_send(push_ids=[push_id])
    assert second.failed == 1
    assert DevicePush.objects.get(pk=push_id).status == DevicePush.Status.FAILED
    assert Registration.objects.get(token=IOS).active


def test_sending_twice_pushes_once(phones, push_fakes):
    event_id = ingest("incoming_call", account_id="acme", device_id="iphone")
    ids = pushes_for(event_id)
    device_pushes_send(push_ids=ids)
    assert device_pushes_send(push_ids=ids).sent == 0
    assert len(push_fakes.apns.requests) == 1


def test_a_lost_lease_is_due_for_the_sweep(phones, push_fakes, settings):
    event_id = ingest("incoming_call", account_id="acme", device_id="iphone")
    [push_id] = pushes_for(event_id)
    assert push_id not in device_pushes_due(limit=100)  # Its own task is still queued.
    DevicePush.objects.filter(pk=push_id).update(
        status=DevicePush.Status.SENDING, claimed_until=timezone.now() - timedelta(seconds=1)
    )
    assert push_id in device_pushes_due(limit=100)
    assert device_pushes_send(push_ids=[push_id]).sent == 1


# --- FCM ---


def test_fcm_push_uses_a_service_account_token_and_high_priority(phones, push_fakes):
    event_id = ingest("incoming_call", account_id="acme", device_id="android", caller="x")
    result = device_pushes_send(push_ids=pushes_for(event_id))
    assert result.sent == 1
    assert push_fakes.fcm.rejected == []
    assert push_fakes.fcm.token_requests >= 1
    [request] = push_fakes.fcm.requests
    assert request["http_version"] == "2"
    message = request["message"]
    assert message["token"] == ANDROID
    assert message["android"]["priority"] == "HIGH"
    assert message["android"]["collapse_key"] == event_id
    assert message["data"]["event_id"] == event_id
    assert message["data"]["event_type"] == "incoming_call"
    attempt = PushAttempt.objects.get(event_id=event_id)
    assert attempt.provider == "fcm"
    assert attempt.message_id.startswith("projects/notifyhub-test/messages/")


def test_the_fcm_access_token_is_reused(phones, push_fakes):
    device_pushes_send(push_ids=pushes_for(ingest("incoming_call", account_id="acme")))
    requests = push_fakes.fcm.token_requests
    device_pushes_send(push_ids=pushes_for(ingest("chat", account_id="acme")))
    assert push_fakes.fcm.token_requests == requests


@pytest.mark.parametrize(
    "answer",
    [
        fcm_error(404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
        fcm_error(
            400,
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "The registration token is not a valid FCM registration token",
        ),
    ],
)
def test_an_fcm_invalid_token_deactivates_the_registration(phones, push_fakes, answer):
    push_fakes.fcm.script(ANDROID, answer)
    event_id = ingest("incoming_call", account_id="acme", device_id="android")
    device_pushes_send(push_ids=pushes_for(event_id))
    registration = Registration.objects.get(token=ANDROID)
    assert not registration.active
    assert registration.deactivation_reason in {"UNREGISTERED", "INVALID_ARGUMENT"}


def test_an_fcm_invalid_argument_not_about_the_token_keeps_the_token(phones, push_fakes):
    push_fakes.fcm.script(
        ANDROID, fcm_error(400, "INVALID_ARGUMENT", None, "Invalid value at 'message.ttl'")
    )
    event_id = ingest("incoming_call", account_id="acme", device_id="android")
    assert device_pushes_send(push_ids=pushes_for(event_id)).failed == 1
    assert Registration.objects.get(token=ANDROID).active


def test_fcm_quota_errors_are_retried(phones, push_fakes):
    push_fakes.fcm.script(
        ANDROID,
        Answer(
            429,
            {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": []}},
            {"retry-after": "30"},
        ),
    )
    event_id = ingest("incoming_call", account_id="acme", device_id="android")
    result = device_pushes_send(push_ids=pushes_for(event_id))
    assert result.retries.soonest >= 29
    assert DevicePush.objects.get(event_id=event_id).status == DevicePush.Status.PENDING
