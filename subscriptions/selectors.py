"""Reads and visibility rules for subscriptions."""

import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.duration import duration_microseconds

from events.models import Event
from notifyhub.selectors import clients_in_reach
from notifyhub.sql import sql_names
from notifyhub.tenancy import Reach
from subscriptions.models import Delivery, Notification, Subscription, SubscriptionEventType


def subscriptions_visible(*, client_id: str) -> QuerySet[Subscription]:
    """The subscriptions `client_id` may see: its own (the claim statement of the paged pull
    embeds this query too, so the rule stays written once)."""
    return Subscription.objects.filter(client_id=client_id)


@dataclass(frozen=True)
class SubscribersSql:
    """The routing statements' shared part: the active subscriptions to the new event's type,
    as SQL for an INSERT ... SELECT reading `new_event` (see events.channels); aliases `e` for
    the event, `s` for the subscription."""

    source: str  # FROM ... WHERE ...: narrow it with `AND s.<column> ...`
    expires_at: str  # the row's end of life: the event's time + `kept_for(s)`
    order_by: str  # Subscription's ordering (newest first): the order a new event's rows get ids


def subscribers_sql(*, integration_retention: timedelta) -> SubscribersSql:
    """The routing statements' shared SQL; a row lives for its subscription's retention or
    `integration_retention`, whichever is longer (the Integration API reads it that long)."""
    e = sql_names(Event)
    s = sql_names(Subscription)
    w = sql_names(SubscriptionEventType)
    # A literal, not a parameter: the statements are built once per value (it is a setting).
    if connection.vendor == "postgresql":
        seconds = int(integration_retention.total_seconds())
        kept = f"GREATEST(s.{s.retention}, make_interval(secs => {seconds}))"
    else:  # SQLite keeps a duration as integer microseconds
        kept = f"max(s.{s.retention}, {duration_microseconds(integration_retention)})"
    return SubscribersSql(
        source=(
            f"FROM new_event AS e JOIN {w.table} AS w ON w.{w.event_type} = e.{e.type}"
            f" JOIN {s.table} AS s ON s.{s.id} = w.{w.subscription} WHERE s.{s.active}"
        ),
        # timestamptz + interval on PostgreSQL; on SQLite (text + bigint microseconds) Django's
        # own django_format_dtdelta, which writes the sum in the text format the ORM writes.
        expires_at=connection.ops.combine_duration_expression("+", [f"e.{e.created_at}", kept]),
        order_by=f"ORDER BY s.{s.subscription_date} DESC",
    )


def subscription_get_visible(*, client_id: str, subscription_id: str) -> Subscription | None:
    """The subscription if it belongs to `client_id`; None for a foreign or unknown id alike."""
    try:
        pk = uuid.UUID(subscription_id)
    except ValueError:
        return None
    return subscriptions_visible(client_id=client_id).filter(pk=pk).first()


def subscriptions_administered(*, reach: Reach) -> QuerySet[Subscription]:
    """The subscriptions an administrator may see and change: those of its tenant's clients
    (every one, for a hub operator)."""
    if reach.everywhere:
        return Subscription.objects.all()
    return Subscription.objects.filter(
        client_id__in=clients_in_reach(reach=reach).values("client_id")
    )


def subscription_get_administered(*, reach: Reach, subscription_id: str) -> Subscription | None:
    """The subscription if `reach` administers it; None for a foreign or unknown id alike."""
    try:
        pk = uuid.UUID(subscription_id)
    except ValueError:
        return None
    return subscriptions_administered(reach=reach).filter(pk=pk).first()


def subscriptions_pushing(*, client_id: str) -> QuerySet[Subscription]:
    """The client's subscriptions whose new events are POSTed to a URL (Subscription.pushes)."""
    return Subscription.objects.filter(
        client_id=client_id, active=True, push_disabled_at__isnull=True
    ).exclude(notification_url="")


def subscription_remaining(*, subscription: Subscription) -> int:
    """Notifications the paged pull can still read: expired ones count as gone at once."""
    return Notification.objects.filter(
        subscription=subscription, created_at__gt=timezone.now() - subscription.retention
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


def deliveries_pending_count() -> int:
    """Webhook deliveries waiting for an attempt, due or not (metrics; the pending index)."""
    return Delivery.objects.filter(status=Delivery.Status.PENDING).count()


def deliveries_backlog_age() -> float:
    """Seconds the longest-waiting due webhook delivery is late (metrics): 0 when none is due.
    Served by the partial index on pending deliveries' next_attempt_at."""
    now = timezone.now()
    oldest = (
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
