"""Reads and visibility rules for subscriptions."""

import uuid

from django.db.models import QuerySet
from django.utils import timezone

from subscriptions.models import Delivery, Notification, Subscription


def subscriptions_visible(*, client_id: str) -> QuerySet[Subscription]:
    """The subscriptions `client_id` may see: its own (the claim statement of the paged pull
    embeds this query too, so the rule stays written once)."""
    return Subscription.objects.filter(client_id=client_id)


def subscription_get_visible(*, client_id: str, subscription_id: str) -> Subscription | None:
    """The subscription if it belongs to `client_id`; None for a foreign or unknown id alike."""
    try:
        pk = uuid.UUID(subscription_id)
    except ValueError:
        return None
    return subscriptions_visible(client_id=client_id).filter(pk=pk).first()


def subscription_get(*, subscription_id: str) -> Subscription | None:
    """Any subscription by id (for administrators)."""
    try:
        pk = uuid.UUID(subscription_id)
    except ValueError:
        return None
    return Subscription.objects.filter(pk=pk).first()


def subscription_remaining(*, subscription: Subscription) -> int:
    """Notifications still readable: expired ones count as gone at once."""
    return Notification.objects.filter(
        subscription=subscription, expires_at__gt=timezone.now()
    ).count()


def notifications_pending_count() -> int:
    """Readable notifications across every queue (admin index)."""
    return Notification.objects.filter(expires_at__gt=timezone.now()).count()


def deliveries_failed_count() -> int:
    """Failed and unknown deliveries not yet expired (admin index)."""
    return Delivery.objects.filter(
        status__in=[Delivery.Status.FAILED, Delivery.Status.UNKNOWN],
        expires_at__gt=timezone.now(),
    ).count()
