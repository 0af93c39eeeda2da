"""The authorization matrix: every endpoint x every way of being the wrong caller.

One row per endpoint; one column per wrong caller. Each cell answers an exact status with the
surface's error body (the platform's, or Kazoo's envelope on the device API), and a foreign object
answers exactly as an unknown one does. A new surface is a new row in ENDPOINTS (and, for a new
kind of caller, a new entry in CALLERS).

"Other account" is Oscar, a user with the right scopes who is not a member of Maria's account
`acme`. "Other tenant administrator" is Bob, an administrator of Globex, on Acme's subscription;
"other tenant producer" is Globex's producer addressing Acme's account (tests/conftest.py). The
stream rows never open a stream: every cell is a refusal, answered before streaming.
"""

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from devices.api.kazoo import KAZOO_MESSAGES
from devices.models import Device
from events.models import Event, EventType
from events.services import event_ingest
from notifyhub.tenancy import HUB
from subscriptions.models import Subscription
from subscriptions.redelivery import recovery_start
from subscriptions.services import subscription_create
from tests.conftest import issue_token

ADMIN = settings.SCOPE_ADMINISTRATOR
CONSUMER = settings.SCOPE_CONSUMER
PUBLISH = settings.SCOPE_PUBLISH
DEVICES = settings.SCOPE_DEVICES


@dataclass(frozen=True)
class Endpoint:
    method: str
    # `{sub}`: the consumer's subscription id; `{account}`: Maria's account (in the body too);
    # `{recovery}`: a recovery of the consumer's subscription
    path: str
    scope: str  # the scope that opens it
    wrong_scope: str  # a real scope that does not
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    # What another client sees instead of the consumer's object: "404" (same as an unknown id),
    # "own" (its own, empty view of a per-client resource), or None (not per-client).
    other_client: str | None = None
    # What a user of another account gets: "403" (refused as for an account that does not
    # exist), "ticket" (its own ticket, which then cannot open the account's stream), or None.
    other_account: str | None = None
    # Which caller of another tenant (Globex), holding the scope, is refused: "administrator"
    # (Acme's subscription answers as an unknown id does) or "producer" (addressing Acme's
    # account is refused naming the field, as addressing an account that does not exist is).
    other_tenant: str | None = None
    envelope: str = "platform"  # or "kazoo"
    token_header: str = "HTTP_AUTHORIZATION"  # the device API's clients send HTTP_X_AUTH_TOKEN
    # Served on the async stream path, whose database work runs on other threads: the cell's
    # data must be committed for them to see it.
    transactional: bool = False


INGEST_BODY = {"event": {"type": "{type}", "payload": {"account_id": "{account}"}}}
APP = "com.acme.phone"
DEVICE = f"/v2/accounts/{{account}}/push_notification_subscriptions/{APP}/dev1"
DEVICE_DOCUMENT = {
    "mobile_device_id": "phone-1",
    "platform": "ios",
    "sip_proxy_server": "sip.acme.test",
    "notification_registration_ids": {
        "a" * 64: {"notification_preferences": ["chat"], "notification_type": "apns"}
    },
}
SUBSCRIBE = "/api/push/subscribe?clientId=matrix&kinds=accountStatus&accountIds={account}"
SUBSCRIPTION = "/notification/v1/subscriptions/{sub}"
KAZOO = {"envelope": "kazoo", "token_header": "HTTP_X_AUTH_TOKEN", "other_account": "403"}

ADMINISTERED = {"other_tenant": "administrator"}

ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/notifications",
        PUBLISH,
        CONSUMER,
        INGEST_BODY,
        {"HTTP_API_VERSION": "3.0"},
        other_tenant="producer",
    ),
    Endpoint("GET", "/notification/v1/event-types", CONSUMER, PUBLISH),
    Endpoint("POST", "/notification/v1/subscriptions", ADMIN, CONSUMER, {"client_id": "x"}),
    Endpoint("GET", SUBSCRIPTION, CONSUMER, PUBLISH, other_client="404"),
    Endpoint("DELETE", SUBSCRIPTION, ADMIN, CONSUMER, **ADMINISTERED),
    Endpoint("GET", f"{SUBSCRIPTION}/notifications", CONSUMER, PUBLISH, other_client="404"),
    Endpoint("POST", f"{SUBSCRIPTION}/webhook-secret", ADMIN, CONSUMER, **ADMINISTERED),
    Endpoint("POST", f"{SUBSCRIPTION}/pause", ADMIN, CONSUMER, **ADMINISTERED),
    Endpoint("POST", f"{SUBSCRIPTION}/resume", ADMIN, CONSUMER, **ADMINISTERED),
    Endpoint(
        "POST",
        f"{SUBSCRIPTION}/recoveries",
        ADMIN,
        CONSUMER,
        {"since": "2020-01-01T00:00:00Z", "scope": "all"},
        **ADMINISTERED,
    ),
    Endpoint("GET", f"{SUBSCRIPTION}/recoveries/{{recovery}}", ADMIN, CONSUMER, **ADMINISTERED),
    Endpoint("GET", "/api/v3/integration/notifications", CONSUMER, PUBLISH, other_client="own"),
    Endpoint("POST", "/api/v3/integration/notifications/release", CONSUMER, PUBLISH),
    Endpoint("GET", SUBSCRIBE, CONSUMER, PUBLISH, other_account="403", transactional=True),
    Endpoint(
        "POST", "/api/push/tickets", CONSUMER, PUBLISH, other_account="ticket", transactional=True
    ),
    Endpoint("GET", DEVICE, DEVICES, CONSUMER, **KAZOO),
    Endpoint("PUT", DEVICE, DEVICES, CONSUMER, {"data": DEVICE_DOCUMENT}, **KAZOO),
    Endpoint("POST", DEVICE, DEVICES, CONSUMER, {"data": DEVICE_DOCUMENT}, **KAZOO),
    Endpoint("DELETE", DEVICE, DEVICES, CONSUMER, **KAZOO),
]

# Each wrong caller: (status, code) it must get.
CALLERS = {
    "no token": (401, "NOT000001"),
    "expired token": (401, "NOT000001"),
    "revoked token": (401, "NOT000001"),
    "wrong scope": (403, "NOT000002"),
    "other client": (404, "NOT000003"),
    "other account": (403, "NOT000012"),
    "other tenant administrator": (404, "NOT000003"),
    "other tenant producer": (422, "NOT000013"),
}

CELLS = [
    pytest.param(
        endpoint,
        caller,
        id=f"{endpoint.method} {endpoint.path} | {caller}",
        marks=pytest.mark.django_db(transaction=endpoint.transactional),
    )
    for endpoint in ENDPOINTS
    for caller in CALLERS
    if (caller != "other client" or endpoint.other_client)
    and (caller != "other account" or endpoint.other_account)
    and (not caller.startswith("other tenant") or caller == f"other tenant {endpoint.other_tenant}")
]


@pytest.fixture
def world(consumer, charlie, member, outsider, bob, globex_producer):
    """The consumer's subscription with one unread notification and one recovery, and Maria's
    device in her account `acme`, by which the matrix is judged."""
    type_id = EventType.objects.order_by("id").values_list("id", flat=True).first()
    subscription = subscription_create(
        reach=HUB,
        client_id=consumer.client_id,
        event_type_ids=[type_id],
        subscribed_by="alice",
        notification_url="http://127.0.0.1:9/hook",
    )
    event_ingest(producer="test", reach=HUB, type_id=type_id, payload={}, idempotency_key=None)
    recovery = recovery_start(
        subscription=subscription,
        since=subscription.subscription_date,
        scope="failed",
        requested_by="alice",
    )
    created = with_token(APIClient(), KAZOO["token_header"], member.token).put(
        DEVICE.format(account="acme"), {"data": DEVICE_DOCUMENT}, format="json"
    )
    assert created.status_code == 201, created.content
    return {
        "consumer": consumer,
        "charlie": charlie,
        "outsider": outsider,
        "bob": bob,
        "globex_producer": globex_producer,
        "sub": str(subscription.id),
        "recovery": str(recovery.pk),
        "type": type_id,
        "account": "acme",
        "device": Device.objects.get().revision,
        "subscription": subscription_state(subscription.id),
        "events": Event.objects.count(),
    }


def subscription_state(pk: uuid.UUID) -> dict[str, Any]:
    """What an administrator's call could change about the consumer's subscription."""
    subscription = Subscription.objects.filter(pk=pk).first()
    if subscription is None:
        return {}
    return {
        "paused_at": subscription.paused_at,
        "webhook_secret": subscription.webhook_secret,
        "webhook_secret_previous_until": subscription.webhook_secret_previous_until,
        "recoveries": list(subscription.recoveries.values_list("pk", flat=True)),
    }


def filled(value: Any, names: dict[str, str]) -> Any:
    """`value` with each `{name}` in its strings (at any depth) replaced by names[name]."""
    if isinstance(value, dict):
        return {key: filled(item, names) for key, item in value.items()}
    if isinstance(value, str):
        for name, replacement in names.items():
            value = value.replace(f"{{{name}}}", replacement)
    return value


def call(
    client: APIClient,
    endpoint: Endpoint,
    *,
    sub: str,
    type_id: str,
    account: str = "acme",
    recovery: str = "0",
):
    names = {"sub": sub, "type": type_id, "account": account, "recovery": recovery}
    path = filled(endpoint.path, names)
    body = filled(endpoint.body, names)
    return getattr(client, endpoint.method.lower())(
        path, body, format="json" if body is not None else None, **endpoint.headers
    )


def with_token(client: APIClient, header: str, token: str) -> APIClient:
    client.credentials(**{header: f"Bearer {token}" if header == "HTTP_AUTHORIZATION" else token})
    return client


def bearer(token: str) -> APIClient:
    return with_token(APIClient(), "HTTP_AUTHORIZATION", token)


def refusal(response, endpoint: Endpoint, status: int, code: str, account: str) -> dict[str, Any]:
    """The refusal's body in the surface's own format, minus what differs between two answers
    to the same question (the request id and time; the account id the caller named)."""
    body = response.json()
    if endpoint.envelope == "kazoo":
        assert body["status"] == "error"
        assert (body["error"], body["message"]) == (str(status), KAZOO_MESSAGES[status])
        assert set(body["data"]) == {"message"}
        return {key: value for key, value in body.items() if key not in ("request_id", "timestamp")}
    assert body["code"] == code
    assert set(body) <= {"code", "description", "field"}
    return {key: str(value).replace(account, "{account}") for key, value in body.items()}


@pytest.mark.parametrize(("endpoint", "caller"), CELLS)
def test_wrong_callers_get_the_exact_refusal_and_learn_nothing(endpoint, caller, world):
    consumer, charlie, outsider = world["consumer"], world["charlie"], world["outsider"]
    application = consumer.application

    def client_for(token: str) -> APIClient:
        return with_token(APIClient(), endpoint.token_header, token)

    if caller == "no token":
        client = APIClient()
    elif caller == "expired token":
        client = client_for(issue_token(application, scopes=[endpoint.scope], expires_in=-1))
    elif caller == "revoked token":
        token = issue_token(application, scopes=[endpoint.scope])
        bearer(token).get("/notification/v1/event-types")  # now in the token cache
        AccessToken.objects.filter(application=application, scope=endpoint.scope).delete()
        client = client_for(token)
    elif caller == "wrong scope":
        client = client_for(issue_token(application, scopes=[endpoint.wrong_scope]))
    elif caller == "other client":
        client = client_for(issue_token(charlie.application, scopes=[endpoint.scope]))
    elif caller == "other tenant administrator":
        client = client_for(issue_token(world["bob"].application, scopes=[endpoint.scope]))
    elif caller == "other tenant producer":
        client = client_for(
            issue_token(world["globex_producer"].application, scopes=[endpoint.scope])
        )
    else:
        token = issue_token(outsider.application, scopes=[endpoint.scope], user=outsider.user)
        client = client_for(token)

    response = call(
        client, endpoint, sub=world["sub"], type_id=world["type"], recovery=world["recovery"]
    )

    if caller == "other client" and endpoint.other_client == "own":
        # Charlie's own (empty) queue: the consumer's unread notification stays unseen.
        assert response.status_code == 204
        assert bearer(consumer.token).get(endpoint.path).status_code == 200
        return
    if caller == "other account" and endpoint.other_account == "ticket":
        # Oscar's ticket is his own; it opens nothing of `acme`, and is refused before a stream.
        assert response.status_code == 201, response.content
        ticket = response.json()["ticket"]
        response = APIClient().get(SUBSCRIBE.format(account="acme") + f"&ticket={ticket}")
    status, code = CALLERS[caller]
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = refusal(response, endpoint, status, code, world["account"])
    assert world["sub"] not in response.content.decode()
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Bearer")
    if caller in ("other client", "other tenant administrator"):
        unknown = call(
            client,
            endpoint,
            sub=str(uuid.uuid4()),
            type_id=world["type"],
            recovery=world["recovery"],
        )
        assert (unknown.status_code, unknown.json()) == (response.status_code, response.json())
    if caller == "other tenant producer":
        assert body["field"] == "event.payload.account_id"
    if caller == "other tenant producer" or (
        caller == "other account" and endpoint.other_account == "403"
    ):
        unknown = call(client, endpoint, sub=world["sub"], type_id=world["type"], account="nowhere")
        assert unknown.status_code == response.status_code
        assert refusal(unknown, endpoint, status, code, "nowhere") == body
    # Maria's device, the consumer's subscription and the event log are as they were left,
    # whoever knocked.
    assert Device.objects.get().revision == world["device"]
    assert subscription_state(uuid.UUID(world["sub"])) == world["subscription"]
    assert Event.objects.count() == world["events"]


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
