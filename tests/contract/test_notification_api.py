"""The Notification API as its clients speak it (../shared/contracts/notification-api.md): the
contract's example requests, with JSON in and out, against a real daphne; the answers checked
field by field against the contract's examples (names, types, timestamp format)."""

import re

import httpx
import pytest

from events.services import event_ingest
from notifyhub.tenancy import HUB
from subscriptions.models import Subscription

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BASE = "/notification/v1/subscriptions"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")  # "2018-01-23T04:56:22Z"


def headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }


def assert_subscription_shape(body: dict) -> None:
    """The contract's example answer of create and get, typed as it types them."""
    assert list(body) == ["id", "subscription", "subscription_status"]
    assert isinstance(body["id"], str)
    detail, status = body["subscription"], body["subscription_status"]
    assert list(detail) == [
        "client_id",
        "event_type_ids",
        "subscribed_by",
        "subscription_date",
        "notification_url",
        "notification_page_size",
    ]
    assert all(isinstance(detail[key], str) for key in ("client_id", "subscribed_by"))
    assert all(isinstance(type_id, str) for type_id in detail["event_type_ids"])
    assert TIMESTAMP.match(detail["subscription_date"])
    assert isinstance(detail["notification_url"], str)
    assert isinstance(detail["notification_page_size"], int)
    assert list(status) == ["last_request_date", "number_of_remaining_notifications"]
    assert TIMESTAMP.match(status["last_request_date"])
    assert isinstance(status["number_of_remaining_notifications"], int)


def test_the_typical_flow_of_the_contract(daphne, administrator, consumer):
    with httpx.Client(base_url=daphne.url) as http:
        created = http.post(
            BASE,
            headers=headers(administrator.token),
            json={"event_type_ids": ["order.accepted", "chat"], "client_id": consumer.client_id},
        )
        assert created.status_code == 201
        assert created.reason_phrase == "Created"
        assert created.headers["content-type"] == "application/json"
        assert_subscription_shape(created.json())
        subscription_id = created.json()["id"]
        for order_id in ("H1234567890", "H1234567891"):
            event_ingest(
                producer="key:contract",
                reach=HUB,
                type_id="order.accepted",
                payload={"order_id": order_id},
                idempotency_key=None,
            )

        details = http.get(f"{BASE}/{subscription_id}", headers=headers(consumer.token))
        page = http.get(f"{BASE}/{subscription_id}/notifications", headers=headers(consumer.token))
        again = http.get(f"{BASE}/{subscription_id}", headers=headers(consumer.token))
        deleted = http.delete(f"{BASE}/{subscription_id}", headers=headers(administrator.token))
        gone = http.get(f"{BASE}/{subscription_id}", headers=headers(consumer.token))

    assert_subscription_shape(details.json())
    assert details.json()["subscription_status"]["number_of_remaining_notifications"] == 2
    assert page.status_code == 200
    assert list(page.json()) == ["page", "size", "results"]
    assert (page.json()["page"], page.json()["size"]) == (1, 2)
    for item in page.json()["results"]:
        assert list(item) == ["id", "event_type_id", "created_at", "expires_at", "payload"]
        assert TIMESTAMP.match(item["created_at"])
        assert TIMESTAMP.match(item["expires_at"])
    assert again.json()["subscription_status"]["number_of_remaining_notifications"] == 0
    assert deleted.status_code == 204
    assert (gone.status_code, gone.json()["code"]) == (404, "NOT000003")
    assert not Subscription.objects.exists()


def test_errors_carry_the_contracts_code_and_description(daphne, administrator, consumer):
    with httpx.Client(base_url=daphne.url) as http:
        unauthenticated = http.get(f"{BASE}/x", headers=headers("wrong"))
        wrong_scope = http.post(
            BASE,
            headers=headers(consumer.token),
            json={"event_type_ids": ["chat"], "client_id": consumer.client_id},
        )
        invalid = http.post(
            BASE,
            headers=headers(administrator.token),
            json={"event_type_ids": [], "client_id": consumer.client_id},
        )

    for response, status, phrase in (
        (unauthenticated, 401, "Unauthorized"),
        (wrong_scope, 403, "Forbidden"),
        (invalid, 400, "Bad Request"),
    ):
        assert (response.status_code, response.reason_phrase) == (status, phrase)
        assert response.headers["content-type"] == "application/json"
        assert set(response.json()) >= {"code", "description"}
        assert re.match(r"^NOT\d{6}$", response.json()["code"])
