"""Tenant boundaries: the hub sits between companies.

Acme's personas (tests/conftest.py: the administrator, the consumer, Maria of account `acme`,
the producer) and Globex's (Bob, an administrator; a Globex producer). Bob holds every scope an
administrator gets, legitimately, and must reach nothing of Acme's; the hub operator's own client
reaches everything, by an explicit grant. Each row is a finding of the tenancy issue.
"""

import pytest
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from devices.models import Device
from events.models import Event
from events.services import api_key_create
from notifyhub.auth import token_validate
from notifyhub.models import Account
from notifyhub.tenancy import Reach
from subscriptions.models import Subscription
from subscriptions.services import subscription_create
from tests.conftest import OTHER_TENANT, TENANT

pytestmark = pytest.mark.django_db

SUBSCRIPTIONS = "/notification/v1/subscriptions"
DEVICE = "/v2/accounts/acme/push_notification_subscriptions/com.acme.phone/dev1"
DOCUMENT = {
    "data": {
        "mobile_device_id": "phone-1",
        "platform": "ios",
        "sip_proxy_server": "sip.acme.test",
        "notification_registration_ids": {
            "a" * 64: {"notification_preferences": ["incoming_call"], "notification_type": "apns"}
        },
    }
}


@pytest.fixture
def acme_subscription(consumer):
    return subscription_create(
        reach=Reach(tenant_id=TENANT),
        client_id=consumer.client_id,
        event_type_ids=["chat"],
        subscribed_by="alice",
        notification_url="https://hooks.example.com/acme",
    )


def kazoo(persona) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_AUTH_TOKEN=persona.token)
    return client


def publish(client: APIClient, payload: dict, **headers: str):
    return client.post(
        "/v1/notifications",
        {"event": {"type": "newMessage", "payload": payload}},
        format="json",
        HTTP_API_VERSION="3.0",
        **headers,
    )


# --- Administrators act on their own tenant only ---


def test_an_administrator_subscribes_only_its_own_tenants_clients(administrator, bob, consumer):
    body = {"event_type_ids": ["chat"], "client_id": consumer.client_id}

    refused = bob.api().post(SUBSCRIPTIONS, body, format="json")
    allowed = administrator.api().post(SUBSCRIPTIONS, body, format="json")

    assert (refused.status_code, refused.json()["field"]) == (400, "client_id")
    assert allowed.status_code == 201
    assert Subscription.objects.get().subscribed_by == administrator.client_id


def test_an_administrator_of_another_tenant_cannot_delete_or_rotate(bob, acme_subscription):
    deleted = bob.api().delete(f"{SUBSCRIPTIONS}/{acme_subscription.id}")
    rotated = bob.api().post(f"{SUBSCRIPTIONS}/{acme_subscription.id}/webhook-secret")

    assert (deleted.status_code, deleted.json()["code"]) == (404, "NOT000003")
    assert (rotated.status_code, rotated.json()["code"]) == (404, "NOT000003")
    assert "webhook_secret" not in rotated.json()
    kept = Subscription.objects.get()
    assert kept.webhook_secret == acme_subscription.webhook_secret


def test_the_hub_operator_administers_every_tenant(hub_operator, acme_subscription):
    rotated = hub_operator.api().post(f"{SUBSCRIPTIONS}/{acme_subscription.id}/webhook-secret")
    deleted = hub_operator.api().delete(f"{SUBSCRIPTIONS}/{acme_subscription.id}")

    assert rotated.status_code == 200
    assert deleted.status_code == 204
    assert not Subscription.objects.exists()


# --- The device API: members only, no administrator bypass ---


@pytest.mark.parametrize("persona", ["bob", "administrator"])
def test_an_administrator_who_is_not_a_member_cannot_touch_an_accounts_devices(
    request, member, persona
):
    assert kazoo(member).put(DEVICE, DOCUMENT, format="json").status_code == 201
    caller = kazoo(request.getfixturevalue(persona))

    registered = caller.put(DEVICE.replace("dev1", "dev2"), DOCUMENT, format="json")
    deleted = caller.delete(DEVICE)

    assert registered.status_code == deleted.status_code == 403
    assert registered.json()["status"] == "error"
    assert Device.objects.count() == 1


def test_the_hub_operator_registers_in_any_account(hub_operator, member):
    assert kazoo(hub_operator).put(DEVICE, DOCUMENT, format="json").status_code == 201


# --- Producers address their own tenant's accounts and users only ---


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"account_id": "acme"}, "event.payload.account_id"),
        ({"user_id": "maria"}, "event.payload.user_id"),
        ({"account_id": "nowhere"}, "event.payload.account_id"),
    ],
)
def test_a_producer_cannot_address_another_tenants_accounts_or_users(
    globex_producer, member, payload, field
):
    response = publish(globex_producer.api(), payload)

    assert (response.status_code, response.json()["field"]) == (422, field)
    assert response.json()["code"] == "NOT000013"
    assert not Event.objects.exists()


@pytest.mark.parametrize("payload", [{"account_id": "acme"}, {"user_id": "maria"}, {"n": 1}])
def test_a_producer_addresses_its_own_tenants_accounts_and_members(producer, member, payload):
    assert publish(producer.api(), payload).status_code == 200


def test_a_producer_may_address_its_own_tenants_clients_streams(producer, consumer):
    assert publish(producer.api(), {"user_id": consumer.client_id}).status_code == 200


@pytest.mark.parametrize(
    ("tenant", "any_account", "status"),
    [(OTHER_TENANT, False, 422), (None, False, 422), (TENANT, False, 200), (None, True, 200)],
)
def test_an_api_key_addresses_its_tenant_or_with_an_explicit_grant_any(
    member, tenant, any_account, status
):
    key = api_key_create(name="shop", tenant_id=tenant, any_account=any_account).raw_key

    response = publish(APIClient(), {"account_id": "acme"}, HTTP_CLIENT_TOKEN=key)

    assert response.status_code == status
    assert Account.objects.get(id="acme").tenant_id == TENANT


# --- Credentials that end ---


def test_a_deactivated_users_token_is_refused_at_once(member):
    assert kazoo(member).get(DEVICE).status_code == 404  # the cached, valid token
    member.user.is_active = False
    member.user.save()

    assert kazoo(member).get(DEVICE).status_code == 401
    assert member.api().get("/api/v3/integration/notifications").status_code == 401


def test_a_renamed_users_token_names_the_new_username_on_the_next_request(member):
    """Streams listen as the username the token cache holds with the token's facts."""
    assert token_validate(member.token).username == member.user.username  # now cached
    member.user.username = "maria.renamed"
    member.user.save()

    assert token_validate(member.token).username == "maria.renamed"


def test_editing_a_tokens_scope_counts_on_the_next_request(consumer):
    api = consumer.api()
    assert api.get("/api/v3/integration/notifications").status_code == 204  # now cached
    token = AccessToken.objects.get(application=consumer.application)
    token.scope = "events:publish"
    token.save()

    assert api.get("/api/v3/integration/notifications").status_code == 403


def test_moving_a_client_to_another_tenant_counts_on_the_next_request(bob, consumer):
    """Bob's token is cached with Globex; once the operator moves his client to Acme, his very
    next request acts for Acme."""
    body = {"event_type_ids": ["chat"], "client_id": consumer.client_id}
    assert bob.api().post(SUBSCRIPTIONS, body, format="json").status_code == 400
    bob.application.tenant_id = TENANT
    bob.application.save()

    assert bob.api().post(SUBSCRIPTIONS, body, format="json").status_code == 201
