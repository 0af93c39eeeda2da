"""Sending a delivery: the body and signature, the ledger of attempts, and each outcome's status."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from subscriptions.models import Delivery, Subscription
from subscriptions.redelivery import deliveries_sweep
from subscriptions.webhooks import deliveries_send
from tests.receivers import Behaviour, receiving
from tests.subscriptions.factories import delivery_of, ingest, push_subscription

pytestmark = pytest.mark.django_db


def test_a_delivery_is_the_fifo_object_signed_by_standard_webhooks(consumer, receiver):
    subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
    event_id = ingest(n=7, text="héllo")

    assert deliveries_send().attempted == 1

    request = receiver.requests[0]
    message = Webhook(subscription.webhook_secret).verify(request.body, request.headers)
    assert set(message) == {"id", "name", "data", "created_at", "expires_at"}
    assert message["id"] == event_id
    assert message["name"] == "newMessage"
    assert message["data"] == {"n": 7, "text": "héllo"}
    assert request.headers["webhook-id"] == event_id
    assert request.headers["content-type"] == "application/json"
    delivery = delivery_of(subscription=subscription, event_id=event_id)
    assert delivery.status == Delivery.Status.DELIVERED
    assert delivery.last_status_code == 200
    attempt = delivery.attempt_log.get()
    assert (attempt.number, attempt.status_code, attempt.error) == (1, 200, "")
    assert attempt.duration_ms is not None


def test_the_pushed_body_equals_what_the_fifo_pull_returns(consumer, receiver):
    push_subscription(client_id=consumer.client_id, url=receiver.url)
    ingest(n=1)
    deliveries_send()

    pulled = consumer.api().get("/api/v3/integration/notifications")

    assert pulled.status_code == 200
    assert json.loads(receiver.requests[0].body) == pulled.json()


def test_a_500_fails_once_and_is_not_retried_under_once(consumer, failing_receiver):
    subscription = push_subscription(client_id=consumer.client_id, url=failing_receiver.url)
    event_id = ingest()

    deliveries_send()
    deliveries_sweep(grace=timedelta(0))
    deliveries_send()

    assert len(failing_receiver.requests) == 1
    delivery = delivery_of(subscription=subscription, event_id=event_id)
    assert delivery.status == Delivery.Status.FAILED
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        1,
        500,
        "HTTP 500",
    )
    assert delivery.attempt_log.get().response_excerpt == "boom"


def test_a_connection_error_fails_the_delivery(consumer):
    with receiving() as gone:
        url = gone.url
    subscription = push_subscription(client_id=consumer.client_id, url=url)
    event_id = ingest()

    deliveries_send()

    delivery = delivery_of(subscription=subscription, event_id=event_id)
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.last_status_code is None
    assert delivery.last_error


def test_a_timeout_fails_the_delivery(settings, consumer):
    settings.NOTIFYHUB_WEBHOOK_TIMEOUT = 0.5
    with receiving(Behaviour(delay=3)) as slow:
        subscription = push_subscription(client_id=consumer.client_id, url=slow.url)
        event_id = ingest()
        deliveries_send()
    delivery = delivery_of(subscription=subscription, event_id=event_id)
    assert delivery.status == Delivery.Status.FAILED
    assert "timed out" in delivery.last_error


def test_retry_policy_schedules_the_next_attempt_no_sooner_than_retry_after(consumer):
    with receiving(Behaviour(status=503, headers={"retry-after": "600"})) as busy:
        subscription = push_subscription(client_id=consumer.client_id, url=busy.url, policy="retry")
        event_id = ingest()
        before = timezone.now()
        deliveries_send()
    delivery = delivery_of(subscription=subscription, event_id=event_id)
    assert delivery.status == Delivery.Status.PENDING
    assert delivery.attempts == 1
    assert delivery.next_attempt_at >= before + timedelta(seconds=600)
    assert delivery.last_status_code == 503


def test_a_retry_after_given_as_an_http_date_is_honoured_too(consumer):
    """Receivers may send either form (RFC 9110); device providers and webhooks read both."""
    from email.utils import format_datetime

    later = timezone.now() + timedelta(minutes=10)
    header = {"retry-after": format_datetime(later, usegmt=True)}
    with receiving(Behaviour(status=503, headers=header)) as busy:
        subscription = push_subscription(client_id=consumer.client_id, url=busy.url, policy="retry")
        event_id = ingest()
        result = deliveries_send()
    delivery = delivery_of(subscription=subscription, event_id=event_id)
    assert delivery.status == Delivery.Status.PENDING
    assert delivery.next_attempt_at >= later - timedelta(seconds=1)
    # The service says what to retry when; the task schedules it (or leaves it to the sweep).
    assert result.retries.due_in[delivery.id] > 590


def test_retry_policy_gives_up_after_the_last_attempt(settings, consumer, failing_receiver):
    settings.NOTIFYHUB_WEBHOOK_MAX_ATTEMPTS = 2
    subscription = push_subscription(
        client_id=consumer.client_id, url=failing_receiver.url, policy="retry"
    )
    event_id = ingest()
    deliveries_send()
    Delivery.objects.filter(event_id=event_id).update(next_attempt_at=timezone.now())
    deliveries_send()

    delivery = delivery_of(subscription=subscription, event_id=event_id)
    assert delivery.status == Delivery.Status.FAILED
    assert list(delivery.attempt_log.values_list("number", "status_code")) == [(1, 500), (2, 500)]


def test_a_410_disables_the_subscriptions_push(consumer):
    with receiving(Behaviour(status=410)) as gone:
        subscription = push_subscription(client_id=consumer.client_id, url=gone.url)
        ingest(n=1)
        deliveries_send()
        second = ingest(n=2)
        deliveries_send()
        assert len(gone.requests) == 1
    subscription.refresh_from_db()
    assert subscription.push_disabled_at is not None
    assert not subscription.pushes
    assert not Delivery.objects.filter(event_id=second).exists()


def test_a_rotated_secret_and_the_previous_one_both_sign_during_the_grace(consumer, receiver):
    from subscriptions.webhooks import subscription_rotate_webhook_secret

    subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
    old = subscription.webhook_secret
    new = subscription_rotate_webhook_secret(subscription=subscription)
    ingest()
    deliveries_send()

    request = receiver.requests[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(request.body, request.headers)
    Webhook(new).verify(request.body, request.headers)


def test_after_the_grace_only_the_new_secret_signs(consumer, receiver):
    from subscriptions.webhooks import subscription_rotate_webhook_secret

    subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
    new = subscription_rotate_webhook_secret(subscription=subscription, grace=timedelta(0))
    ingest()
    deliveries_send()

    request = receiver.requests[0]
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    Webhook(new).verify(request.body, request.headers)


def test_a_send_left_past_its_lease_becomes_unknown_and_is_not_resent(consumer, receiver):
    subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
    event_id = ingest()
    # A worker claimed it and died: the row is `sending` with nobody behind it.
    Delivery.objects.filter(event_id=event_id).update(
        status=Delivery.Status.SENDING, attempts=1, claimed_at=timezone.now() - timedelta(hours=1)
    )

    result = deliveries_sweep(grace=timedelta(0))
    deliveries_send()

    assert result.unknown == 1
    assert receiver.requests == []
    delivery = delivery_of(subscription=subscription, event_id=event_id)
    assert delivery.status == Delivery.Status.UNKNOWN
    assert "may or may not" in delivery.attempt_log.get().error


def test_an_expired_pending_delivery_fails_instead_of_being_sent(consumer, receiver):
    subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
    event_id = ingest()
    Delivery.objects.filter(event_id=event_id).update(expires_at=timezone.now())

    deliveries_sweep(grace=timedelta(0))
    deliveries_send()

    assert receiver.requests == []
    assert delivery_of(subscription=subscription, event_id=event_id).status == "failed"


def test_only_pushing_subscriptions_get_delivery_rows(consumer, receiver):
    pull_only = Subscription.objects.create(client_id=consumer.client_id, subscribed_by="x")
    pull_only.event_types.add("newMessage")
    pushing = push_subscription(client_id=consumer.client_id, url=receiver.url)
    event_id = ingest()

    assert list(
        Delivery.objects.filter(event_id=event_id).values_list("subscription", flat=True)
    ) == [pushing.id]


def test_the_beat_sweep_is_scheduled_and_reports_what_it_did(settings, consumer, receiver):
    from subscriptions.tasks import deliveries_sweep_task

    entry = settings.CELERY_BEAT_SCHEDULE["sweep-webhook-deliveries"]
    assert entry["task"] == deliveries_sweep_task.name
    push_subscription(client_id=consumer.client_id, url=receiver.url)
    ingest()
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))

    assert deliveries_sweep_task() == {"unknown": 0, "expired": 0, "enqueued": 1}
