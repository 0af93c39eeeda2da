"""The Events API: POST /v1/notifications, every status and body of its contract."""

import json

import pytest
from django.utils import timezone

from events.models import ApiKey, Event, EventType
from events.services import api_key_create
from notifyhub.tenancy import HUB
from subscriptions.models import Notification
from subscriptions.services import subscription_create

pytestmark = pytest.mark.django_db

URL = "/v1/notifications"


@pytest.fixture
def order_type():
    """The contract's example type, seeded by events' migration 0004."""
    return EventType.objects.get(id="order.accepted")


@pytest.fixture
def api_key():
    return api_key_create(name="shop").raw_key


def post(client, body, *, key=None, bearer=None, version="3.0", **headers):
    if key is not None:
        headers["HTTP_CLIENT_TOKEN"] = key
    if bearer is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {bearer}"
    if version is not None:
        headers["HTTP_API_VERSION"] = version
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **headers)


def event(type_id="order.accepted", **payload):
    return {"event": {"type": type_id, "payload": payload or {"order_id": "H1234567890"}}}


def test_an_event_is_stored_and_answered_with_its_id(client, order_type, api_key):
    response = post(client, event(order_id="H1", orderUUID="265cb601"), key=api_key)
    assert response.status_code == 200
    body = response.json()
    assert body == {"id": body["id"], "status": "processed"}
    stored = Event.objects.get(pk=body["id"])
    assert stored.type_id == "order.accepted"
    assert stored.payload == {"order_id": "H1", "orderUUID": "265cb601"}
    assert len(body["id"]) == 26


def test_a_bearer_token_with_events_publish_may_post(client, order_type, producer):
    response = post(client, event(), bearer=producer.token)
    assert response.status_code == 200
    assert Event.objects.get().producer == f"client:{producer.client_id}"


def test_a_bearer_token_without_events_publish_is_403(client, order_type, consumer):
    response = post(client, event(), bearer=consumer.token)
    assert response.status_code == 403
    assert response.json()["code"] == "NOT000002"
    assert not Event.objects.exists()


@pytest.mark.parametrize("key", [None, "nhk_unknown"])
def test_a_missing_or_unknown_client_token_is_401(client, order_type, key):
    response = post(client, event(), key=key)
    assert response.status_code == 401
    assert response.json()["code"] == "NOT000001"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_client_token_is_401(client, order_type, api_key):
    ApiKey.objects.update(revoked_at=timezone.now())
    assert post(client, event(), key=api_key).status_code == 401


def test_api_keys_are_stored_only_hashed(api_key):
    stored = ApiKey.objects.get()
    assert api_key not in (stored.key_hash, stored.hint, stored.name)
    assert stored.key_hash == ApiKey.hash(api_key)


def test_a_repeated_event_is_202_with_the_original_and_nothing_stored_again(
    client, order_type, api_key, consumer
):
    subscription_create(
        reach=HUB,
        client_id=consumer.client_id,
        event_type_ids=["order.accepted"],
        subscribed_by="t",
    )
    first = post(client, event(order_id="H1"), key=api_key).json()
    again = post(client, event(order_id="H1"), key=api_key)
    assert again.status_code == 202
    assert again["Idempotency-Replayed"] == "true"
    assert again.json()["id"] == first["id"]
    assert again.json()["status"] == "duplicate"
    created_at = Event.objects.get().created_at
    assert again.json()["created_at"] == created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert Event.objects.count() == 1
    assert Notification.objects.count() == 1


def test_the_idempotency_key_header_decides_what_is_a_duplicate(client, order_type, api_key):
    a = post(client, event(order_id="H1"), key=api_key, HTTP_IDEMPOTENCY_KEY="k-1")
    b = post(client, event(order_id="H1"), key=api_key, HTTP_IDEMPOTENCY_KEY="k-2")
    c = post(client, event(order_id="H1"), key=api_key, HTTP_IDEMPOTENCY_KEY="k-1")
    assert (a.status_code, b.status_code, c.status_code) == (200, 200, 202)
    assert c.json()["id"] == a.json()["id"]


def test_the_producers_event_id_is_the_key_when_no_header_is_sent(client, order_type, api_key):
    body = {"event": {"id": "evt-1", "type": "order.accepted", "payload": {"n": 1}}}
    assert post(client, body, key=api_key).status_code == 200
    assert post(client, body, key=api_key).status_code == 202


def test_the_same_key_with_another_payload_is_422_and_says_so(client, order_type, api_key):
    post(client, event(order_id="H1"), key=api_key, HTTP_IDEMPOTENCY_KEY="k-1")
    response = post(client, event(order_id="H2"), key=api_key, HTTP_IDEMPOTENCY_KEY="k-1")
    assert response.status_code == 422
    assert response.json()["field"] == "Idempotency-Key"
    assert "different" in response.json()["description"]
    assert Event.objects.count() == 1


def test_idempotency_keys_are_scoped_to_the_producer(client, order_type, api_key):
    other_key = api_key_create(name="other shop").raw_key
    a = post(client, event(order_id="H1"), key=api_key, HTTP_IDEMPOTENCY_KEY="k-1")
    b = post(client, event(order_id="H9"), key=other_key, HTTP_IDEMPOTENCY_KEY="k-1")
    assert (a.status_code, b.status_code) == (200, 200)
    assert a.json()["id"] != b.json()["id"]


def test_a_freed_key_after_the_window_may_be_used_again(client, order_type, api_key, settings):
    from datetime import timedelta

    from events.services import idempotency_keys_expire

    post(client, event(order_id="H1"), key=api_key)
    Event.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert idempotency_keys_expire() == 1
    assert post(client, event(order_id="H1"), key=api_key).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "event"),
        ({"event": {}}, "event.type"),
        ({"event": {"type": "order.accepted"}}, "event.payload"),
        ({"event": {"type": "order.accepted", "payload": "text"}}, "event.payload"),
        ({"event": {"type": "order.accepted", "payload": []}}, "event.payload"),
        ({"event": {"type": 5, "payload": {}}}, "event.type"),
        ({"event": "order"}, "event"),
        ([1, 2], "event"),
        ({"event": {"type": "no.such.type", "payload": {}}}, "event.type"),
    ],
)
def test_malformed_events_are_422_naming_the_field(client, order_type, api_key, body, field):
    response = post(client, body, key=api_key)
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "NOT000013"
    assert response.json()["field"] == field
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("raw_event", "field", "says"),
    [
        ('{"type": "order.accepted\\u0000", "payload": {}}', "event.type", "Null characters"),
        ('{"type": "order\\ud800", "payload": {}}', "event.type", "Surrogate characters"),
        ('{"type": "order.accepted", "id": "k\\u0000", "payload": {}}', "event.id", "Null"),
        ('{"type": "order.accepted", "payload": {"a": "x\\u0000"}}', "event.payload.a", "NUL"),
        (
            '{"type": "order.accepted", "payload": {"a": ["ok", "\\udc00"]}}',
            "event.payload.a.1",
            "NUL",
        ),
        ('{"type": "order.accepted", "payload": {"a": {"b\\u0000": 1}}}', "event.payload.a", "NUL"),
    ],
    ids=["type-nul", "type-surrogate", "id-nul", "payload-nul", "payload-surrogate", "key-nul"],
)
def test_text_no_database_can_store_is_422_naming_the_field(
    client, order_type, api_key, raw_event, field, says
):
    # JSON's \u0000 and lone \ud800 escapes decode to characters PostgreSQL cannot store
    # (text and jsonb refuse NUL) and UTF-8 cannot encode: refused, never a server error.
    response = post(client, '{"event": ' + raw_event + "}", key=api_key)
    assert response.status_code == 422, response.content
    assert response.json()["field"] == field
    assert says in response.json()["description"]
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("type_id", "key", "field"),
    [("order.accepted\x00", None, "event.type"), ("order.accepted", "k\x00", "Idempotency-Key")],
)
def test_the_service_refuses_unstorable_text_whoever_calls_it(order_type, type_id, key, field):
    from events.services import IngestRefused, event_ingest

    with pytest.raises(IngestRefused) as refused:
        event_ingest(producer="key:1", reach=HUB, type_id=type_id, payload={}, idempotency_key=key)
    assert refused.value.field == field
    assert not Event.objects.exists()


def test_a_payload_may_carry_a_backslash_u_text(client, order_type, api_key):
    # The text "\u0000" (a backslash, then u0000) is storable: only the character is refused.
    response = post(client, event(note="\\u0000"), key=api_key)
    assert response.status_code == 200, response.content
    assert Event.objects.get().payload == {"note": "\\u0000"}


def test_a_disabled_type_is_422(client, order_type, api_key):
    EventType.objects.filter(pk="order.accepted").update(enabled=False)
    response = post(client, event(), key=api_key)
    assert response.status_code == 422
    assert "disabled" in response.json()["description"]


@pytest.mark.parametrize("version", [None, "2.0", "3", ""])
def test_an_unsupported_api_version_is_422(client, order_type, api_key, version):
    response = post(client, event(), key=api_key, version=version)
    assert response.status_code == 422
    assert response.json()["field"] == "Api-Version"


def test_a_payload_failing_the_types_schema_is_422_naming_the_path(client, api_key):
    EventType.objects.create(
        id="order.shipped",
        schema={
            "type": "object",
            "required": ["order_id"],
            "properties": {"order_id": {"type": "string"}, "weight": {"type": "number"}},
        },
    )
    bad = post(client, event("order.shipped", order_id="H1", weight="heavy"), key=api_key)
    assert bad.status_code == 422
    assert bad.json()["field"] == "event.payload.weight"
    missing = post(client, event("order.shipped", weight=2), key=api_key)
    assert missing.status_code == 422
    assert "order_id" in missing.json()["description"]
    good = post(client, event("order.shipped", order_id="H1", weight=2.5), key=api_key)
    assert good.status_code == 200


def test_malformed_json_is_a_422_keeping_its_code(client, order_type, api_key):
    # The contract's only refusal of data is a 422; the code still says what was wrong.
    response = post(client, "{nope", key=api_key)
    assert response.status_code == 422
    assert response.json()["code"] == "NOT000008"
    assert not Event.objects.exists()


def test_a_body_over_the_limit_is_413(client, order_type, api_key, settings):
    settings.NOTIFYHUB_MAX_EVENT_BYTES = 2048
    response = post(client, event(blob="x" * 3000), key=api_key)
    assert response.status_code == 413
    assert response.json()["code"] == "NOT000006"
    assert not Event.objects.exists()


def test_routing_attributes_are_copied_from_the_payload(client, order_type):
    # The operator's own producer: it may address accounts and users of no tenant.
    key = api_key_create(name="operator", any_account=True).raw_key
    body = event(account_id="acme", user_id=42, ticket_number="T-7", other="x")
    event_id = post(client, body, key=key).json()["id"]
    stored = Event.objects.get(pk=event_id)
    assert (stored.account_id, stored.user_id, stored.ticket_number) == ("acme", "42", "T-7")


def test_event_ids_sort_by_creation(client, order_type, api_key):
    ids = [post(client, event(n=n), key=api_key).json()["id"] for n in range(5)]
    assert ids == sorted(ids)
