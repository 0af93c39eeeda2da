"""The hub's own failures are events of its own catalogue: an operator's webhook subscription to
`notifyhub.delivery.exhausted` and `notifyhub.subscription.push_disabled` receives them, and a
failing operator webhook does not feed itself."""

import json

import pytest

from events.models import Event
from events.operational import DELIVERY_EXHAUSTED, SUBSCRIPTION_PUSH_DISABLED
from subscriptions.models import Delivery
from subscriptions.webhooks import deliveries_send
from tests.receivers import Behaviour, receiving
from tests.subscriptions.factories import ingest, push_subscription

pytestmark = pytest.mark.django_db(transaction=True)


def bodies(receiver) -> list[dict]:
    return [json.loads(request.body) for request in receiver.requests]


def test_an_exhausted_delivery_reaches_the_operators_webhook(consumer, administrator):
    with receiving(Behaviour(status=500)) as failing, receiving() as operator:
        subscription = push_subscription(client_id=consumer.client_id, url=failing.url)
        push_subscription(
            client_id=administrator.client_id, url=operator.url, type_id=DELIVERY_EXHAUSTED
        )
        event_id = ingest(n=1)

        deliveries_send()  # the consumer's delivery fails; its alert is routed on commit
        deliveries_send()  # the alert goes out

        [alert] = bodies(operator)
    assert alert["name"] == DELIVERY_EXHAUSTED
    delivery = Delivery.objects.get(event_id=event_id)
    assert alert["data"] == {
        "delivery_id": delivery.pk,
        "subscription_id": str(subscription.pk),
        "client_id": consumer.client_id,
        "notification_url": failing.url,
        "event_id": event_id,
        "event_type": "newMessage",
        "attempts": 1,
        "last_status_code": 500,
        "reason": "HTTP 500",
    }


def test_a_410_announces_the_disabled_push(consumer, administrator):
    with receiving(Behaviour(status=410)) as gone, receiving() as operator:
        push_subscription(client_id=consumer.client_id, url=gone.url)
        push_subscription(
            client_id=administrator.client_id, url=operator.url, type_id=SUBSCRIPTION_PUSH_DISABLED
        )
        ingest(n=1)
        deliveries_send()
        deliveries_send()

        [alert] = bodies(operator)
    assert alert["name"] == SUBSCRIPTION_PUSH_DISABLED
    assert alert["data"]["reason"] == "the receiver answered 410 Gone"


def test_a_failing_operator_webhook_does_not_feed_itself(consumer, administrator):
    with receiving(Behaviour(status=500)) as failing:
        push_subscription(client_id=consumer.client_id, url=failing.url)
        push_subscription(
            client_id=administrator.client_id, url=failing.url, type_id=DELIVERY_EXHAUSTED
        )
        ingest(n=1)
        for _ in range(4):
            deliveries_send()

    # One alert, about the consumer's delivery; its own failed delivery raises none.
    assert Event.objects.filter(type_id=DELIVERY_EXHAUSTED).count() == 1
    assert Delivery.objects.filter(status="failed").count() == 2
