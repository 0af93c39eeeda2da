"""Rules that write: subscriptions, routing events into queues, and read-once claims."""

import functools
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
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
from notifyhub.selectors import clients_in_reach
from notifyhub.sql import sql_names
from notifyhub.tenancy import Reach
from notifyhub.types import JSONDict
from subscriptions.messages import notification_page_item, notification_page_item_sql
from subscriptions.models import Notification, Subscription, SubscriptionEventType
from subscriptions.selectors import (
    subscribers_sql,
    subscription_get_visible,
    subscriptions_visible,
)
from subscriptions.signing import webhook_secret_generate

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
    reach: Reach,
    client_id: str,
    event_type_ids: list[str],
    subscribed_by: str,
    notification_url: str = "",
    notification_page_size: int | None = None,
    retention: timedelta | None = None,
    delivery_policy: str = Subscription.DeliveryPolicy.ONCE,
) -> Subscription:
    """Subscribe a client within `reach` (a tenant administrator's own clients) to event types
    that all exist in the catalogue.

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
    if not reach.everywhere and not clients_in_reach(reach=reach).filter(client_id=client_id):
        # The same answer whether the client exists in another tenant or nowhere.
        raise errors.ValidationFailed(
            "client_id: no client of your tenant has this id", field="client_id"
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
def _notifications_routing_statement(
    vendor: str, integration_retention: timedelta
) -> RoutingStatement:
    """The pull queue's routing statement for this database vendor (built once)."""
    n = sql_names(Notification)
    s = sql_names(Subscription)
    e = sql_names(Event)
    subscribers = subscribers_sql(integration_retention=integration_retention)
    # ORDER BY: a new event's rows take ids (the FIFO order across a client's subscriptions) in
    # Subscription's ordering, newest subscription first.
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
    return _notifications_routing_statement(
        connection.vendor, settings.NOTIFYHUB_INTEGRATION_RETENTION
    )


# --- Read-once claims ---
#
# One queue row per (subscription, event), read by two surfaces with two horizons:
# - the paged pull (Notification API) reads a subscription's rows until `created_at + retention`
#   (the subscription's, NOTIFYHUB_RETENTION by default): `_paged_cutoff`;
# - the FIFO pull (Integration API) reads a client's rows until the row's `expires_at`, which
#   routing set to `created_at + max(retention, NOTIFYHUB_INTEGRATION_RETENTION)`, and hands an
#   event out once per client, however many of its subscriptions queued it.
# A paged read drops the rows it passes that its own horizon has expired, so the next page does
# not walk them again (a client paging a subscription never reads them through FIFO anyway).

# Most stale rows one paged read drops (the rest go with a later read, or the purge), and how
# often a read looks for them (every this many pages of the subscription).
_STALE_BATCH = 10_000
_STALE_EVERY = 16
# pg_advisory_xact_lock's first key: the lock space of FIFO reads (keyed by client id).
_FIFO_LOCK_SPACE = 0x6E68


def _paged_cutoff(subscription: Subscription, now: datetime) -> datetime:
    """Rows created at or before this are past the paged pull's horizon."""
    return now - subscription.retention


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
    check visibility, pick the oldest rows within the paged horizon (skipping rows other readers
    hold), delete them and the stale rows before them, count the page on the subscription, and
    build the items' JSON array.

    `FOR UPDATE SKIP LOCKED` makes concurrent readers take disjoint rows instead of waiting on,
    or re-reading, each other's. One statement costs one round trip and one WAL flush, like a
    bare claim, and PostgreSQL writes the JSON (`notification_page_item_sql`), so no payload or
    timestamp is decoded into Python objects only to be encoded again. The plan relies on
    current statistics for the queue table (its migration tunes autovacuum to analyze it
    often): without them PostgreSQL bitmap-scans and sorts the whole queue.

    Its portable twin is `_claim_page_portable` (tests/subscriptions/test_claim_twins.py: the
    same page, the same rows dropped).
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
        .values("id", "notification_page_size", "retention", "pages_read")
        .query.sql_with_params()
    )
    n = sql_names(Notification)
    s = sql_names(Subscription)
    e = sql_names(Event)
    expires_at = f"c.{n.created_at} + (SELECT {s.retention} FROM visible)"  # noqa: S608
    item = notification_page_item_sql(event="e", queued="c", expires_at=expires_at)
    # - `visible` is the ORM's query of the subscription's row: its columns are named as the
    #   table's, so `s.<field>` names them too.
    # - `picked` names the subscription by the literal id, not through `visible`, so the planner
    #   knows which queue it reads (and walks notification_queue_order); EXISTS gates it, so a
    #   foreign caller never scans, locks or deletes anything.
    # - LIMIT: with `size` given, coalesce() folds to that constant at planning time.
    # - `stale`: the rows before the page that the paged horizon has expired, so later pages
    #   do not walk them again. Its own walk of the queue's head costs about what `picked`'s
    #   does, so it runs on one page read in _STALE_EVERY (a constant filter: the other reads
    #   skip the scan).
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
            SELECT {n.id} FROM {n.table}
            WHERE {n.subscription} = %s AND EXISTS (SELECT FROM visible)
                AND {n.created_at} > %s - (SELECT {s.retention} FROM visible)
            ORDER BY {n.id}
            LIMIT coalesce(%s, (SELECT {s.notification_page_size} FROM visible))
            FOR UPDATE SKIP LOCKED
        ),
        stale AS (
            SELECT {n.id} FROM {n.table}
            WHERE {n.subscription} = %s AND EXISTS (SELECT FROM visible)
                AND (SELECT {s.pages_read} FROM visible) %% {_STALE_EVERY} = 0
                AND {n.created_at} <= %s - (SELECT {s.retention} FROM visible)
                AND {n.id} < coalesce((SELECT min({n.id}) FROM picked), 9223372036854775807)
            ORDER BY {n.id}
            LIMIT {_STALE_BATCH}
            FOR UPDATE SKIP LOCKED
        ),
        dropped AS (
            DELETE FROM {n.table} WHERE {n.id} = ANY (ARRAY (SELECT {n.id} FROM stale))
        ),
        claimed AS (
            DELETE FROM {n.table} WHERE {n.id} = ANY (ARRAY (SELECT {n.id} FROM picked))
            RETURNING {n.id}, {n.event}, {n.created_at}
        ),
        touched AS (
            UPDATE {s.table} AS s
            SET {s.pages_read} = s.{s.pages_read} + 1, {s.last_request_date} = %s
            FROM visible WHERE s.{s.id} = visible.{s.id}
            RETURNING s.{s.pages_read}
        )
        SELECT touched.{s.pages_read}, page.size, page.results
        FROM touched, (
            SELECT count(*) AS size,
                coalesce(json_agg({item} ORDER BY c.{n.id}), '[]')::text AS results
            FROM claimed AS c JOIN {e.table} AS e ON e.{e.id} = c.{n.event}
        ) AS page
    """  # noqa: S608 - the SQL is built by the ORM and from our models' names (notifyhub.sql)
    params = [*visible_params, pk, now, size, pk, now, now]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    number, count, results = row
    return ClaimedPage(number=number, size=count, results_json=results)


def _claim_page_portable(
    *, client_id: str, subscription_id: str, size: int | None
) -> ClaimedPage | None:
    """The same paged claim on any database: its transactions start IMMEDIATE (settings), which
    serialises writers, so the select-then-delete below cannot interleave with another
    reader's. The items are rendered in Python. The twin of `_claim_page_postgresql`."""
    with transaction.atomic():
        subscription = subscription_get_visible(
            client_id=client_id, subscription_id=subscription_id
        )
        if subscription is None:
            return None
        now = timezone.now()
        cutoff = _paged_cutoff(subscription, now)
        queue = Notification.objects.filter(subscription_id=subscription.pk)
        rows = list(
            queue.filter(created_at__gt=cutoff)
            .order_by("id")
            .values_list("id", "event_id", "created_at")[
                : subscription.notification_page_size if size is None else size
            ]
        )
        queue.filter(Q(id__in=[row[0] for row in rows]) | Q(created_at__lte=cutoff)).delete()
        Subscription.objects.filter(pk=subscription.pk).update(
            pages_read=F("pages_read") + 1, last_request_date=now
        )
        number = subscription.pages_read + 1
    events = Event.objects.in_bulk([row[1] for row in rows])
    results = [
        notification_page_item(
            event_id=event_id,
            type_id=events[event_id].type_id,
            payload=events[event_id].payload,
            created_at=created_at,
            expires_at=created_at + subscription.retention,
        )
        for _, event_id, created_at in rows
        if event_id in events
    ]
    # Written as DRF's JSONRenderer writes (UTF-8, compact, no NaN), so the page reads the same.
    text = json.dumps(results, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return ClaimedPage(number=number, size=len(results), results_json=text)


def notification_claim_next(*, client_id: str) -> ClaimedNotification | None:
    """Hand out the earliest unread event across a client's subscriptions, once per client:
    the rows other subscriptions of the client queued for the same event go with it."""
    if connection.vendor == "postgresql":
        return _claim_next_postgresql(client_id=client_id)
    return _claim_next_portable(client_id=client_id)


def _claim_next_postgresql(*, client_id: str) -> ClaimedNotification | None:
    """One statement: take the client's FIFO lock, pick its oldest live row, delete it with its
    siblings (the client's other rows of that event), mark the client's subscriptions read.

    The transaction-scoped advisory lock serialises FIFO reads of one client, so two pollers
    can never take two rows of one event (with SKIP LOCKED alone, the second would skip the
    first's row and take its sibling). The lock is taken before any row is locked: a waiter's
    row locks then skip what the holder deleted (READ COMMITTED re-checks each locked row).
    Siblings are locked with SKIP LOCKED too, so a FIFO read never waits on a paged read of
    the same queue (which would risk a deadlock on the subscription rows both update); such a
    row stays with the paged read that holds it.

    Its portable twin is `_claim_next_portable` (tests/subscriptions/test_claim_twins.py).
    """
    now = timezone.now()
    n = sql_names(Notification)
    s = sql_names(Subscription)
    e = sql_names(Event)
    # `mine` is a subquery, not a join: FOR UPDATE must lock only queue rows, never the
    # subscription rows that the same statement updates (PostgreSQL would then skip them as
    # "updated by self").
    mine = f"{n.subscription} IN (SELECT {s.id} FROM {s.table} WHERE {s.client_id} = %s)"  # noqa: S608
    sql = f"""
        WITH fifo_lock AS MATERIALIZED (SELECT pg_advisory_xact_lock(%s, hashtext(%s))),
        picked AS (
            SELECT {n.id}, {n.event} FROM {n.table}
            WHERE {mine} AND {n.expires_at} > %s AND EXISTS (SELECT FROM fifo_lock)
            ORDER BY {n.id}
            LIMIT 1
            FOR UPDATE SKIP LOCKED
        ),
        siblings AS (
            SELECT {n.id} FROM {n.table}
            WHERE {n.event} = (SELECT {n.event} FROM picked)
                AND {n.id} <> (SELECT {n.id} FROM picked)
                AND {mine}
            FOR UPDATE SKIP LOCKED
        ),
        dropped AS (
            DELETE FROM {n.table} WHERE {n.id} = ANY (ARRAY (SELECT {n.id} FROM siblings))
        ),
        claimed AS (
            DELETE FROM {n.table} WHERE {n.id} = (SELECT {n.id} FROM picked)
            RETURNING {n.id}, {n.event}, {n.created_at}, {n.expires_at}
        ),
        touched AS (
            UPDATE {s.table} SET {s.last_request_date} = %s WHERE {s.client_id} = %s
        )
        SELECT c.{n.id}, c.{n.event}, e.{e.type}, e.{e.payload}, c.{n.created_at},
            c.{n.expires_at}
        FROM claimed AS c JOIN {e.table} AS e ON e.{e.id} = c.{n.event}
    """  # noqa: S608 - built from our models' names (notifyhub.sql)
    params: list[Any] = [_FIFO_LOCK_SPACE, client_id, client_id, now, client_id, now, client_id]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    return ClaimedNotification(
        id=row[0],
        event_id=row[1],
        type_id=row[2],
        payload=json.loads(row[3]) if isinstance(row[3], str) else row[3],
        created_at=row[4],
        expires_at=row[5],
    )


def _claim_next_portable(*, client_id: str) -> ClaimedNotification | None:
    """The same FIFO claim on any database (writers serialised, as in `_claim_page_portable`);
    the twin of `_claim_next_postgresql`."""
    with transaction.atomic():
        now = timezone.now()
        mine = Notification.objects.filter(subscription__client_id=client_id)
        row = (
            mine.filter(expires_at__gt=now)
            .order_by("id")
            .values_list("id", "event_id", "created_at", "expires_at")
            .first()
        )
        Subscription.objects.filter(client_id=client_id).update(last_request_date=now)
        if row is None:
            return None
        mine.filter(event_id=row[1]).delete()
    event = Event.objects.filter(pk=row[1]).first()
    if event is None:
        return None
    return ClaimedNotification(
        id=row[0],
        event_id=row[1],
        type_id=event.type_id,
        payload=event.payload,
        created_at=row[2],
        expires_at=row[3],
    )


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
