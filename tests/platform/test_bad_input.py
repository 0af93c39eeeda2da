"""Bad input is the client's error on every API path, in JSON, never a 500 or an HTML page,
with DEBUG on (as `make run` runs) and off: JSON nested past the limit or holding `1e999` on the
Notification and Kazoo surfaces, a thousand query parameters on the stream endpoint, a `Host`
outside ALLOWED_HOSTS, and the OpenID Connect endpoints the hub does not serve."""

import json

import pytest
from django.test import Client

from notifyhub.json_bodies import MAX_JSON_DEPTH
from subscriptions.models import Subscription

pytestmark = [pytest.mark.django_db]

DEEP = "[" * 1000 + "]" * 1000  # past Python's recursion limit (about 935 levels)
JUST_TOO_DEEP = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
KAZOO_DEVICE = "/v2/accounts/acme/push_notification_subscriptions/app/dev1"


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings):
    settings.DEBUG = request.param
    return request.param


def subscription_body(payload_fragment: str) -> str:
    return (
        '{"client_id": "consumer", "event_types": ["newMessage"], "extra": '
        + payload_fragment
        + "}"
    )


@pytest.mark.parametrize("fragment", [DEEP, JUST_TOO_DEEP, "1e999", "-1e999"])
def test_unstorable_json_on_subscriptions_is_a_400_naming_the_problem(
    debug, administrator, fragment
):
    response = administrator.api().post(
        "/notification/v1/subscriptions",
        data=subscription_body(fragment),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "NOT000007"
    assert "deeper than 100" in body["description"] or "out of range" in body["description"]
    assert Subscription.objects.count() == 0


@pytest.mark.parametrize("method", ["put", "post"])
@pytest.mark.parametrize("fragment", [DEEP, "1e999"])
def test_unstorable_json_on_the_device_api_is_kazoos_400(debug, member, method, fragment):
    client = Client(raise_request_exception=False)
    response = getattr(client, method)(
        KAZOO_DEVICE,
        data='{"data": {"platform": "ios", "x": ' + fragment + "}}",
        content_type="application/json",
        HTTP_X_AUTH_TOKEN=member.token,
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    envelope = response.json()
    assert envelope["error"] == "400"
    assert envelope["message"] == "invalid data"
    assert "json" in envelope["data"]["data"]


def test_the_platform_parser_still_refuses_nan_as_malformed_json(administrator):
    response = administrator.api().post(
        "/notification/v1/subscriptions",
        data=subscription_body("NaN"),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "NOT000008"


def test_a_thousand_query_parameters_on_the_stream_endpoint_is_a_json_400(debug, member):
    query = "&".join(f"p{n}=1" for n in range(1001))
    client = Client(raise_request_exception=False)
    response = client.get(
        f"/api/push/subscribe?{query}", HTTP_AUTHORIZATION=f"Bearer {member.token}"
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "NOT000007"


@pytest.mark.parametrize(
    "path",
    ["/notification/v1/subscriptions", "/api/push/subscribe", "/v1/notifications", "/o/token/"],
)
def test_a_host_outside_allowed_hosts_is_a_json_400_on_api_paths(debug, path):
    client = Client(raise_request_exception=False)
    response = client.get(path, HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == "NOT000007"
    assert "DEBUG" not in response.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "/o/.well-known/openid-configuration",
        "/o/.well-known/openid-configuration/",
        "/o/.well-known/jwks.json",
        "/o/userinfo/",
        "/o/logout/",
    ],
)
def test_openid_connect_endpoints_the_hub_does_not_serve_are_json_404s(debug, path):
    client = Client(raise_request_exception=False)
    for method in ("get", "post"):
        response = getattr(client, method)(path)
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "NOT000003"


def test_dot_html_error_pages_on_oauth_paths_become_json(debug):
    client = Client(raise_request_exception=False)
    introspect = client.get("/o/introspect/")  # DOT answers a plain 403 page
    assert introspect.status_code == 403
    assert introspect["Content-Type"] == "application/json"
    wrong_method = client.get("/o/device-authorization/")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "NOT000004"
    assert "POST" in wrong_method["Allow"]


def test_the_metadata_dot_does_serve_is_left_alone():
    response = Client().get("/o/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert json.loads(response.content)["token_endpoint"].endswith("/o/token/")
