"""The paged pull's page reads the same however it is rendered: by PostgreSQL in the claim
statement, or in Python (the portable path), and as the documented serializer would write it."""

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from events.models import Event
from events.services import event_ingest
from notifyhub.tenancy import HUB
from subscriptions.api.notification import NotificationPageOutput
from subscriptions.models import Notification, Subscription
from subscriptions.services import _claim_page_portable, subscription_create

pytestmark = pytest.mark.django_db

PAYLOADS = [
    {"text": "café ☕ 日本語 😀 Ωμέγα", "separators": "a\u2028b\u2029c"},
    {
        "nested": {
            "numbers": [0, -2, 3.5, 0.1, 1e-7, 2**53 + 1, -(10**20)],
            "literals": [True, False, None],
            "empty": [{}, []],
            "deep": {"a": {"b": {"c": ["d", {"e": "f"}]}}},
        }
    },
    {
        "escapes": 'quote " backslash \\ slash / newline \n tab \t return \r bell \u0007 \u001f',
        "html": "</script><!--",
        'key "quoted"\n': "value",
    },
    {"": "an empty key", "n": 1},
]
WHOLE_SECOND = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def url(subscription: Subscription) -> str:
    return f"/notification/v1/subscriptions/{subscription.id}/notifications"


def subscribe(consumer, **options) -> Subscription:
    return subscription_create(
        reach=HUB,
        client_id=consumer.client_id,
        event_type_ids=["chat"],
        subscribed_by="alice",
        **options,
    )


def queue_tricky_notifications() -> list[str]:
    """Events with PAYLOADS queued to every subscription to `chat`, with timestamps on a whole
    second, with trailing zeros in their microseconds, and with a single microsecond."""
    ids = [
        event_ingest(
            producer="key:t", reach=HUB, type_id="chat", payload=payload, idempotency_key=None
        ).event_id
        for payload in PAYLOADS
    ]
    second = timezone.now().replace(microsecond=0)
    Notification.objects.filter(event_id=ids[0]).update(
        created_at=second, expires_at=second + timedelta(hours=6)
    )
    Notification.objects.filter(event_id=ids[1]).update(
        created_at=second.replace(microsecond=500000),
        expires_at=second.replace(microsecond=1) + timedelta(hours=6),
    )
    return ids


def documented_page(subscription: Subscription, *, page: int) -> dict:
    """What DRF would answer for the subscription's whole queue, through the serializers that
    document the page (NotificationPageOutput) and DRF's own JSON renderer."""
    queued = list(
        Notification.objects.filter(subscription=subscription)
        .select_related("event")
        .order_by("id")
    )
    data = NotificationPageOutput(
        {
            "page": page,
            "size": len(queued),
            "results": [
                {
                    "id": notification.event_id,
                    "event_type_id": notification.event.type_id,
                    "created_at": notification.created_at,
                    "expires_at": notification.created_at + subscription.retention,
                    "payload": notification.event.payload,
                }
                for notification in queued
            ],
        }
    ).data
    return json.loads(JSONRenderer().render(data))


def test_a_page_reads_as_the_documented_serializer_writes_it(consumer):
    subscription = subscribe(consumer)
    ids = queue_tricky_notifications()
    expected = documented_page(subscription, page=1)

    response = consumer.api().get(url(subscription), {"size": 10})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content.decode("utf-8"))
    assert body == expected
    assert list(body) == ["page", "size", "results"]
    assert [item["id"] for item in body["results"]] == ids
    for item in body["results"]:
        assert list(item) == ["id", "event_type_id", "created_at", "expires_at", "payload"]
        assert isinstance(item["id"], str)
    # One timestamp format on every surface: whole seconds, the fraction dropped (not rounded).
    assert all(WHOLE_SECOND.match(item["created_at"]) for item in body["results"])
    assert all(WHOLE_SECOND.match(item["expires_at"]) for item in body["results"])
    first, second = body["results"][:2]
    assert first["created_at"] == second["created_at"]
    # As DRF's renderer writes them: escaped, for JavaScript's sake (the JSON is the same).
    assert "\u2028" not in response.content.decode("utf-8")
    assert "\\u2028" in response.content.decode("utf-8")
    assert not Notification.objects.filter(subscription=subscription).exists()


@pytest.mark.postgres
def test_postgresql_renders_the_page_as_the_portable_path_does(consumer):
    """The one place the portable path (private) runs on PostgreSQL: beside the fast one."""
    fast = subscribe(consumer)
    portable = subscribe(consumer)
    queue_tricky_notifications()

    response = consumer.api().get(url(fast), {"size": 10})
    page = _claim_page_portable(
        client_id=consumer.client_id, subscription_id=str(portable.id), size=10
    )

    assert response.status_code == 200
    assert page is not None
    assert response.json() == {
        "page": page.number,
        "size": page.size,
        "results": json.loads(page.results_json),
    }
    assert response.json()["size"] == len(PAYLOADS)
    assert not Notification.objects.exists()
    marks = Subscription.objects.values_list("pages_read", "last_request_date")
    assert all(pages == 1 and last is not None for pages, last in marks)


@pytest.mark.postgres
def test_postgresql_renders_an_empty_page_as_the_portable_path_does(consumer):
    fast = subscribe(consumer)
    portable = subscribe(consumer)

    response = consumer.api().get(url(fast))
    page = _claim_page_portable(
        client_id=consumer.client_id, subscription_id=str(portable.id), size=None
    )

    assert page is not None
    assert response.json() == {"page": 1, "size": 0, "results": []}
    assert (page.number, page.size, json.loads(page.results_json)) == (1, 0, [])


def test_without_a_size_the_subscriptions_page_size_applies(consumer):
    subscription = subscribe(consumer, notification_page_size=3)
    ids = [
        event_ingest(
            producer="key:t", reach=HUB, type_id="chat", payload={"n": n}, idempotency_key=None
        )
        for n in range(5)
    ]
    api = consumer.api()

    first = api.get(url(subscription)).json()
    second = api.get(url(subscription)).json()

    assert (first["page"], first["size"]) == (1, 3)
    assert [item["id"] for item in first["results"]] == [ingest.event_id for ingest in ids[:3]]
    assert (second["page"], second["size"]) == (2, 2)
    assert [item["id"] for item in second["results"]] == [ingest.event_id for ingest in ids[3:]]


@pytest.mark.parametrize("query", [{}, {"size": "5"}, {"size": "0"}, {"size": "²"}])
def test_a_foreign_pull_answers_404_and_changes_nothing(consumer, charlie, query):
    subscription = subscribe(consumer)
    event_ingest(
        producer="key:t", reach=HUB, type_id="chat", payload={"n": 1}, idempotency_key=None
    )

    response = charlie.api().get(url(subscription), query)

    assert response.status_code == 404
    assert response.json()["code"] == "NOT000003"
    subscription.refresh_from_db()
    assert (subscription.pages_read, subscription.last_request_date) == (0, None)
    assert Notification.objects.filter(subscription=subscription).count() == 1
    assert Event.objects.count() == 1
