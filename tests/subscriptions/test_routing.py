"""Routing: one queued notification per matching subscription, in a constant number of queries."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from events.channels import channels_all
from events.services import event_ingest
from subscriptions.models import Notification
from subscriptions.services import notifications_purge_expired, subscription_create

pytestmark = pytest.mark.django_db


def ingest(n):
    return event_ingest(producer="key:t", type_id="chat", payload={"n": n}, idempotency_key=None)


def queries_to_ingest(n):
    with CaptureQueriesContext(connection) as captured:
        ingest(n)
    return len(captured)


def test_the_pull_channel_is_registered():
    assert "pull" in {channel.name for channel in channels_all()}


def test_ingest_cost_does_not_grow_with_the_number_of_subscriptions():
    subscription_create(client_id="c-0", event_type_ids=["chat"], subscribed_by="a")
    ingest(0)  # Warm the per-process catalogue cache, so both counts below are steady-state.
    with_one = queries_to_ingest(1)
    for index in range(1, 50):
        subscription_create(client_id=f"c-{index}", event_type_ids=["chat"], subscribed_by="a")
    with_fifty = queries_to_ingest(2)
    assert with_fifty == with_one
    assert Notification.objects.filter(event__payload__n=2).count() == 50


def test_only_subscriptions_to_the_type_get_a_notification():
    subscription_create(client_id="a", event_type_ids=["chat"], subscribed_by="x")
    subscription_create(client_id="b", event_type_ids=["ticket"], subscribed_by="x")
    ingest(1)
    assert list(Notification.objects.values_list("subscription__client_id", flat=True)) == ["a"]


def test_notifications_expire_after_their_subscriptions_retention():
    from datetime import timedelta

    subscription = subscription_create(
        client_id="a", event_type_ids=["chat"], subscribed_by="x", retention=timedelta(hours=72)
    )
    ingest(1)
    notification = Notification.objects.get(subscription=subscription)
    assert notification.expires_at - notification.created_at == timedelta(hours=72)


def test_the_purge_deletes_only_expired_rows():
    from django.utils import timezone

    subscription_create(client_id="a", event_type_ids=["chat"], subscribed_by="x")
    for n in range(3):
        ingest(n)
    Notification.objects.filter(event__payload__n__lt=2).update(expires_at=timezone.now())
    assert notifications_purge_expired(batch_size=1) == 2
    assert Notification.objects.count() == 1
