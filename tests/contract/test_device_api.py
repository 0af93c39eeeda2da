"""The Device API as /work/shared/contracts/kazoo-push-notification-subscriptions.md publishes it.

Each request is the contract's curl command with its placeholders filled: `X-Auth-Token`, curl's
default `Accept: */*` and `User-Agent`, `Content-Type: application/json` and the exact `-d` body
for PUT and POST, no body for GET and DELETE. Every answer, errors included, is Kazoo 4.x's
envelope; its error texts are crossbar's (`invalid credentials`, `bad identifier`).
"""

import json
import re

import pytest
from django.test import Client

from devices.models import Device, Registration

pytestmark = pytest.mark.django_db

ACCOUNT_ID = "acme"
APP = "com.acme.softphone"
DEVICE_ID = "4c3f0e4c8f2d4e5aa0e0f6b3d9c1a2b7"
MOBILE_DEVICE_ID = "5D3A1B2C-7E8F-4A9B-8C1D-2E3F4A5B6C7D"
APNS_TOKEN = "740f4707bebcf74f9b7c25d48e3358945f6aa01da5ddb387462c7eaf61bb78ad"
FCM_TOKEN = "fcm-token:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"
PLATFORM = "ios"
KAMAILIO_IP = "10.26.0.10"
PATH = f"/v2/accounts/{ACCOUNT_ID}/push_notification_subscriptions/{APP}/{DEVICE_ID}"
# The contract's `-d` argument, character for character, placeholders filled.
BODY = (
    '{"data":{"mobile_device_id":"{MOBILE_DEVICE_ID}", "notification_registration_ids":'
    '{"{APNS_TOKEN}":{"notification_preferences":["incoming_call"], "notification_type":"apns"},'
    ' "{FCM_TOKEN}":{"notification_preferences":["chat", "new_voicemail"],'
    ' "notification_type":"fcm"}}, "platform":"{PLATFORM}", "sip_proxy_server":"{KAMAILIO_IP}"}}'
)
for placeholder, value in {
    "{MOBILE_DEVICE_ID}": MOBILE_DEVICE_ID,
    "{APNS_TOKEN}": APNS_TOKEN,
    "{FCM_TOKEN}": FCM_TOKEN,
    "{PLATFORM}": PLATFORM,
    "{KAMAILIO_IP}": KAMAILIO_IP,
}.items():
    BODY = BODY.replace(placeholder, value)

# The keys of the contract's answers.
SUCCESS_KEYS = {
    "auth_token",
    "data",
    "node",
    "request_id",
    "revision",
    "status",
    "timestamp",
    "version",
}
ERROR_KEYS = {
    "auth_token",
    "data",
    "error",
    "message",
    "node",
    "request_id",
    "status",
    "timestamp",
    "version",
}
DOCUMENT = {
    "mobile_device_id": MOBILE_DEVICE_ID,
    "notification_registration_ids": {
        APNS_TOKEN: {"notification_preferences": ["incoming_call"], "notification_type": "apns"},
        FCM_TOKEN: {
            "notification_preferences": ["chat", "new_voicemail"],
            "notification_type": "fcm",
        },
    },
    "platform": PLATFORM,
    "sip_proxy_server": KAMAILIO_IP,
    "app_name": APP,
}
WHOLE_SECONDS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def curl(method: str, path: str, *, token: str | None, body: str | None = None):
    """The contract's curl command: `curl -v -X METHOD -H "X-Auth-Token: ..." [-H
    "Content-Type: application/json" -d BODY] URL`."""
    headers = {"Accept": "*/*", "User-Agent": "curl/8.5.0"}
    if token is not None:
        headers["X-Auth-Token"] = token
    if body is None:
        return Client().generic(method, path, headers=headers)
    return Client().generic(
        method, path, data=body.encode(), content_type="application/json", headers=headers
    )


def assert_success(response, status: int, token: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == SUCCESS_KEYS
    assert all(isinstance(body[key], str) for key in SUCCESS_KEYS - {"data"})
    assert body["status"] == "success"
    assert body["auth_token"] == token
    assert body["revision"]
    assert WHOLE_SECONDS_UTC.match(body["timestamp"])
    return body


def assert_document(data: dict) -> None:
    """The contract's `data`: its fields with their types and the values sent (our additions,
    `id`, `_read_only` and each registration's `push_type`, are extra members)."""
    assert {key: data[key] for key in DOCUMENT if key != "notification_registration_ids"} == {
        key: value for key, value in DOCUMENT.items() if key != "notification_registration_ids"
    }
    registrations = data["notification_registration_ids"]
    assert set(registrations) == {APNS_TOKEN, FCM_TOKEN}
    for token, expected in DOCUMENT["notification_registration_ids"].items():
        assert (
            registrations[token]["notification_preferences"]
            == (expected["notification_preferences"])
        )
        assert registrations[token]["notification_type"] == expected["notification_type"]


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert all(isinstance(body[key], str) for key in ERROR_KEYS - {"data"})
    assert isinstance(body["data"], dict)
    assert body["status"] == "error"
    assert body["error"] == str(status)
    assert WHOLE_SECONDS_UTC.match(body["timestamp"])
    return body


# --- The contract's four requests ---


def test_create_puts_the_contracts_body_and_answers_the_document(member):
    response = curl("PUT", PATH, token=member.token, body=BODY)
    body = assert_success(response, 201, member.token)
    assert_document(body["data"])
    device = Device.objects.get(account_id=ACCOUNT_ID, app_name=APP, device_id=DEVICE_ID)
    assert device.revision == body["revision"]
    assert set(Registration.objects.values_list("token", flat=True)) == {APNS_TOKEN, FCM_TOKEN}


def test_fetch_answers_the_stored_document_and_its_revision(member):
    created = curl("PUT", PATH, token=member.token, body=BODY).json()
    body = assert_success(curl("GET", PATH, token=member.token), 200, member.token)
    assert_document(body["data"])
    assert body["revision"] == created["revision"]


def test_change_posts_the_contracts_body_and_answers_a_new_revision(member):
    created = curl("PUT", PATH, token=member.token, body=BODY).json()
    response = curl("POST", PATH, token=member.token, body=BODY)
    body = assert_success(response, 200, member.token)
    assert_document(body["data"])
    assert body["revision"] != created["revision"]
    assert Device.objects.get().revision == body["revision"]


def test_remove_answers_the_deleted_documents_revision(member):
    curl("PUT", PATH, token=member.token, body=BODY)
    revision = curl("GET", PATH, token=member.token).json()["revision"]
    response = curl("DELETE", PATH, token=member.token)
    body = assert_success(response, 200, member.token)
    assert body["data"] == {"id": DEVICE_ID, "_read_only": {"deleted": True}}
    assert body["revision"] == revision
    assert not Device.objects.exists()
    assert not Registration.objects.exists()


# --- Kazoo's error envelopes: one text per status, crossbar's ---


def test_fetching_an_unknown_device_is_kazoos_bad_identifier(member):
    body = assert_error(curl("GET", PATH, token=member.token), 404)
    assert body["message"] == "bad_identifier"
    assert body["data"] == {"message": "bad identifier", "cause": DEVICE_ID}


@pytest.mark.parametrize(
    ("method", "path", "cause"),
    [
        ("GET", PATH, DEVICE_ID),
        ("POST", PATH, DEVICE_ID),
        ("DELETE", PATH, DEVICE_ID),
        ("PUT", PATH.replace(f"/{ACCOUNT_ID}/", "/globex/"), "globex"),
        ("GET", PATH.replace(DEVICE_ID, "bad%20id"), "bad id"),
        ("GET", "/v2/accounts/acme/devices", "/v2/accounts/acme/devices"),
    ],
    ids=["get", "post", "delete", "unknown-account", "invalid-id", "unknown-path"],
)
def test_every_404_says_bad_identifier_and_names_its_cause(hub_operator, method, path, cause):
    body = BODY if method in ("PUT", "POST") else None
    response = assert_error(curl(method, path, token=hub_operator.token, body=body), 404)
    assert response["message"] == "bad_identifier"
    assert response["data"] == {"message": "bad identifier", "cause": cause}
    assert not Device.objects.exists()


@pytest.mark.parametrize("token", [None, "", "not-a-token"], ids=["none", "empty", "unknown"])
@pytest.mark.parametrize("method", ["GET", "PUT", "POST", "DELETE"])
def test_every_401_says_invalid_credentials(member, method, token):
    body = BODY if method in ("PUT", "POST") else None
    response = assert_error(curl(method, PATH, token=token, body=body), 401)
    assert response["message"] == "invalid_credentials"
    assert response["data"] == {"message": "invalid credentials"}
    assert not Device.objects.exists()


def test_a_document_breaking_the_schema_is_kazoos_invalid_data(member):
    bad = BODY.replace('"platform":"ios"', '"platform":"windows"')
    body = assert_error(curl("PUT", PATH, token=member.token, body=bad), 400)
    assert body["message"] == "invalid data"
    assert "enum" in body["data"]["platform"]


# --- The schema a client is generated from ---


@pytest.fixture
def schema(client) -> dict:
    return client.get("/api/schema/?format=json").json()


def resolve(schema: dict, node: dict) -> dict:
    """A schema object with its `$ref` (or single `allOf` wrapper) followed."""
    if "allOf" in node and len(node["allOf"]) == 1:
        node = node["allOf"][0]
    if "$ref" in node:
        return resolve(schema, schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]])
    return node


def operations(schema: dict) -> dict:
    paths = [path for path in schema["paths"] if "push_notification_subscriptions" in path]
    assert len(paths) == 1
    return schema["paths"][paths[0]]


def answer(schema: dict, operation: dict, status: str) -> dict:
    return resolve(schema, operation["responses"][status]["content"]["application/json"]["schema"])


def test_each_operation_carries_the_contracts_summary(schema):
    summaries = {method: op["summary"] for method, op in operations(schema).items()}
    assert summaries == {
        "get": "Fetch a push notification subscription",
        "put": "Create a new push notification subscription",
        "post": "Change a push notification subscription",
        "delete": "Remove a push notification subscription",
    }


@pytest.mark.parametrize("method", ["put", "post"])
def test_the_request_body_is_the_kazoo_document(schema, method):
    body = operations(schema)[method]["requestBody"]["content"]["application/json"]
    document = resolve(schema, resolve(schema, body["schema"])["properties"]["data"])
    assert {
        "app_name",
        "mobile_device_id",
        "notification_registration_ids",
        "platform",
        "sip_proxy_server",
    } <= set(document["properties"])
    registration = resolve(
        schema, document["properties"]["notification_registration_ids"]["additionalProperties"]
    )
    assert {"notification_preferences", "notification_type"} <= set(registration["required"])
    assert set(resolve(schema, document["properties"]["platform"])["enum"]) == {"android", "ios"}
    examples = [example["value"] for example in body["examples"].values()]
    assert examples
    assert "data" in examples[0]


@pytest.mark.parametrize(("method", "status"), [("get", "200"), ("put", "201"), ("post", "200")])
def test_the_answer_is_the_envelope_around_the_document(schema, method, status):
    envelope = answer(schema, operations(schema)[method], status)
    assert set(envelope["properties"]) == SUCCESS_KEYS
    document = resolve(schema, envelope["properties"]["data"])
    assert set(DOCUMENT) <= set(document["properties"])


def test_the_delete_answer_names_the_id_and_deleted(schema):
    envelope = answer(schema, operations(schema)["delete"], "200")
    data = resolve(schema, envelope["properties"]["data"])
    assert set(data["properties"]) == {"id", "_read_only"}
    assert resolve(schema, data["properties"]["_read_only"])["properties"]["deleted"]["type"] == (
        "boolean"
    )


@pytest.mark.parametrize("status", ["401", "404"])
def test_errors_are_documented_in_kazoos_error_envelope(schema, status):
    envelope = answer(schema, operations(schema)["get"], status)
    assert set(envelope["properties"]) == ERROR_KEYS


def test_the_schemas_example_document_is_accepted_as_sent(schema, member):
    body = operations(schema)["put"]["requestBody"]["content"]["application/json"]
    example = next(iter(body["examples"].values()))["value"]
    response = curl("PUT", PATH, token=member.token, body=json.dumps(example))
    assert_success(response, 201, member.token)
