"""The Kazoo device API: one push notification subscription per account, app and device."""

import json

import pytest
from rest_framework.test import APIClient

from devices.models import Device, Preference, Registration

pytestmark = pytest.mark.django_db

APP = "com.acme.phone"
TOKEN_A = "a" * 64
TOKEN_B = "b" * 64
FCM_TOKEN = "fcm-token:APA91b_example-1"
ENVELOPE_KEYS = {
    "auth_token",
    "data",
    "node",
    "request_id",
    "revision",
    "status",
    "timestamp",
    "version",
}
ERROR_KEYS = {"auth_token", "data", "error", "message", "node", "request_id", "status"}


def url(device: str = "dev1", *, account: str = "acme", app: str = APP) -> str:
    return f"/v2/accounts/{account}/push_notification_subscriptions/{app}/{device}"


def kazoo(persona) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_AUTH_TOKEN=persona.token)
    return client


def document(**changes) -> dict:
    doc = {
        "mobile_device_id": "phone-1",
        "platform": "ios",
        "sip_proxy_server": "sip.acme.test",
        "notification_registration_ids": {
            TOKEN_A: {
                "notification_preferences": ["incoming_call", "chat"],
                "notification_type": "apns",
            },
            TOKEN_B: {"notification_preferences": ["new_voicemail"], "notification_type": "apns"},
        },
    }
    doc.update(changes)
    return {key: value for key, value in doc.items() if value is not None}


def send(client: APIClient, method: str, path: str, body=None, **headers):
    raw = body if isinstance(body, str | bytes) else json.dumps(body)
    return getattr(client, method)(path, data=raw, content_type="application/json", **headers)


def put(client, device="dev1", data=None, **kw):
    return send(client, "put", url(device, **kw), {"data": data or document()})


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["content-type"] == "application/json"
    body = response.json()
    assert set(body) >= ERROR_KEYS
    assert body["status"] == "error"
    assert body["error"] == str(status)
    return body


# --- The happy path ---


def test_put_creates_and_echoes_the_document_in_the_success_envelope(member):
    response = put(kazoo(member))
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["status"] == "success"
    assert body["auth_token"] == member.token
    assert body["revision"].startswith("1-")
    data = body["data"]
    assert data["id"] == "dev1"
    assert data["app_name"] == APP
    assert data["platform"] == "ios"
    assert data["mobile_device_id"] == "phone-1"
    assert data["sip_proxy_server"] == "sip.acme.test"
    assert data["notification_registration_ids"][TOKEN_A]["notification_type"] == "apns"
    assert data["notification_registration_ids"][TOKEN_A]["notification_preferences"] == [
        "incoming_call",
        "chat",
    ]
    device = Device.objects.get(account_id="acme", app_name=APP, device_id="dev1")
    assert device.revision == body["revision"]
    assert set(device.registrations.values_list("token", flat=True)) == {TOKEN_A, TOKEN_B}
    assert Preference.objects.get(device=device, name="incoming_call").registration.token == TOKEN_A


def test_a_body_naming_the_path_app_is_accepted(member):
    assert put(kazoo(member), data=document(app_name=APP)).status_code == 201


def test_get_fetches_the_stored_document_and_its_revision(member):
    created = put(kazoo(member)).json()
    response = kazoo(member).get(url())
    assert response.status_code == 200
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    assert body["revision"] == created["revision"]
    assert body["data"] == created["data"]


def test_post_updates_and_changes_the_revision(member):
    created = put(kazoo(member)).json()
    changed = document(
        platform="android",
        notification_registration_ids={
            FCM_TOKEN: {
                "notification_preferences": ["chat", "incoming_call"],
                "notification_type": "fcm",
            }
        },
    )
    response = send(kazoo(member), "post", url(), {"data": changed})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["revision"] != created["revision"]
    assert body["revision"].startswith("2-")
    assert body["data"]["platform"] == "android"
    assert list(body["data"]["notification_registration_ids"]) == [FCM_TOKEN]
    device = Device.objects.get(device_id="dev1")
    assert device.platform == "android"
    assert list(device.registrations.values_list("token", flat=True)) == [FCM_TOKEN]


def test_delete_removes_the_device_and_says_so(member):
    put(kazoo(member))
    response = kazoo(member).delete(url())
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert body["data"] == {"id": "dev1", "_read_only": {"deleted": True}}
    assert not Device.objects.exists()
    assert not Registration.objects.exists()


# --- Existence ---


def test_put_on_an_existing_device_is_a_conflict(member):
    put(kazoo(member))
    body = assert_error(put(kazoo(member), data=document(platform="android")), 409)
    assert body["message"]
    assert Device.objects.get().platform == "ios"


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_missing_device_is_404(member, method):
    client = kazoo(member)
    if method == "post":
        response = send(client, method, url("nope"), {"data": document()})
    else:
        response = getattr(client, method)(url("nope"))
    body = assert_error(response, 404)
    assert body["message"] == "bad_identifier"


def test_the_hub_operator_on_an_unknown_account_gets_404(hub_operator):
    body = assert_error(put(kazoo(hub_operator), account="no-such-account"), 404)
    assert body["message"] == "bad_identifier"


def test_an_invalid_path_identifier_is_404_in_the_envelope(member):
    assert_error(kazoo(member).get(url("bad%20id")), 404)


@pytest.mark.parametrize(
    "path",
    [
        "/v2/accounts/acme/devices",
        "/v2/accounts/acme/push_notification_subscriptions/com.acme.phone",
        f"{url()}/extra",
        "/v2/",
    ],
)
@pytest.mark.parametrize("method", ["get", "put", "delete"])
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_any_other_v2_path_is_404_in_the_envelope(member, settings, path, method, debug):
    settings.DEBUG = debug  # `make run` runs with DEBUG on: still no HTML page
    body = assert_error(getattr(kazoo(member), method)(path), 404)
    assert body["message"] == "bad_identifier"
    assert body["auth_token"] == member.token


# --- Revisions ---


def test_a_stale_if_match_is_refused_and_nothing_changes(member):
    first = put(kazoo(member)).json()["revision"]
    second = send(kazoo(member), "post", url(), {"data": document()}).json()["revision"]
    response = send(
        kazoo(member), "post", url(), {"data": document(platform="android")}, HTTP_IF_MATCH=first
    )
    assert_error(response, 409)
    device = Device.objects.get()
    assert device.platform == "ios"
    assert device.revision == second


def test_a_stale_data_revision_is_refused(member):
    first = put(kazoo(member)).json()["revision"]
    send(kazoo(member), "post", url(), {"data": document()})
    stale = {**document(platform="android"), "revision": first}
    assert_error(send(kazoo(member), "post", url(), {"data": stale}), 409)
    assert Device.objects.get().platform == "ios"


def test_the_current_revision_is_accepted(member):
    current = put(kazoo(member)).json()["revision"]
    fresh = {**document(platform="android"), "revision": current}
    response = send(kazoo(member), "post", url(), {"data": fresh})
    assert response.status_code == 200
    quoted = send(
        kazoo(member),
        "post",
        url(),
        {"data": document()},
        HTTP_IF_MATCH=f'"{response.json()["revision"]}"',
    )
    assert quoted.status_code == 200


def test_a_stale_revision_cannot_delete(member):
    first = put(kazoo(member)).json()["revision"]
    send(kazoo(member), "post", url(), {"data": document()})
    assert_error(kazoo(member).delete(url(), HTTP_IF_MATCH=first), 409)
    assert Device.objects.exists()


# --- One device per mobile device, one registration per preference ---


def test_registering_the_same_mobile_device_removes_the_other_device(member):
    put(kazoo(member), "dev1")
    response = put(kazoo(member), "dev2")
    assert response.status_code == 201
    assert list(Device.objects.values_list("device_id", flat=True)) == ["dev2"]
    assert_error(kazoo(member).get(url("dev1")), 404)
    assert set(Registration.objects.values_list("device__device_id", flat=True)) == {"dev2"}


def test_moving_a_device_onto_another_mobile_device_removes_that_one(member):
    put(kazoo(member), "dev1", data=document(mobile_device_id="phone-1"))
    put(kazoo(member), "dev2", data=document(mobile_device_id="phone-2"))
    response = send(
        kazoo(member), "post", url("dev1"), {"data": document(mobile_device_id="phone-2")}
    )
    assert response.status_code == 200
    assert list(Device.objects.values_list("device_id", "mobile_device_id")) == [
        ("dev1", "phone-2")
    ]


def test_other_accounts_keep_their_device_with_the_same_mobile_id(member, hub_operator):
    from notifyhub.models import Account

    Account.objects.create(id="globex")
    put(kazoo(hub_operator), "dev1", account="globex")
    put(kazoo(member), "dev2")
    assert Device.objects.count() == 2


def test_a_preference_may_appear_under_only_one_registration_id(member):
    doc = document(
        notification_registration_ids={
            TOKEN_A: {"notification_preferences": ["incoming_call"], "notification_type": "apns"},
            TOKEN_B: {"notification_preferences": ["incoming_call"], "notification_type": "apns"},
        }
    )
    body = assert_error(put(kazoo(member), data=doc), 400)
    rule = body["data"][f"notification_registration_ids.{TOKEN_B}.notification_preferences"]
    assert "unique" in rule
    assert "incoming_call" in rule["unique"]["message"]
    assert not Device.objects.exists()


def test_moving_a_preference_between_registration_ids_is_allowed(member):
    put(kazoo(member))
    moved = document(
        notification_registration_ids={
            TOKEN_A: {"notification_preferences": ["chat"], "notification_type": "apns"},
            TOKEN_B: {
                "notification_preferences": ["incoming_call", "new_voicemail"],
                "notification_type": "apns",
            },
        }
    )
    assert send(kazoo(member), "post", url(), {"data": moved}).status_code == 200
    assert Preference.objects.get(name="incoming_call").registration.token == TOKEN_B


# --- Bad bodies ---

REG = f"notification_registration_ids.{TOKEN_A}"


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"platform": "windows"}, "platform", "enum"),
        ({"platform": 5}, "platform", "type"),
        ({"mobile_device_id": 42}, "mobile_device_id", "type"),
        ({"mobile_device_id": ""}, "mobile_device_id", "minLength"),
        ({"sip_proxy_server": ["x"]}, "sip_proxy_server", "type"),
        ({"sip_proxy_server": "s" * 300}, "sip_proxy_server", "maxLength"),
        ({"app_name": "com.other.app"}, "app_name", "enum"),
        ({"notification_registration_ids": ["a"]}, "notification_registration_ids", "type"),
        ({"notification_registration_ids": {}}, "notification_registration_ids", "minProperties"),
        (
            {"notification_registration_ids": {TOKEN_A: "apns"}},
            REG,
            "type",
        ),
        (
            {"notification_registration_ids": {TOKEN_A: {"notification_preferences": []}}},
            f"{REG}.notification_type",
            "required",
        ),
        (
            {
                "notification_registration_ids": {
                    TOKEN_A: {"notification_preferences": [], "notification_type": "gcm"}
                }
            },
            f"{REG}.notification_type",
            "enum",
        ),
        (
            {"notification_registration_ids": {TOKEN_A: {"notification_type": "apns"}}},
            f"{REG}.notification_preferences",
            "required",
        ),
        (
            {
                "notification_registration_ids": {
                    TOKEN_A: {"notification_preferences": "chat", "notification_type": "apns"}
                }
            },
            f"{REG}.notification_preferences",
            "type",
        ),
        (
            {
                "notification_registration_ids": {
                    TOKEN_A: {"notification_preferences": ["sms"], "notification_type": "apns"}
                }
            },
            f"{REG}.notification_preferences.0",
            "enum",
        ),
        (
            {
                "notification_registration_ids": {
                    TOKEN_A: {
                        "notification_preferences": ["chat", "chat"],
                        "notification_type": "apns",
                    }
                }
            },
            f"{REG}.notification_preferences",
            "uniqueItems",
        ),
        (
            {
                "notification_registration_ids": {
                    "bad token/../x": {
                        "notification_preferences": ["chat"],
                        "notification_type": "apns",
                    }
                }
            },
            "notification_registration_ids.bad token/../x",
            "pattern",
        ),
    ],
)
def test_schema_violations_are_400_naming_the_field_and_rule(member, changes, field, rule):
    body = assert_error(put(kazoo(member), data=document(**changes)), 400)
    assert body["message"] == "invalid data"
    assert rule in body["data"][field], body["data"]
    assert body["data"][field][rule]["message"]
    assert not Device.objects.exists()


@pytest.mark.parametrize("field", ["mobile_device_id", "sip_proxy_server"])
@pytest.mark.parametrize("bad", ["phone\x00", "phone\ud800"], ids=["nul", "surrogate"])
def test_text_no_database_can_store_is_400_naming_the_field(member, field, bad):
    # JSON's escapes decode to NUL and to an unpaired surrogate; neither can be stored.
    raw = json.dumps({"data": document(**{field: bad})})
    body = assert_error(send(kazoo(member), "put", url(), raw), 400)
    assert body["message"] == "invalid data"
    assert set(body["data"]) == {field}
    assert "format" in body["data"][field]
    assert not Device.objects.exists()


@pytest.mark.parametrize(
    "missing", ["mobile_device_id", "platform", "sip_proxy_server", "notification_registration_ids"]
)
def test_each_missing_field_is_named_as_required(member, missing):
    doc = document()
    del doc[missing]
    body = assert_error(put(kazoo(member), data=doc), 400)
    assert body["data"][missing] == {"required": {"message": "Field is required but missing"}}


def test_every_broken_rule_is_named_at_once(member):
    doc = {"platform": "windows", "mobile_device_id": 1}
    body = assert_error(put(kazoo(member), data=doc), 400)
    assert set(body["data"]) == {
        "platform",
        "mobile_device_id",
        "sip_proxy_server",
        "notification_registration_ids",
    }
    assert "enum" in body["data"]["platform"]


@pytest.mark.parametrize(
    "raw",
    ["this is not json", "{'data': 1}", '{"data": ', b"\xff\xfe", "[1, 2]", '{"nodata": {}}', ""],
)
def test_bodies_that_are_not_a_json_data_object_are_400(member, raw):
    response = send(kazoo(member), "put", url(), raw)
    body = assert_error(response, 400)
    assert body["data"]
    assert not Device.objects.exists()


def test_a_non_json_content_type_is_still_answered_in_the_envelope(member):
    response = kazoo(member).put(url(), data="platform=ios", content_type="text/plain")
    assert_error(response, 400)


def test_data_that_is_not_an_object_is_400(member):
    body = assert_error(send(kazoo(member), "put", url(), {"data": [1]}), 400)
    assert "type" in body["data"]["data"]


def test_an_oversized_body_is_413_in_the_envelope(member):
    big = document(sip_proxy_server="x" * 70_000)
    assert_error(put(kazoo(member), data=big), 413)


# --- Who may act ---


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("anonymous", 401),
        ("consumer", 403),
        ("outsider", 403),
        ("member", 201),
        # A tenant's administrator who is not a member: no bypass (tests/authz/test_tenants.py).
        ("administrator", 403),
        ("hub_operator", 201),
    ],
)
def test_authorization_matrix(request, member, persona, status):
    client = APIClient() if persona == "anonymous" else kazoo(request.getfixturevalue(persona))
    response = put(client)
    assert response.status_code == status, response.content
    if status >= 400:
        assert_error(response, status)
        assert not Device.objects.exists()


def test_an_outsider_cannot_read_a_member_device(member, outsider):
    put(kazoo(member))
    assert_error(kazoo(outsider).get(url()), 403)
    assert_error(kazoo(outsider).delete(url()), 403)
    assert Device.objects.exists()


def test_an_unknown_token_is_401_in_the_envelope(member):
    client = APIClient()
    client.credentials(HTTP_X_AUTH_TOKEN="not-a-token")
    body = assert_error(client.get(url()), 401)
    assert body["message"] == "invalid_credentials"


def test_authorization_bearer_is_accepted_too(member):
    response = put(member.api())
    assert response.status_code == 201
    assert response.json()["auth_token"] == member.token


def test_an_application_member_may_act_with_a_client_token(make_persona):
    from notifyhub.models import Account, AccountMember

    persona = make_persona("pbx", ["devices:manage"])
    account = Account.objects.create(id="acme")
    AccountMember.objects.create(account=account, application=persona.application)
    assert put(kazoo(persona)).status_code == 201
