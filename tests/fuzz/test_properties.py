"""Property tests for the parsers and validators, in process (the Django test client).

Random input never gets a 500: it is accepted, or refused in the platform's error body naming
the field, and a refused request stores nothing.
"""

import json
import unicodedata

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.models import Event, EventType
from events.services import canonical_json, payload_fingerprint
from notifyhub.models import identifier_validator
from notifyhub.tenancy import HUB
from subscriptions.models import Subscription
from subscriptions.services import subscription_create

FAST = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def assert_platform_error(response, *, status: set[int]) -> dict:
    assert response.status_code in status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert {"code", "description"} <= set(body) <= {"code", "description", "field"}
    return body


# --- Events API: POST /v1/notifications ---


def event_bodies(type_ids: list[str]):
    """Mostly well-formed bodies with random holes, and pure junk."""
    event = st.fixed_dictionaries(
        {},
        optional={
            "id": st.text(max_size=300) | json_values,
            "type": st.sampled_from(type_ids) | st.text(max_size=140) | json_values,
            "payload": st.dictionaries(st.text(max_size=8), json_values, max_size=4) | json_values,
        },
    )
    return st.fixed_dictionaries({"event": event}) | json_values


@pytest.mark.django_db
def test_random_ingest_bodies_are_stored_or_refused_with_the_field(producer):
    type_ids = list(EventType.objects.values_list("id", flat=True))
    client = producer.api()

    @FAST
    @given(body=event_bodies(type_ids))
    def check(body):
        before = Event.objects.count()
        response = client.post(
            "/v1/notifications",
            json.dumps(body),
            content_type="application/json",
            HTTP_API_VERSION="3.0",
        )
        if response.status_code in (200, 202):
            assert response.json()["id"]
            assert Event.objects.count() == before + (response.status_code == 200)
            return
        # The contract's only refusal of data is a 422 (docs/errors.md).
        error = assert_platform_error(response, status={401, 413, 422})
        assert error.get("field") or error["code"] == "NOT000008"
        assert Event.objects.count() == before

    check()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw", [b"{", b"\xff\xfe", b"[]", b'"x"', b"null", b"1e999", b'{"event": NaN}']
)
def test_ingest_refuses_bytes_that_are_not_an_event_object(producer, raw):
    response = producer.api().post(
        "/v1/notifications", raw, content_type="application/json", HTTP_API_VERSION="3.0"
    )
    assert_platform_error(response, status={422})
    assert not Event.objects.exists()


# --- Notification API: POST /notification/v1/subscriptions ---


def subscription_bodies(type_ids: list[str]):
    return (
        st.fixed_dictionaries(
            {},
            optional={
                "event_type_ids": st.lists(
                    st.sampled_from(type_ids) | st.text(max_size=10), max_size=3
                )
                | json_values,
                "client_id": st.from_regex(r"[a-z0-9._-]{1,20}", fullmatch=True) | json_values,
                "notification_url": st.sampled_from(["", None, "http://127.0.0.1:9/h", "ftp://x"])
                | json_values,
                "notification_page_size": st.integers(-5, 2000) | json_values,
                "retention_hours": st.integers(-5, 1000) | json_values,
                "delivery_policy": st.sampled_from(["once", "at_least_once"]) | json_values,
            },
        )
        | json_values
    )


@pytest.mark.django_db
def test_random_subscription_bodies_create_or_name_the_field(administrator):
    type_ids = list(EventType.objects.values_list("id", flat=True))
    client = administrator.api()

    @FAST
    @given(body=subscription_bodies(type_ids))
    def check(body):
        before = Subscription.objects.count()
        response = client.post(
            "/notification/v1/subscriptions", json.dumps(body), content_type="application/json"
        )
        if response.status_code == 201:
            assert Subscription.objects.count() == before + 1
            return
        error = assert_platform_error(response, status={400})
        assert error["code"] == "NOT000007"
        if isinstance(body, dict):
            assert error.get("field"), error
        assert Subscription.objects.count() == before

    check()


# --- size query parameter of the notification pages ---


@pytest.mark.django_db
def test_page_size_is_an_integer_in_range_or_a_size_error(consumer):
    type_id = EventType.objects.values_list("id", flat=True).first()
    subscription = subscription_create(
        reach=HUB, client_id=consumer.client_id, event_type_ids=[type_id], subscribed_by="alice"
    )
    client = consumer.api()
    path = f"/notification/v1/subscriptions/{subscription.id}/notifications"

    @FAST
    @given(size=st.integers(-10, 1100).map(str) | st.text(max_size=12))
    def check(size):
        response = client.get(path, {"size": size})
        if response.status_code == 200:
            assert 1 <= int(size) <= 1000
            return
        assert assert_platform_error(response, status={400})["field"] == "size"

    check()


# --- identifiers: letters of any script, ASCII digits, '.', '_', '-' ---


def is_identifier(value: str) -> bool:
    """What `^[\\p{L}0-9._-]+$` means, written out by Unicode category."""
    return bool(value) and all(
        unicodedata.category(c).startswith("L") or c in "0123456789._-" for c in value
    )


def validates(value: str) -> bool:
    try:
        identifier_validator(value)
    except ValidationError:
        return False
    return True


@FAST
@given(
    value=st.text(min_size=0, max_size=12)
    | st.text(alphabet=st.characters(categories=["L", "N"]), max_size=6)
    | st.from_regex(r"[a-z]{1,5}\n", fullmatch=True)
)
def test_identifier_validator_is_letters_of_any_script_ascii_digits_and_dot_dash(value):
    assert validates(value) == is_identifier(value)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("maria.acme_1-2", True),
        ("Ωμέγα", True),
        ("日本", True),
        ("abc\n", False),
        ("²", False),
        ("Ⅻ", False),
        ("١٢", False),
        ("a b", False),
        ("", False),
    ],
)
def test_identifier_examples(value, valid):
    assert validates(value) is valid


# --- canonical JSON and the payload fingerprint ---


def shuffled(value, data):
    """The same JSON value with every object's keys in a random order."""
    if isinstance(value, dict):
        keys = data.draw(st.permutations(list(value)))
        return {key: shuffled(value[key], data) for key in keys}
    if isinstance(value, list):
        return [shuffled(item, data) for item in value]
    return value


@FAST
@given(payload=st.dictionaries(st.text(max_size=6), json_values, max_size=6), data=st.data())
def test_key_order_never_changes_the_canonical_form_or_fingerprint(payload, data):
    other = shuffled(payload, data)
    assert canonical_json(other) == canonical_json(payload)
    assert payload_fingerprint(type_id="t", payload=other) == payload_fingerprint(
        type_id="t", payload=payload
    )
