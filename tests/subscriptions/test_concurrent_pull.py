"""Read-once under concurrency (PostgreSQL): 8 pullers drain 5,000 notifications exactly once."""

import threading
from collections import Counter

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from events.models import Event, new_event_id
from notifyhub.tenancy import HUB
from subscriptions.models import Notification
from subscriptions.services import subscription_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

TOTAL = 5000
PULLERS = 8


def fill_queue(*subscriptions) -> list[str]:
    """TOTAL events, each queued to every one of `subscriptions`."""
    now = timezone.now()
    events = [
        Event(
            id=new_event_id(),
            type_id="chat",
            payload={"n": n},
            producer="key:t",
            payload_hash=str(n),
            created_at=now,
        )
        for n in range(TOTAL)
    ]
    Event.objects.bulk_create(events, batch_size=1000)
    Notification.objects.bulk_create(
        [
            Notification(
                subscription=subscription,
                event=event,
                created_at=now,
                expires_at=now + subscription.retention,
            )
            for event in events
            for subscription in subscriptions
        ],
        batch_size=1000,
    )
    return [event.id for event in events]


def run_pullers(pull) -> list[list[str]]:
    """Run `pull(client)` loops in PULLERS threads until each sees an empty queue."""
    received: list[list[str]] = [[] for _ in range(PULLERS)]
    errors: list[BaseException] = []
    start = threading.Barrier(PULLERS)

    def worker(index: int) -> None:
        try:
            start.wait()
            while batch := pull():
                received[index].extend(batch)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(PULLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return received


def assert_exactly_once_in_order(received: list[list[str]], expected: list[str]) -> None:
    everything = [item for batch in received for item in batch]
    duplicates = [item for item, count in Counter(everything).items() if count > 1]
    assert duplicates == []
    assert sorted(everything) == sorted(expected)  # nothing lost
    order = {event_id: position for position, event_id in enumerate(expected)}
    for batch in received:  # FIFO per caller
        positions = [order[item] for item in batch]
        assert positions == sorted(positions)
    assert not Notification.objects.exists()


def test_paged_pullers_receive_every_notification_exactly_once(consumer):
    subscription = subscription_create(
        reach=HUB, client_id=consumer.client_id, event_type_ids=["chat"], subscribed_by="a"
    )
    expected = fill_queue(subscription)
    url = f"/notification/v1/subscriptions/{subscription.id}/notifications"

    def pull() -> list[str]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {consumer.token}")
        response = client.get(url, {"size": 100})
        assert response.status_code == 200
        return [item["id"] for item in response.json()["results"]]

    assert_exactly_once_in_order(run_pullers(pull), expected)


@pytest.mark.parametrize("subscriptions", [1, 2])
def test_fifo_pullers_receive_every_notification_exactly_once(consumer, subscriptions):
    """With two subscriptions of the client covering every event, still once per event."""
    expected = fill_queue(
        *(
            subscription_create(
                reach=HUB, client_id=consumer.client_id, event_type_ids=["chat"], subscribed_by="a"
            )
            for _ in range(subscriptions)
        )
    )

    def pull() -> list[str]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {consumer.token}")
        response = client.get("/api/v3/integration/notifications")
        if response.status_code == 204:
            return []
        assert response.status_code == 200
        return [response.json()["id"]]

    assert_exactly_once_in_order(run_pullers(pull), expected)
