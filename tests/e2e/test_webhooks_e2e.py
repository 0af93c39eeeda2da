"""Webhook push end to end: real Celery workers POST to real receivers on loopback."""

import signal
from datetime import timedelta

import pytest
from standardwebhooks import Webhook

from notifyhub.redis import redis_client, redis_key
from subscriptions.models import Delivery
from subscriptions.redelivery import deliveries_sweep
from tests import servers
from tests.receivers import Behaviour, receiving
from tests.subscriptions.factories import delivery_of, ingest, push_subscription

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RELEASE = "/api/v3/integration/notifications/release"


def wait_for_status(*, event_id: str, status: str, count: int = 1) -> None:
    servers.wait_until(
        lambda: Delivery.objects.filter(event_id=event_id, status=status).count() >= count,
        timeout=30,
        what=f"delivery of {event_id} {status}",
    )


def test_a_worker_pushes_a_signed_notification_that_verifies(celery_worker, consumer):
    with receiving() as receiver:
        subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
        event_id = ingest(n=1)
        request = receiver.wait_for(1)[0]
        wait_for_status(event_id=event_id, status="delivered")

    message = Webhook(subscription.webhook_secret).verify(request.body, request.headers)
    assert message["id"] == event_id
    assert message["data"] == {"n": 1}
    assert delivery_of(subscription=subscription, event_id=event_id).attempt_log.count() == 1


def test_a_failed_push_is_not_retried_then_release_sends_it_again_once_an_hour(
    celery_worker, consumer
):
    redis_client().delete(redis_key("release", consumer.client_id))
    with receiving(Behaviour(status=500)) as failing, receiving() as healthy:
        failed_sub = push_subscription(client_id=consumer.client_id, url=failing.url)
        push_subscription(client_id=consumer.client_id, url=healthy.url, type_id="ticket")
        event_id = ingest(n=1)
        wait_for_status(event_id=event_id, status="failed")

        # The sweep finds nothing due, and a later delivery through the same worker arrives
        # with nothing resent before it: `once` means once.
        assert deliveries_sweep(grace=timedelta(0)).enqueued == 0
        barrier = ingest(type_id="ticket", n=2)
        healthy.wait_for(1)
        wait_for_status(event_id=barrier, status="delivered")
        assert len(failing.requests) == 1

        dry = consumer.api().post(f"{RELEASE}?dry_run=1")
        assert dry.status_code == 200
        assert dry.json()["released"] == 1

        released = consumer.api().post(RELEASE)
        assert released.status_code == 202
        assert released.json() == {"released": 1, "dry_run": False}
        failing.wait_for(2)
        servers.wait_until(
            lambda: (
                delivery_of(subscription=failed_sub, event_id=event_id).attempts == 2
                and delivery_of(subscription=failed_sub, event_id=event_id).status == "failed"
            ),
            timeout=30,
            what="the released delivery attempted again",
        )

        again = consumer.api().post(RELEASE)
        assert again.status_code == 429
        assert int(again["Retry-After"]) > 0
    delivery = delivery_of(subscription=failed_sub, event_id=event_id)
    assert list(delivery.attempt_log.values_list("number", "status_code")) == [(1, 500), (2, 500)]
    redis_client().delete(redis_key("release", consumer.client_id))


def test_the_worker_refuses_a_loopback_address_that_is_not_allowed(celery_worker, consumer):
    # The worker allows 127.0.0.0/8 (the test receivers) but not IPv6 loopback.
    subscription = push_subscription(client_id=consumer.client_id, url="http://[::1]:9/hook")
    event_id = ingest()
    wait_for_status(event_id=event_id, status="failed")
    delivery = delivery_of(subscription=subscription, event_id=event_id)
    assert delivery.last_error.startswith("refused")


def test_a_worker_killed_mid_batch_sends_the_rest_once_and_the_interrupted_one_is_unknown(
    transactional_db, celery_queue, log_dir, consumer
):
    # One send at a time per subscription, so the batch is sent one by one and the kill lands
    # while the rest are still waiting their turn.
    env = {"NOTIFYHUB_WEBHOOK_PER_SUBSCRIPTION": "1"}
    with receiving(Behaviour(hang_first=1)) as receiver:
        subscription = push_subscription(client_id=consumer.client_id, url=receiver.url)
        first = servers.start_worker(log_dir, queue=celery_queue, concurrency=1, **env)
        try:
            event_ids = [ingest(n=n) for n in range(6)]
            receiver.wait_for(1)
            in_the_air = receiver.requests[0].headers["webhook-id"]
        finally:
            first.stop(signal.SIGKILL)
        assert Delivery.objects.filter(status="sending").count() == 1
        assert Delivery.objects.filter(status="pending").count() == 5

        # What the beat sweep does once the lease is over: the dead send is judged, the rest
        # enqueued (the broker still holds some of their first messages too: claims dedupe).
        result = deliveries_sweep(lease=timedelta(0), grace=timedelta(0))
        assert (result.unknown, result.enqueued) == (1, 5)
        second = servers.start_worker(log_dir, queue=celery_queue, concurrency=2, **env)
        try:
            receiver.wait_for(6)
            servers.wait_until(
                lambda: Delivery.objects.filter(status="delivered").count() == 5,
                timeout=30,
                what="the five waiting deliveries delivered",
            )
            # Another sweep (and any broker redelivery) leaves the unknown one alone.
            deliveries_sweep(grace=timedelta(0))
            barrier_sub = push_subscription(
                client_id=consumer.client_id, url=receiver.url, type_id="ticket"
            )
            barrier = ingest(type_id="ticket")
            wait_for_status(event_id=barrier, status="delivered")
        finally:
            second.stop()

    ids = [request.headers["webhook-id"] for request in receiver.requests]
    assert sorted(ids) == sorted([*event_ids, barrier])  # each exactly once
    interrupted = delivery_of(subscription=subscription, event_id=in_the_air)
    assert interrupted.status == Delivery.Status.UNKNOWN
    assert interrupted.attempts == 1
    assert barrier_sub.deliveries.get().status == "delivered"
    for event_id in event_ids:
        if event_id != in_the_air:
            delivery = delivery_of(subscription=subscription, event_id=event_id)
            assert (delivery.status, delivery.attempts) == ("delivered", 1)
