"""The Events API as /work/shared/contracts/events-ingestion.md publishes it.

Each request is sent as the contract's generated Python client (`sm_notifications_api`) sends
it: `json.dumps` of the body, and the headers `Api-Version`, `Client-Token`,
`Content-Type: application/json` and `Accept: application/json`. The contract answers 200
(processed), 202 (already processed), 401 (unauthorized) or 422 (invalid data): its producers
retry anything else, so every refusal of the request's data below must be a 422.
"""

import json
import re
from datetime import datetime

import pytest

from events.models import Event
from events.services import api_key_create
from notifyhub.formats import iso_utc

pytestmark = pytest.mark.django_db

URL = "/v1/notifications"
# The contract's example body, exactly.
EXAMPLE = {
    "event": {
        "type": "order.accepted",
        "payload": {"order_id": "H1234567890", "orderUUID": "265cb601-a78a-4862-9e9d-d6b48d6a0a3f"},
    }
}
ERROR_FIELDS = {"code", "description", "field"}


@pytest.fixture
def client_token() -> str:
    return api_key_create(name="sbermarket").raw_key


def send(client, body: bytes | str, *, token: str | None, content_type="application/json", **kw):
    """POST as the generated client does; `kw` overrides or removes (None) a header."""
    headers = {
        "Api-Version": "3.0",
        "Client-Token": token,
        "Accept": "application/json",
        "User-Agent": "OpenAPI-Generator/1.0.0/python",
        **kw,
    }
    headers = {name: value for name, value in headers.items() if value is not None}
    return client.generic("POST", URL, data=body, content_type=content_type, headers=headers)


def assert_refused(response, status: int, code: str) -> dict:
    """A refusal in the platform's error body, and nothing stored."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) <= ERROR_FIELDS
    assert {"code", "description"} <= set(body)
    assert all(isinstance(value, str) for value in body.values())
    assert body["code"] == code
    assert not Event.objects.exists()
    return body


# --- The contract's answers ---


def test_the_contracts_example_is_processed_on_a_fresh_hub(client, client_token):
    # order.accepted comes from the catalogue the migrations seed, not from a fixture.
    response = send(client, json.dumps(EXAMPLE), token=client_token)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"id", "status"}
    assert isinstance(body["id"], str)
    assert body["status"] == "processed"
    stored = Event.objects.get(pk=body["id"])
    assert (stored.type_id, stored.payload) == ("order.accepted", EXAMPLE["event"]["payload"])


def test_the_same_example_again_is_202_already_processed(client, client_token):
    first = send(client, json.dumps(EXAMPLE), token=client_token).json()
    response = send(client, json.dumps(EXAMPLE), token=client_token)
    assert response.status_code == 202
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"id", "status", "created_at"}
    assert (body["id"], body["status"]) == (first["id"], "duplicate")
    stored = Event.objects.get()
    assert body["created_at"] == iso_utc(stored.created_at)
    assert body["created_at"].endswith("Z")
    # RFC 3339; to the second at least (the platform's format may drop the fraction).
    parsed = datetime.fromisoformat(body["created_at"])
    assert parsed.replace(microsecond=0) == stored.created_at.replace(microsecond=0)


@pytest.mark.parametrize(
    "token", [None, "", "qwerty123sbermarket"], ids=["none", "empty", "unknown"]
)
def test_without_a_valid_client_token_it_is_401(client, token):
    response = send(client, json.dumps(EXAMPLE), token=token)
    assert_refused(response, 401, "NOT000001")


def test_a_bearer_token_with_events_publish_may_send_the_example(client, producer):
    response = send(
        client, json.dumps(EXAMPLE), token=None, Authorization=f"Bearer {producer.token}"
    )
    assert response.status_code == 200, response.content


# --- Every refusal of the request's data is a 422 (the contract knows no 400 nor 415) ---

DEEP = 935  # Deeper than Python's json can decode within its recursion limit.
# The bodies name `newMessage`, seeded since events 0002, so that each is refused for what the
# body holds, never for its type.
BAD_BODIES = {
    "malformed json": ("{nope", "NOT000008"),
    "truncated json": ('{"event": {"type": "newMessage"', "NOT000008"),
    "not utf-8": (b'{"event": "\xff\xfe"}', "NOT000008"),
    "nan is not json": (
        '{"event": {"type": "newMessage", "payload": {"a": NaN}}}',
        "NOT000008",
    ),
    "integer of 5000 digits": (
        '{"event": {"type": "newMessage", "payload": {"a": ' + "9" * 5000 + "}}}",
        "NOT000008",
    ),
    "number beyond a double": (
        '{"event": {"type": "newMessage", "payload": {"a": 1e999}}}',
        "NOT000013",
    ),
    "negative number beyond a double": (
        '{"event": {"type": "newMessage", "payload": {"a": -1e999}}}',
        "NOT000013",
    ),
    "arrays nested 935 deep": (
        '{"event": {"type": "newMessage", "payload": {"a": ' + "[" * DEEP + "]" * DEEP + "}}}",
        "NOT000013",
    ),
    "objects nested 935 deep": (
        '{"event": {"type": "newMessage", "payload": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}}",
        "NOT000013",
    ),
    "arrays nested 100000 deep": ("[" * 100_000 + "]" * 100_000, "NOT000013"),
    "nested past the documented limit": (
        '{"event": {"type": "newMessage", "payload": {"a": ' + "[" * 98 + "]" * 98 + "}}}",
        "NOT000013",
    ),
    "a json array": ("[1, 2]", "NOT000013"),
    "json null": ("null", "NOT000013"),
    "a json string": ('"order.accepted"', "NOT000013"),
    "an empty body": ("", "NOT000013"),
    "no event": ('{"type": "newMessage"}', "NOT000013"),
    "an unknown type": ('{"event": {"type": "no.such.type", "payload": {}}}', "NOT000013"),
    "a payload that is not an object": (
        '{"event": {"type": "newMessage", "payload": [1]}}',
        "NOT000013",
    ),
}


@pytest.mark.parametrize(("raw", "code"), BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_bad_body_is_422_in_the_platforms_error_body(client, client_token, raw, code):
    assert_refused(send(client, raw, token=client_token), 422, code)


def test_nesting_within_the_limit_is_accepted(client, client_token):
    # The body, `event` and `payload` are three levels; the payload's value may add 97 more.
    body = '{"event": {"type": "order.accepted", "payload": {"a": ' + "[" * 97 + "]" * 97 + "}}}"
    response = send(client, body, token=client_token)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", ""],
    ids=["text", "form", "xml", "none"],
)
def test_another_media_type_is_422_naming_it(client, client_token, content_type):
    response = send(client, json.dumps(EXAMPLE), token=client_token, content_type=content_type)
    assert_refused(response, 422, "NOT000005")


def test_an_accept_header_without_json_is_422(client, client_token):
    response = send(client, json.dumps(EXAMPLE), token=client_token, Accept="text/xml")
    assert_refused(response, 422, "NOT000011")


@pytest.mark.parametrize("version", [None, "", "2.0", "3", "3.0.1"])
def test_an_unsupported_api_version_is_422(client, client_token, version):
    response = send(client, json.dumps(EXAMPLE), token=client_token, **{"Api-Version": version})
    body = assert_refused(response, 422, "NOT000013")
    assert body["field"] == "Api-Version"


def test_a_body_over_the_size_limit_is_413_as_documented(client, client_token, settings):
    # The one refusal that is not a 422: the hub will not read the body (docs/errors.md).
    settings.NOTIFYHUB_MAX_EVENT_BYTES = 1024
    body = {"event": {"type": "order.accepted", "payload": {"blob": "x" * 2000}}}
    assert_refused(send(client, json.dumps(body), token=client_token), 413, "NOT000006")


# --- The schema a client is generated from ---


@pytest.fixture
def operation(client) -> dict:
    schema = client.get("/api/schema/?format=json").json()
    return schema["paths"][URL]["post"]


def test_the_schema_documents_the_contracts_answers_and_no_other_client_error(operation):
    assert operation["summary"] == "Отправка события"
    statuses = set(operation["responses"])
    assert {"200", "202", "401", "422"} <= statuses
    assert not statuses & {"400", "406", "415"}


def test_the_schema_carries_the_contracts_example_and_it_is_processed(
    client, client_token, operation
):
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    values = [example["value"] for example in examples.values()]
    assert EXAMPLE in values
    response = send(client, json.dumps(values[0]), token=client_token)
    assert response.status_code == 200


def test_the_schema_describes_each_field_of_the_event(client):
    schema = client.get("/api/schema/?format=json").json()
    components = schema["components"]["schemas"]
    event = components["EventInputRequest"]["properties"]
    assert set(event) == {"id", "type", "payload"}
    assert all(event[name].get("description") for name in event)
    assert set(components["EventIngestInputRequest"]["required"]) == {"event"}
    assert re.search("Api-Version", json.dumps(schema["paths"][URL]["post"]["parameters"]))
