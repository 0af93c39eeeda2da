"""A receiver that hangs holds at most its subscription's share of a worker's sending slots."""

import threading

import pytest
from django.db import connection

from subscriptions.models import Delivery
from subscriptions.webhooks import deliveries_send
from tests.receivers import Behaviour, receiving
from tests.subscriptions.factories import ingest, push_subscription


@pytest.mark.django_db(transaction=True)
def test_a_hanging_receiver_does_not_hold_back_other_subscriptions(settings, consumer):
    settings.NOTIFYHUB_WEBHOOK_CONCURRENCY = 4
    settings.NOTIFYHUB_WEBHOOK_PER_SUBSCRIPTION = 2
    with receiving(Behaviour(hang_first=100)) as hanging, receiving() as healthy:
        push_subscription(client_id=consumer.client_id, url=hanging.url)
        push_subscription(client_id=consumer.client_id, url=healthy.url)
        for n in range(10):
            ingest(n=n)

        def send() -> None:
            try:
                deliveries_send()
            finally:
                connection.close()

        sender = threading.Thread(target=send)
        sender.start()
        try:
            healthy.wait_for(10)
            assert len(hanging.requests) == 2
        finally:
            hanging.behaviour.release.set()
            sender.join(60)
        hanging.wait_for(10)
    assert Delivery.objects.filter(status="delivered").count() == 20
