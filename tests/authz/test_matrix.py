"""The authorization matrix: every endpoint x every way of being the wrong caller.

One row per endpoint; one column per wrong caller. Each cell answers an exact status with the
platform's error body, and a foreign object answers exactly as an unknown one does. A new surface
is a new row in ENDPOINTS (and, for a new kind of caller, a new entry in CALLERS).
"""

import uuid
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from events.models import EventType
from events.services import event_ingest
from subscriptions.services import subscription_create
from tests.conftest import issue_token

ADMIN = settings.SCOPE_ADMINISTRATOR
CONSUMER = settings.SCOPE_CONSUMER
PUBLISH = settings.SCOPE_PUBLISH
DEVICES = settings.SCOPE_DEVICES


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # `{sub}` stands for the consumer's subscription id
    scope: str  # the scope that opens it
    wrong_scope: str  # a real scope that does not
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    # What another client sees instead of the consumer's object: "404" (same as an unknown id),
    # "own" (its own, empty view of a per-client resource), or None (not per-client).
    other_client: str | None = None


INGEST_BODY = {"event": {"type": "{type}", "payload": {}}}

ENDPOINTS = [
    Endpoint(
        "POST", "/v1/notifications", PUBLISH, CONSUMER, INGEST_BODY, {"HTTP_API_VERSION": "3.0"}
    ),
    Endpoint("GET", "/notification/v1/event-types", CONSUMER, PUBLISH),
    Endpoint("POST", "/notification/v1/subscriptions", ADMIN, CONSUMER, {"client_id": "x"}),
    Endpoint("GET", "/notification/v1/subscriptions/{sub}", CONSUMER, PUBLISH, other_client="404"),
    Endpoint("DELETE", "/notification/v1/subscriptions/{sub}", ADMIN, CONSUMER),
    Endpoint(
        "GET",
        "/notification/v1/subscriptions/{sub}/notifications",
        CONSUMER,
        PUBLISH,
        other_client="404",
    ),
    Endpoint("POST", "/notification/v1/subscriptions/{sub}/webhook-secret", ADMIN, CONSUMER),
    Endpoint("GET", "/api/v3/integration/notifications", CONSUMER, PUBLISH, other_client="own"),
    Endpoint("POST", "/api/v3/integration/notifications/release", CONSUMER, PUBLISH),
]

# Each wrong caller: (status, code) it must get.
CALLERS = {
    "no token": (401, "NOT000001"),
    "expired token": (401, "NOT000001"),
    "revoked token": (401, "NOT000001"),
    "wrong scope": (403, "NOT000002"),
    "other client": (404, "NOT000003"),
}

CELLS = [
    pytest.param(endpoint, caller, id=f"{endpoint.method} {endpoint.path} | {caller}")
    for endpoint in ENDPOINTS
    for caller in CALLERS
    if caller != "other client" or endpoint.other_client
]


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    """Client secrets are hashed at creation; the matrix makes many clients and tests no hash."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(consumer, charlie, make_persona):
    """The consumer's subscription with one unread notification, by which the matrix is judged."""
    type_id = EventType.objects.order_by("id").values_list("id", flat=True).first()
    subscription = subscription_create(
        client_id=consumer.client_id,
        event_type_ids=[type_id],
        subscribed_by="alice",
        notification_url="http://127.0.0.1:9/hook",
    )
    event_ingest(producer="test", type_id=type_id, payload={}, idempotency_key=None)
    return {"consumer": consumer, "charlie": charlie, "sub": str(subscription.id), "type": type_id}


def call(client: APIClient, endpoint: Endpoint, *, sub: str, type_id: str):
    path = endpoint.path.replace("{sub}", sub)
    body = None
    if endpoint.body is not None:
        body = {
            key: ({**value, "type": type_id} if isinstance(value, dict) else value)
            for key, value in endpoint.body.items()
        }
    return getattr(client, endpoint.method.lower())(
        path, body, format="json" if body is not None else None, **endpoint.headers
    )


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "caller"), CELLS)
def test_wrong_callers_get_the_exact_refusal_and_learn_nothing(endpoint, caller, world):
    consumer, charlie = world["consumer"], world["charlie"]
    application = consumer.application
    if caller == "no token":
        client = APIClient()
    elif caller == "expired token":
        client = bearer(issue_token(application, scopes=[endpoint.scope], expires_in=-1))
    elif caller == "revoked token":
        token = issue_token(application, scopes=[endpoint.scope])
        bearer(token).get("/notification/v1/event-types")  # now in the token cache
        AccessToken.objects.filter(application=application, scope=endpoint.scope).delete()
        client = bearer(token)
    elif caller == "wrong scope":
        client = bearer(issue_token(application, scopes=[endpoint.wrong_scope]))
    else:
        client = bearer(issue_token(charlie.application, scopes=[endpoint.scope]))

    response = call(client, endpoint, sub=world["sub"], type_id=world["type"])

    if caller == "other client" and endpoint.other_client == "own":
        # Charlie's own (empty) queue: the consumer's unread notification stays unseen.
        assert response.status_code == 204
        assert bearer(consumer.token).get(endpoint.path).status_code == 200
        return
    status, code = CALLERS[caller]
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code
    assert set(body) <= {"code", "description", "field"}
    assert world["sub"] not in response.content.decode()
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")
    if caller == "other client":
        unknown = call(client, endpoint, sub=str(uuid.uuid4()), type_id=world["type"])
        assert (unknown.status_code, unknown.json()) == (response.status_code, body)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        pytest.param({"grant_type": "client_credentials"}, 401, "invalid_client", id="no client"),
        pytest.param(
            {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"},
            401,
            "invalid_client",
            id="unknown client",
        ),
        pytest.param({"grant_type": "password-ish"}, 400, "unsupported_grant_type", id="grant"),
    ],
)
def test_oauth_token_endpoint_refuses_in_oauths_own_format(data, status, error, anonymous):
    response = anonymous.post("/o/token/", data)
    assert response.status_code == status
    assert response.json()["error"] == error
