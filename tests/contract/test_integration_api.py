"""The Integration API as its generated client speaks it (../shared/contracts/
integration-notifications.md): the Docplanner PHP client (swagger-codegen, Guzzle), against a
real daphne.

That client sends, for `pullNotification`, the documented Accept joined with "," (its
HeaderSelector implodes the list; the documentation shows ", "), and for `releaseNotifications`
only the vendor error type, with `Content-Type: application/json` (what its HeaderSelector
sends when an operation defines none) and an empty body.
"""

import re
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from events.services import event_ingest
from notifyhub.redis import redis_client, redis_key
from notifyhub.tenancy import HUB
from subscriptions.models import Delivery, Notification
from subscriptions.services import subscription_create
from tests.subscriptions.factories import push_subscription

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PULL = "/api/v3/integration/notifications"
RELEASE = "/api/v3/integration/notifications/release"
VENDOR = "application/vnd.docplanner+json"
VENDOR_ERROR = "application/vnd.error+docplanner+json"
DOCUMENTED_ACCEPT = f"{VENDOR}; charset=UTF-8, {VENDOR_ERROR}"
CLIENT_ACCEPT = f"{VENDOR}; charset=UTF-8,{VENDOR_ERROR}"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def client_headers(token: str, accept: str) -> dict[str, str]:
    """What the generated PHP client puts on every call, beside its Accept."""
    return {
        "Authorization": f"Bearer {token}",
        "Accept": accept,
        "User-Agent": "Swagger-Codegen/1.0.0/php",
    }


def ingest(type_id: str, **payload: object) -> str:
    return event_ingest(
        producer="key:contract", reach=HUB, type_id=type_id, payload=payload, idempotency_key=None
    ).event_id


@pytest.mark.parametrize("accept", [DOCUMENTED_ACCEPT, CLIENT_ACCEPT])
def test_pull_notification_answers_the_vendor_type_the_client_asks_for(daphne, consumer, accept):
    subscription_create(
        reach=HUB, client_id=consumer.client_id, event_type_ids=["chat"], subscribed_by="a"
    )
    first = ingest("chat", order_id="H1234567890")
    second = ingest("chat", order_id="H1234567891")
    headers = client_headers(consumer.token, accept)

    with httpx.Client(base_url=daphne.url, headers=headers) as http:
        one, two, empty = http.get(PULL), http.get(PULL), http.get(PULL)

    assert one.status_code == 200
    assert one.headers["content-type"] == f"{VENDOR}; charset=UTF-8"
    body = one.json()
    assert list(body) == ["id", "name", "data", "created_at", "expires_at"]
    assert (body["id"], body["name"], body["data"]) == (first, "chat", {"order_id": "H1234567890"})
    assert TIMESTAMP.match(body["created_at"])
    assert TIMESTAMP.match(body["expires_at"])
    assert two.json()["id"] == second
    assert (empty.status_code, empty.content) == (204, b"")


def test_pull_notification_errors_are_vnd_error_documents_with_the_platform_code(daphne, consumer):
    headers = client_headers("not-a-token", DOCUMENTED_ACCEPT)

    response = httpx.get(f"{daphne.url}{PULL}", headers=headers)

    assert response.status_code == 401
    assert response.reason_phrase == "Unauthorized"
    assert response.headers["content-type"] == f"{VENDOR_ERROR}; charset=UTF-8"
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["code"] == "NOT000001"
    assert body["message"] == body["description"]
    assert body["logref"] == response.headers["x-request-id"]


def test_plain_json_and_any_type_are_answered_as_json(daphne, consumer):
    subscription_create(
        reach=HUB, client_id=consumer.client_id, event_type_ids=["chat"], subscribed_by="a"
    )
    ingest("chat", n=1)
    ingest("chat", n=2)

    with httpx.Client(base_url=daphne.url) as http:
        as_json = http.get(PULL, headers=client_headers(consumer.token, "application/json"))
        as_any = http.get(PULL, headers=client_headers(consumer.token, "*/*"))
        refused = http.get(PULL, headers=client_headers(consumer.token, "text/html"))

    assert as_json.headers["content-type"] == "application/json"
    assert as_any.headers["content-type"] == "application/json"
    assert (refused.status_code, refused.json()["code"]) == (406, "NOT000011")
    assert refused.headers["content-type"] == "application/json"


def test_a_notification_is_pullable_for_72_hours_and_expires_at_says_so(daphne, consumer):
    """The contract: not pulled in 72 hours, expired and deleted; until then, there."""
    subscription_create(
        reach=HUB, client_id=consumer.client_id, event_type_ids=["chat"], subscribed_by="a"
    )
    kept = ingest("chat", n=1)
    gone = ingest("chat", n=2)
    Notification.objects.filter(event_id=kept).update(
        created_at=timezone.now() - timedelta(hours=71)
    )
    Notification.objects.filter(event_id=gone).update(expires_at=timezone.now())
    headers = client_headers(consumer.token, DOCUMENTED_ACCEPT)

    with httpx.Client(base_url=daphne.url, headers=headers) as http:
        body = http.get(PULL).json()
        after = http.get(PULL)

    assert body["id"] == kept
    assert after.status_code == 204


def test_an_event_two_subscriptions_match_is_pulled_once(daphne, consumer):
    for types in (["chat"], ["chat", "ticket"]):
        subscription_create(
            reach=HUB, client_id=consumer.client_id, event_type_ids=types, subscribed_by="a"
        )
    event_id = ingest("chat", n=1)
    headers = client_headers(consumer.token, DOCUMENTED_ACCEPT)

    with httpx.Client(base_url=daphne.url, headers=headers) as http:
        first, second = http.get(PULL), http.get(PULL)

    assert first.json()["id"] == event_id
    assert second.status_code == 204


def test_release_notifications_as_the_client_sends_it(daphne, consumer):
    redis_client().delete(redis_key("release", consumer.client_id))
    subscription = push_subscription(client_id=consumer.client_id, url="http://127.0.0.1:9/in")
    headers = {
        **client_headers(consumer.token, VENDOR_ERROR),
        "Content-Type": "application/json",
    }

    with httpx.Client(base_url=daphne.url, headers=headers) as http:
        released = http.post(RELEASE, content=b"")
        again = http.post(RELEASE, content=b"")

    assert released.status_code == 202
    assert released.reason_phrase == "Accepted"
    assert released.json() == {"released": 0, "dry_run": False}
    assert again.status_code == 429
    assert again.reason_phrase == "Too Many Requests"
    assert again.headers["content-type"] == f"{VENDOR_ERROR}; charset=UTF-8"
    assert int(again.headers["retry-after"]) > 0
    assert again.json()["code"] == "NOT000009"
    assert not Delivery.objects.filter(subscription=subscription).exists()
    redis_client().delete(redis_key("release", consumer.client_id))


def test_release_by_a_client_the_hub_does_not_push_to_is_refused(daphne, consumer):
    """The contract: usable only if the hub pushes events to the client's endpoint."""
    subscription_create(
        reach=HUB, client_id=consumer.client_id, event_type_ids=["chat"], subscribed_by="a"
    )
    headers = {
        **client_headers(consumer.token, VENDOR_ERROR),
        "Content-Type": "application/json",
    }

    response = httpx.post(f"{daphne.url}{RELEASE}", headers=headers, content=b"")

    assert response.status_code == 409
    assert response.reason_phrase == "Conflict"
    assert response.headers["content-type"] == f"{VENDOR_ERROR}; charset=UTF-8"
    assert response.json()["code"] == "NOT000015"
    assert not redis_client().exists(redis_key("release", consumer.client_id))


def test_a_vendor_error_type_refused_with_q_0_gets_the_platform_json(daphne):
    accept = f"{VENDOR_ERROR};q=0, application/json"

    response = httpx.get(f"{daphne.url}{PULL}", headers=client_headers("not-a-token", accept))

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert set(response.json()) == {"code", "description"}
