"""Rules that write: subscriptions, routing events into queues, and read-once claims."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from events.models import Event
from events.selectors import event_types_missing
from notifyhub import errors
from subscriptions.models import Notification, Subscription, SubscriptionEventType
from subscriptions.webhooks import webhook_secret_generate

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClaimedNotification:
    """A notification handed out exactly once, with its event."""

    id: int
    event: Event
    created_at: datetime
    expires_at: datetime


@transaction.atomic
def subscription_create(
    *,
    client_id: str,
    event_type_ids: list[str],
    subscribed_by: str,
    notification_url: str = "",
    notification_page_size: int | None = None,
    retention: timedelta | None = None,
    delivery_policy: str = Subscription.DeliveryPolicy.ONCE,
) -> Subscription:
    """Subscribe a client to event types that all exist in the catalogue.

    With a `notification_url` (http or https) it gets a webhook signing secret, readable on the
    returned object this once.
    """
    if notification_url and urlsplit(notification_url).scheme.lower() not in ("http", "https"):
        raise errors.ValidationFailed(
            "notification_url: only http and https URLs can receive webhooks",
            field="notification_url",
        )
    if delivery_policy not in Subscription.DeliveryPolicy.values:
        raise errors.ValidationFailed(
            f"delivery_policy: one of {', '.join(Subscription.DeliveryPolicy.values)}",
            field="delivery_policy",
        )
    missing = event_types_missing(type_ids=event_type_ids)
    if missing:
        raise errors.ValidationFailed(
            f"event_type_ids: unknown event types: {', '.join(missing)}", field="event_type_ids"
        )
    subscription = Subscription.objects.create(
        client_id=client_id,
        subscribed_by=subscribed_by,
        notification_url=notification_url,
        notification_page_size=notification_page_size or settings.NOTIFYHUB_PAGE_SIZE,
        retention=retention or settings.NOTIFYHUB_RETENTION,
        webhook_secret=webhook_secret_generate() if notification_url else "",
        delivery_policy=delivery_policy,
    )
    SubscriptionEventType.objects.bulk_create(
        SubscriptionEventType(subscription=subscription, event_type_id=type_id)
        for type_id in event_type_ids
    )
    return subscription


def subscription_delete(*, subscription: Subscription) -> None:
    """Delete a subscription; its queued notifications go with it."""
    subscription.delete()


def notifications_enqueue(*, event: Event) -> int:
    """Queue `event` for every active subscription to its type: one read, one bulk insert."""
    targets = list(
        Subscription.objects.filter(active=True, event_types=event.type_id).values_list(
            "id", "retention"
        )
    )
    if not targets:
        return 0
    Notification.objects.bulk_create(
        [
            Notification(
                subscription_id=subscription_id,
                event_id=event.id,
                created_at=event.created_at,
                expires_at=event.created_at + retention,
            )
            for subscription_id, retention in targets
        ]
    )
    return len(targets)


def _claim(queryset: QuerySet[Notification], limit: int) -> list[ClaimedNotification]:
    """Delete and return up to `limit` of the oldest live rows of `queryset`, exactly once.

    PostgreSQL: `FOR UPDATE SKIP LOCKED` lets concurrent readers take disjoint rows instead of
    waiting on or re-reading each other's. SQLite: the transaction starts IMMEDIATE (settings),
    which serialises writers, so the select-then-delete cannot interleave.
    """
    with transaction.atomic():
        rows = list(
            queryset.filter(expires_at__gt=timezone.now())
            .order_by("id")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("id", "event_id", "created_at", "expires_at")[:limit]
        )
        if not rows:
            return []
        Notification.objects.filter(id__in=[row[0] for row in rows]).delete()
    events = Event.objects.in_bulk([row[1] for row in rows])
    return [
        ClaimedNotification(id=row[0], event=events[row[1]], created_at=row[2], expires_at=row[3])
        for row in rows
        if row[1] in events
    ]


def notifications_claim_page(
    *, subscription: Subscription, size: int
) -> tuple[int, list[ClaimedNotification]]:
    """Hand out the next `size` notifications of a subscription, oldest first, each only once.

    Returns the page number (how many pages this subscription has read) and the page.
    """
    claimed = _claim(Notification.objects.filter(subscription=subscription), size)
    now = timezone.now()
    Subscription.objects.filter(pk=subscription.pk).update(
        last_request_date=now, pages_read=F("pages_read") + 1
    )
    subscription.refresh_from_db(fields=["pages_read", "last_request_date"])
    return subscription.pages_read, claimed


def notification_claim_next(*, client_id: str) -> ClaimedNotification | None:
    """Hand out the earliest unread notification across a client's subscriptions, only once."""
    claimed = _claim(Notification.objects.filter(subscription__client_id=client_id), 1)
    Subscription.objects.filter(client_id=client_id).update(last_request_date=timezone.now())
    return claimed[0] if claimed else None


def notifications_purge_expired(*, batch_size: int = 5000) -> int:
    """Delete notifications past their retention in batches (they are already invisible)."""
    total = 0
    while True:
        ids = list(
            Notification.objects.filter(expires_at__lte=timezone.now())
            .order_by("expires_at")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            return total
        total += Notification.objects.filter(id__in=ids).delete()[0]
