"""Rules that write: subscriptions, routing events into queues, and read-once claims."""

import functools
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Q
from django.utils import timezone

from events.channels import RoutingStatement
from events.models import Event
from events.selectors import event_types_missing
from notifyhub import errors
from notifyhub.sql import sql_names
from notifyhub.types import JSONDict
from subscriptions.messages import notification_page_item, notification_page_item_sql
from subscriptions.models import Notification, Subscription, SubscriptionEventType
from subscriptions.selectors import (
    subscribers_sql,
    subscription_get_visible,
    subscriptions_visible,
)
from subscriptions.webhooks import webhook_secret_generate

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClaimedNotification:
    """A notification handed out exactly once, with what its readers show of its event."""

    id: int
    event_id: str
    type_id: str
    payload: JSONDict
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ClaimedPage:
    """A page of notifications handed out exactly once, already rendered as JSON."""

    number: int  # how many pages the subscription has read, this one included
    size: int  # how many items `results_json` holds
    results_json: str  # a JSON array of `subscriptions.messages.notification_page_item`s


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


@functools.cache
def _notifications_routing_statement(vendor: str) -> RoutingStatement:
    """The pull queue's routing statement for this database vendor (built once)."""
    n = sql_names(Notification)
    s = sql_names(Subscription)
    e = sql_names(Event)
    subscribers = subscribers_sql()
    # ORDER BY: ids (the FIFO order across a client's subscriptions) in Subscription's ordering,
    # as the ORM version gave them.
    sql = f"""
        INSERT INTO {n.table} ({n.subscription}, {n.event}, {n.created_at}, {n.expires_at})
        SELECT s.{s.id}, e.{e.id}, e.{e.created_at}, {subscribers.expires_at}
        {subscribers.source}
        {subscribers.order_by}
        RETURNING {n.id}
    """
    return RoutingStatement(sql)


def notifications_routing_statement(*, connection: BaseDatabaseWrapper) -> RoutingStatement:
    """Queue the new event for every active subscription to its type (one statement)."""
    return _notifications_routing_statement(connection.vendor)


@dataclass(frozen=True)
class _Claim:
    """Which queued rows a read takes, and how it marks the subscriptions it read from."""

    queue: Q  # the Notification rows this reader may take
    touched: Q  # the Subscription rows whose read marks (last request, pages) it updates
    count_page: bool  # whether this read counts as one more page


def _claim_postgresql(claim: _Claim, limit: int) -> tuple[int, list[ClaimedNotification]]:
    """One statement, one commit: pick the oldest live rows (skipping rows other readers hold),
    delete them, mark the subscription read, and return the rows joined with their events.

    `FOR UPDATE SKIP LOCKED` makes concurrent readers take disjoint rows instead of waiting on,
    or re-reading, each other's. Doing it all in one statement costs one round trip and one WAL
    flush, like a bare claim. The plan relies on current statistics for the queue table (its
    migration tunes autovacuum to analyze it often): without them PostgreSQL bitmap-scans and
    sorts the whole queue.
    """
    now = timezone.now()
    picked_sql, picked_params = (
        Notification.objects.filter(claim.queue, expires_at__gt=now)
        .order_by("id")
        .values("id")[:limit]
        .query.sql_with_params()
    )
    touched_sql, touched_params = (
        Subscription.objects.filter(claim.touched).values("id").query.sql_with_params()
    )
    notification = Notification._meta.db_table
    subscription = Subscription._meta.db_table
    event = Event._meta.db_table
    pages = "pages_read = pages_read + 1, " if claim.count_page else ""
    sql = f"""
        WITH picked AS ({picked_sql} FOR UPDATE SKIP LOCKED),
        claimed AS (
            DELETE FROM {notification} AS n USING picked WHERE n.id = picked.id
            RETURNING n.id, n.event_id, n.created_at, n.expires_at
        ),
        touched AS (
            UPDATE {subscription} SET {pages}last_request_date = %s
            WHERE id IN ({touched_sql}) RETURNING pages_read
        ),
        page AS (SELECT max(pages_read) AS number FROM touched)
        SELECT page.number, c.id, c.event_id, e.type_id, e.payload, c.created_at, c.expires_at
        FROM page
        LEFT JOIN (claimed AS c JOIN {event} AS e ON e.id = c.event_id) ON true
        ORDER BY c.id
    """  # noqa: S608 - the SQL is built by the ORM and from our models' table names
    with connection.cursor() as cursor:
        cursor.execute(sql, [*picked_params, now, *touched_params])
        rows = cursor.fetchall()
    page = rows[0][0] or 0 if rows else 0
    return page, [
        ClaimedNotification(
            id=row[1],
            event_id=row[2],
            type_id=row[3],
            payload=json.loads(row[4]) if isinstance(row[4], str) else row[4],
            created_at=row[5],
            expires_at=row[6],
        )
        for row in rows
        if row[1] is not None
    ]


def _claim_portable(claim: _Claim, limit: int) -> tuple[int, list[ClaimedNotification]]:
    """The same claim for SQLite: its transactions start IMMEDIATE (settings), which serialises
    writers, so the select-then-delete below cannot interleave with another reader's."""
    with transaction.atomic():
        rows = list(
            Notification.objects.filter(claim.queue, expires_at__gt=timezone.now())
            .order_by("id")
            .values_list("id", "event_id", "created_at", "expires_at")[:limit]
        )
        Notification.objects.filter(id__in=[row[0] for row in rows]).delete()
        touched = Subscription.objects.filter(claim.touched)
        changes: dict[str, object] = {"last_request_date": timezone.now()}
        if claim.count_page:
            changes["pages_read"] = F("pages_read") + 1
        touched.update(**changes)
        page = max(touched.values_list("pages_read", flat=True), default=0)
    events = Event.objects.in_bulk([row[1] for row in rows])
    return page, [
        ClaimedNotification(
            id=row[0],
            event_id=row[1],
            type_id=events[row[1]].type_id,
            payload=events[row[1]].payload,
            created_at=row[2],
            expires_at=row[3],
        )
        for row in rows
        if row[1] in events
    ]


def _claim(claim: _Claim, limit: int) -> tuple[int, list[ClaimedNotification]]:
    if connection.vendor == "postgresql":
        return _claim_postgresql(claim, limit)
    return _claim_portable(claim, limit)


def notifications_claim_page(
    *, client_id: str, subscription_id: str, size: int | None
) -> ClaimedPage | None:
    """Hand out the next `size` notifications (the subscription's page size if None) of a
    subscription `client_id` may see, oldest first, each only once.

    None for a foreign or an unknown subscription alike, which then stays untouched.
    """
    if connection.vendor == "postgresql":
        return _claim_page_postgresql(
            client_id=client_id, subscription_id=subscription_id, size=size
        )
    return _claim_page_portable(client_id=client_id, subscription_id=subscription_id, size=size)


def _claim_page_postgresql(
    *, client_id: str, subscription_id: str, size: int | None
) -> ClaimedPage | None:
    """The paged claim as one statement and one round trip that also renders the page:
    check visibility, pick the oldest live rows (skipping rows other readers hold), delete
    them, count the page on the subscription, and build the items' JSON array.

    PostgreSQL writes the JSON (`notification_page_item_sql`), so no payload or timestamp is
    decoded into Python objects only to be encoded again. See `_claim_postgresql` for why
    `FOR UPDATE SKIP LOCKED` and why one statement.
    """
    try:
        pk = uuid.UUID(subscription_id)
    except ValueError:
        return None
    now = timezone.now()
    visible_sql, visible_params = (
        subscriptions_visible(client_id=client_id)
        .filter(pk=pk)
        .order_by()
        .values("id", "notification_page_size")
        .query.sql_with_params()
    )
    notification = Notification._meta.db_table
    subscription = Subscription._meta.db_table
    event = Event._meta.db_table
    item = notification_page_item_sql(event="e", queued="c")
    # - `picked` names the subscription by the literal id, not through `visible`, so the planner
    #   knows which queue it reads (and walks notification_queue_order); EXISTS gates it, so a
    #   foreign caller never scans, locks or deletes anything.
    # - LIMIT: with `size` given, coalesce() folds to that constant at planning time.
    # - DELETE ... = ANY(ARRAY(...)) deletes by primary key whatever the planner guesses of
    #   `picked`: with the page size unknown at planning time it guesses 10% of the queue, and
    #   a join on `picked` would then hash the whole queue table.
    # - Concurrent readers of one subscription take disjoint rows (SKIP LOCKED), then queue on
    #   the update of its row, so each page gets a number of its own.
    # - The results are aggregated in a subquery, so a visible subscription with an empty queue
    #   still answers one row (`[]`), and an invisible one answers none (`touched` is empty).
    sql = f"""
        WITH visible AS ({visible_sql}),
        picked AS (
            SELECT id FROM {notification}
            WHERE subscription_id = %s AND expires_at > %s AND EXISTS (SELECT FROM visible)
            ORDER BY id
            LIMIT coalesce(%s, (SELECT notification_page_size FROM visible))
            FOR UPDATE SKIP LOCKED
        ),
        claimed AS (
            DELETE FROM {notification} WHERE id = ANY (ARRAY (SELECT id FROM picked))
            RETURNING id, event_id, created_at, expires_at
        ),
        touched AS (
            UPDATE {subscription} AS s SET pages_read = s.pages_read + 1, last_request_date = %s
            FROM visible WHERE s.id = visible.id
            RETURNING s.pages_read
        )
        SELECT touched.pages_read, page.size, page.results
        FROM touched, (
            SELECT count(*) AS size, coalesce(json_agg({item} ORDER BY c.id), '[]')::text AS results
            FROM claimed AS c JOIN {event} AS e ON e.id = c.event_id
        ) AS page
    """  # noqa: S608 - the SQL is built by the ORM and from our models' table names
    with connection.cursor() as cursor:
        cursor.execute(sql, [*visible_params, pk, now, size, now])
        row = cursor.fetchone()
    if row is None:
        return None
    number, count, results = row
    return ClaimedPage(number=number, size=count, results_json=results)


def _claim_page_portable(
    *, client_id: str, subscription_id: str, size: int | None
) -> ClaimedPage | None:
    """The same paged claim on any database: look the subscription up, claim (`_claim`), and
    render the items in Python."""
    subscription = subscription_get_visible(client_id=client_id, subscription_id=subscription_id)
    if subscription is None:
        return None
    claim = _Claim(
        queue=Q(subscription_id=subscription.pk), touched=Q(pk=subscription.pk), count_page=True
    )
    number, claimed = _claim(claim, subscription.notification_page_size if size is None else size)
    results = [
        notification_page_item(
            event_id=item.event_id,
            type_id=item.type_id,
            payload=item.payload,
            created_at=item.created_at,
            expires_at=item.expires_at,
        )
        for item in claimed
    ]
    # Written as DRF's JSONRenderer writes (UTF-8, compact, no NaN), so the page reads the same.
    text = json.dumps(results, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return ClaimedPage(number=number, size=len(results), results_json=text)


def notification_claim_next(*, client_id: str) -> ClaimedNotification | None:
    """Hand out the earliest unread notification across a client's subscriptions, only once."""
    # A subquery, not a join: FOR UPDATE must lock only queue rows, never the subscription rows
    # that the same statement updates (PostgreSQL would then skip them as "updated by self").
    subscriptions = Subscription.objects.filter(client_id=client_id).values("id")
    claim = _Claim(
        queue=Q(subscription_id__in=subscriptions), touched=Q(client_id=client_id), count_page=False
    )
    _, claimed = _claim(claim, 1)
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
