"""Webhook subscriptions and events made through the services, as the APIs make them."""

from events.models import EventType
from events.services import event_ingest
from notifyhub.tenancy import HUB
from subscriptions.models import Delivery, Subscription
from subscriptions.services import subscription_create


def push_subscription(
    *, client_id: str, url: str, type_id: str = "newMessage", policy: str = "once"
) -> Subscription:
    # Transactional tests flush the seeded catalogue between tests.
    EventType.objects.get_or_create(id=type_id)
    return subscription_create(
        reach=HUB,
        client_id=client_id,
        event_type_ids=[type_id],
        subscribed_by="alice-admin",
        notification_url=url,
        delivery_policy=policy,
    )


def ingest(*, type_id: str = "newMessage", n: int = 0, **payload: object) -> str:
    return event_ingest(
        producer="test-producer",
        reach=HUB,
        type_id=type_id,
        payload={"n": n, **payload},
        idempotency_key=None,
    ).event_id


def delivery_of(*, subscription: Subscription, event_id: str) -> Delivery:
    return Delivery.objects.get(subscription=subscription, event_id=event_id)
