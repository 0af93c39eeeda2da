"""Reads and visibility rules for subscriptions."""

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Count, DurationField, ExpressionWrapper, F, QuerySet
from django.db.models.functions import Trunc
from django.utils import timezone
from django.utils.duration import duration_microseconds

from events.models import Event
from notifyhub.charts import Series
from notifyhub.selectors import clients_in_reach
from notifyhub.sql import sql_names
from notifyhub.statistics import (
    Bucket,
    PercentileCont,
    buckets_fill,
    percentile_cont,
    window_start,
)
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


# --- Statistics (the console's pictures) ---

# The outcome a delivery's status counts under: "failed" holds the unknown ones (the worker died
# mid-send: not known to have arrived), "waiting" those not finished yet.
OUTCOMES = {
    Delivery.Status.DELIVERED: "delivered",
    Delivery.Status.FAILED: "failed",
    Delivery.Status.UNKNOWN: "failed",
    Delivery.Status.PENDING: "waiting",
    Delivery.Status.SENDING: "waiting",
    Delivery.Status.PAUSED: "waiting",
}
# The outcomes as a chart stacks them, finished ones first.
OUTCOME_SERIES = (
    Series(key="delivered", label="delivered"),
    Series(key="failed", label="failed or unknown"),
    Series(key="waiting", label="waiting"),
)
HOUR = timedelta(hours=1)
# SQLite's latency figures are computed in Python from at most this many delivered rows (an
# arbitrary subset beyond it): SQLite is the development database, PostgreSQL computes exactly.
LATENCY_SAMPLE_LIMIT = 50_000


@dataclass(frozen=True)
class SubscriptionStatistics:
    """One subscription's webhook deliveries since `since`: how they ended and how fast."""

    since: datetime
    delivered: int
    failed: int  # failed or unknown
    waiting: int  # pending, sending or paused
    latency_p50: timedelta | None  # event ingested → delivered (None: nothing delivered)
    latency_p99: timedelta | None
    hours: list[Bucket]  # counts under "delivered", "failed", "waiting"

    @property
    def success_rate(self) -> float | None:
        """Delivered among finished deliveries, 0 to 1 (None when none has finished)."""
        finished = self.delivered + self.failed
        return self.delivered / finished if finished else None


def _outcome_rows(rows: Iterable[tuple[datetime, str, int]]) -> list[tuple[datetime, str, int]]:
    return [(hour, OUTCOMES[Delivery.Status(status)], total) for hour, status, total in rows]


def subscription_statistics(
    *, subscription: Subscription, now: datetime | None = None, hours: int = 24
) -> SubscriptionStatistics:
    """The subscription's deliveries of the last `hours` hours (whole UTC hours, the current
    one included) by outcome, hour by hour, and the p50/p99 of their delivery latency.

    Two queries: the counts grouped by hour and status, and the percentiles (PostgreSQL's
    percentile_cont; on SQLite its twin in Python). Reads only this subscription's rows: the
    (subscription, event) unique index leads with the subscription.
    """
    start = window_start(now=now or timezone.now(), step=HOUR, buckets=hours)
    # The routing statement writes a delivery's created_at as its event's: the hour an event
    # was ingested is the hour its delivery was owed.
    deliveries = Delivery.objects.filter(subscription=subscription, created_at__gte=start)
    rows = (
        deliveries.annotate(hour=Trunc("created_at", "hour", tzinfo=UTC))
        .values("hour", "status")
        .annotate(total=Count("pk"))
        .order_by()
        .values_list("hour", "status", "total")
    )
    series = buckets_fill(rows=_outcome_rows(rows), start=start, step=HOUR, buckets=hours)
    p50, p99 = _latency_percentiles(
        deliveries.filter(status=Delivery.Status.DELIVERED, finished_at__isnull=False)
    )
    return SubscriptionStatistics(
        since=start,
        delivered=sum(bucket.count("delivered") for bucket in series),
        failed=sum(bucket.count("failed") for bucket in series),
        waiting=sum(bucket.count("waiting") for bucket in series),
        latency_p50=p50,
        latency_p99=p99,
        hours=series,
    )


def _latency_percentiles(
    delivered: QuerySet[Delivery],
) -> tuple[timedelta | None, timedelta | None]:
    """p50 and p99 of event ingested → delivery finished over `delivered`."""
    if connection.vendor == "postgresql":
        return _latency_percentiles_postgresql(delivered)
    return _latency_percentiles_portable(delivered)


def _latency_percentiles_postgresql(
    delivered: QuerySet[Delivery],
) -> tuple[timedelta | None, timedelta | None]:
    """Exact, in the database: one row back however many deliveries the window holds."""
    latency = ExpressionWrapper(
        F("finished_at") - F("event__created_at"), output_field=DurationField()
    )
    figures = delivered.order_by().aggregate(
        p50=PercentileCont(latency, fraction=0.5), p99=PercentileCont(latency, fraction=0.99)
    )
    return figures["p50"], figures["p99"]


def _latency_percentiles_portable(
    delivered: QuerySet[Delivery],
) -> tuple[timedelta | None, timedelta | None]:
    """The same figures computed in Python (percentile_cont's interpolation), for SQLite."""
    pairs = delivered.order_by().values_list("finished_at", "event__created_at")
    latencies = [
        finished - ingested
        for finished, ingested in pairs[:LATENCY_SAMPLE_LIMIT]
        if finished is not None
    ]
    return percentile_cont(latencies, 0.5), percentile_cont(latencies, 0.99)


def deliveries_by_outcome_per_hour(*, now: datetime | None = None, hours: int = 12) -> list[Bucket]:
    """Every subscription's webhook deliveries of each of the last `hours` hours (the current
    one included) by outcome: "delivered", "failed", "waiting" (admin index chart).

    Filtered and grouped on the event's created_at (indexed; the routing statement copies it
    into the delivery's, which has no index), so the query reads the window's events and their
    deliveries through the delivery's event index, not the whole ledger.
    """
    start = window_start(now=now or timezone.now(), step=HOUR, buckets=hours)
    rows = (
        Delivery.objects.filter(event__created_at__gte=start)
        .annotate(hour=Trunc("event__created_at", "hour", tzinfo=UTC))
        .values("hour", "status")
        .annotate(total=Count("pk"))
        .order_by()
        .values_list("hour", "status", "total")
    )
    return buckets_fill(rows=_outcome_rows(rows), start=start, step=HOUR, buckets=hours)
