"""Routing: one queued notification per matching subscription, in a constant number of queries."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from events.channels import channels_all
from events.models import Event
from events.services import event_ingest
from notifyhub.tenancy import HUB
from subscriptions.models import Delivery, Notification
from subscriptions.services import notifications_purge_expired, subscription_create

pytestmark = pytest.mark.django_db


def ingest(n):
    return event_ingest(
        producer="key:t", reach=HUB, type_id="chat", payload={"n": n}, idempotency_key=None
    )


def queries_to_ingest(n):
    with CaptureQueriesContext(connection) as captured:
        ingest(n)
    return len(captured)


def test_the_pull_channel_is_registered():
    assert "pull" in {channel.name for channel in channels_all()}


def subscribe(index):
    # Every other subscription also pushes, so the webhook outbox has rows to write too.
    subscription_create(
        reach=HUB,
        client_id=f"c-{index}",
        event_type_ids=["chat"],
        subscribed_by="a",
        notification_url=f"https://hooks.example/{index}" if index % 2 == 0 else "",
    )


def test_ingest_cost_does_not_grow_with_the_number_of_subscriptions():
    subscribe(0)
    ingest(0)  # Warm the per-process catalogue cache, so both counts below are steady-state.
    with_one = queries_to_ingest(1)
    for index in range(1, 50):
        subscribe(index)
    with_fifty = queries_to_ingest(2)
    # PostgreSQL: the event's INSERT ... ON CONFLICT with, as data-modifying CTEs, one
    # INSERT ... SELECT each for the pull queues and the webhook outbox, in one statement.
    # Elsewhere those are three statements (the stream and device channels write nothing here).
    assert with_one == with_fifty == (1 if connection.vendor == "postgresql" else 3)
    assert Notification.objects.filter(event__payload__n=2).count() == 50
    assert Delivery.objects.filter(event__payload__n=2).count() == 25


def test_only_subscriptions_to_the_type_get_a_notification():
    subscription_create(reach=HUB, client_id="a", event_type_ids=["chat"], subscribed_by="x")
    subscription_create(reach=HUB, client_id="b", event_type_ids=["ticket"], subscribed_by="x")
    ingest(1)
    assert list(Notification.objects.values_list("subscription__client_id", flat=True)) == ["a"]


def test_notifications_and_deliveries_expire_after_their_subscriptions_retention():
    subscription = subscription_create(
        reach=HUB,
        client_id="a",
        event_type_ids=["chat"],
        subscribed_by="x",
        notification_url="https://hooks.example/a",
        retention=timedelta(hours=72, microseconds=5),
    )
    event = Event.objects.get(id=ingest(1).event_id)
    expires_at = event.created_at + timedelta(hours=72, microseconds=5)
    notification = Notification.objects.get(subscription=subscription)
    delivery = Delivery.objects.get(subscription=subscription)
    assert (notification.created_at, notification.expires_at) == (event.created_at, expires_at)
    assert (delivery.created_at, delivery.expires_at) == (event.created_at, expires_at)
    # The database computes the sum: an exact match proves it is stored as the ORM stores
    # datetimes (on SQLite a text comparison).
    assert Notification.objects.filter(expires_at=expires_at).exists()
    assert Delivery.objects.filter(expires_at=expires_at, next_attempt_at=event.created_at).exists()


@pytest.mark.parametrize("retention_hours", [6, 100])
def test_rows_live_for_the_longer_of_the_retention_and_the_integration_hold(retention_hours):
    """72 h for the Integration API unless the subscription keeps them longer."""
    subscription = subscription_create(
        reach=HUB,
        client_id="a",
        event_type_ids=["chat"],
        subscribed_by="x",
        notification_url="https://hooks.example/a",
        retention=timedelta(hours=retention_hours),
    )
    event = Event.objects.get(id=ingest(1).event_id)
    expires_at = event.created_at + timedelta(hours=max(retention_hours, 72))
    assert Notification.objects.get(subscription=subscription).expires_at == expires_at
    assert Delivery.objects.get(subscription=subscription).expires_at == expires_at


def test_a_client_gets_one_delivery_per_url_however_many_subscriptions_match():
    def subscribe(client_id, url):
        return subscription_create(
            reach=HUB,
            client_id=client_id,
            event_type_ids=["chat"],
            subscribed_by="x",
            notification_url=url,
        )

    subscribe("a", "https://hooks.example/a")
    newest = subscribe("a", "https://hooks.example/a")
    other_url = subscribe("a", "https://hooks.example/a2")
    other_client = subscribe("b", "https://hooks.example/a")
    ingest(1)

    assert set(Delivery.objects.values_list("subscription_id", flat=True)) == {
        newest.id,
        other_url.id,
        other_client.id,
    }
    assert Notification.objects.count() == 4  # each subscription's own pull queue


def test_the_purge_deletes_only_expired_rows():
    subscription_create(reach=HUB, client_id="a", event_type_ids=["chat"], subscribed_by="x")
    for n in range(3):
        ingest(n)
    Notification.objects.filter(event__payload__n__lt=2).update(expires_at=timezone.now())
    assert notifications_purge_expired(batch_size=1) == 2
    assert Notification.objects.count() == 1
