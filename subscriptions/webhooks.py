"""Webhook push: the outbox of deliveries, signing, and sending with its ledger.

A delivery row is written in the transaction that routes its event (the outbox); the task enqueued
on commit is only a shortcut, and the sweep finds whatever is due and not attempted. A worker
claims a row (pending → sending) with a conditional update right before its request leaves, so a
row is never attempted twice concurrently, and a row found still `sending` after its lease is
`unknown`: the receiver may or may not have it, so it is never resent by itself (see
`subscriptions/redelivery.py` for the sweep, release and resend).
"""

import functools
import json
import logging
import os
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Q
from django.utils import timezone

from events.channels import RoutingStatement
from events.models import Event
from events.operational import (
    DELIVERY_EXHAUSTED,
    SUBSCRIPTION_PUSH_DISABLED,
    DeliveryExhausted,
    SubscriptionPushDisabled,
    is_operational,
    operational_event_emit,
)
from notifyhub import metrics
from notifyhub.http import (
    OutboundError,
    OutboundPolicy,
    OutboundRefused,
    guarded_post,
    parse_networks,
    pooled_client,
)
from notifyhub.metrics import seconds_since, status_class
from notifyhub.outbox import Retries, backoff_seconds, headers_for_ledger, retry_after_seconds
from notifyhub.sql import sql_constant, sql_names
from subscriptions.messages import WebhookBody, integration_message
from subscriptions.models import (
    Delivery,
    DeliveryAttempt,
    Subscription,
)
from subscriptions.selectors import subscribers_sql
from subscriptions.signing import webhook_secret_generate, webhook_sign

logger = logging.getLogger(__name__)

USER_AGENT = "notifyhub-webhooks/1"
# A task drains due deliveries for at most this long, then gives its worker process back to the
# broker (what is left is claimed by the next task or found by the sweep).
DRAIN_SECONDS = 30.0
ENQUEUE_CHUNK = 200
# How long a finished request's outcome may wait to be written with others.
RECORD_LINGER = 0.02
# A retry waits at most a day.
RETRY_CAP = 24 * 3600.0


def subscription_rotate_webhook_secret(
    *, subscription: Subscription, grace: timedelta | None = None
) -> str:
    """Give the subscription a new secret; the old one keeps signing for `grace`. Returns the new
    secret (shown this once)."""
    new = webhook_secret_generate()
    until = timezone.now() + (
        grace if grace is not None else settings.NOTIFYHUB_WEBHOOK_SECRET_GRACE
    )
    Subscription.objects.filter(pk=subscription.pk).update(
        webhook_secret=new,
        webhook_secret_previous=F("webhook_secret"),
        webhook_secret_previous_until=until,
    )
    subscription.refresh_from_db(
        fields=["webhook_secret", "webhook_secret_previous", "webhook_secret_previous_until"]
    )
    return new


# --- The outbox ---


@functools.cache
def _deliveries_routing_statement(
    vendor: str, integration_retention: timedelta
) -> RoutingStatement:
    """The webhook outbox's routing statement for this database vendor (built once)."""
    d = sql_names(Delivery)
    s = sql_names(Subscription)
    e = sql_names(Event)
    subscribers = subscribers_sql(integration_retention=integration_retention)
    # - One delivery per client and URL: the Integration API pushes an event to a client's
    #   endpoint once, however many of its subscriptions match (the newest one signs it).
    # - ORDER BY: ids in Subscription's ordering. The rows of one event tie on next_attempt_at,
    #   so this order is the order in which claims meet them.
    sql = f"""
        INSERT INTO {d.table} (
            {d.subscription}, {d.event}, {d.status}, {d.created_at}, {d.expires_at},
            {d.next_attempt_at}, {d.attempts}, {d.last_error}
        )
        SELECT pushing.subscription_id, pushing.event_id, %s, pushing.created_at,
            pushing.expires_at, pushing.created_at, 0, ''
        FROM (
            SELECT s.{s.id} AS subscription_id, e.{e.id} AS event_id,
                e.{e.created_at} AS created_at, {subscribers.expires_at} AS expires_at,
                s.{s.subscription_date} AS subscription_date,
                row_number() OVER (
                    PARTITION BY s.{s.client_id}, s.{s.notification_url}
                    ORDER BY s.{s.subscription_date} DESC, s.{s.id}
                ) AS nth
            {subscribers.source}
                AND s.{s.push_disabled_at} IS NULL AND s.{s.notification_url} <> ''
        ) AS pushing
        WHERE pushing.nth = 1
        ORDER BY pushing.subscription_date DESC
        RETURNING {d.id}
    """  # noqa: S608 - built from our models' names (notifyhub.sql)
    return RoutingStatement(sql, (Delivery.Status.PENDING,))


def deliveries_routing_statement(*, connection: BaseDatabaseWrapper) -> RoutingStatement:
    """Owe the new event to every pushing subscription to its type (one statement, the outbox
    rows written with the event); `tasks.deliveries_enqueue` sends them after commit."""
    return _deliveries_routing_statement(
        connection.vendor, settings.NOTIFYHUB_INTEGRATION_RETENTION
    )


# --- Sending ---


@dataclass(frozen=True)
class _Prepared:
    """A claimed delivery, signed and ready to leave."""

    delivery_id: int
    subscription_id: uuid.UUID
    claimed_at: datetime
    attempt: int
    url: str
    body: bytes
    headers: dict[str, str]
    policy: str
    refusal: str = ""
    event_id: str = ""
    event_created_at: datetime | None = None  # for the ingest-to-receiver latency
    # For the operational events a failure emits (events/operational.py).
    event_type: str = ""
    client_id: str = ""


@dataclass(frozen=True)
class _Outcome:
    """What one request came to."""

    started_at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str = ""
    excerpt: str = ""
    retry_after: float | None = None
    final: bool = False  # A failure that retrying cannot cure (a refused address).
    response_headers: dict[str, str] = field(default_factory=dict)


def webhook_policy() -> OutboundPolicy:
    """The outbound limits of webhook sends, from settings."""
    return OutboundPolicy(
        connect_timeout=settings.NOTIFYHUB_WEBHOOK_CONNECT_TIMEOUT,
        total_timeout=settings.NOTIFYHUB_WEBHOOK_TIMEOUT,
        max_response_bytes=settings.NOTIFYHUB_WEBHOOK_MAX_RESPONSE_BYTES,
        allowed_networks=parse_networks(settings.NOTIFYHUB_WEBHOOK_ALLOWED_NETWORKS),
    )


_executors: dict[int, ThreadPoolExecutor] = {}
_executors_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """This process's bounded pool of sending threads (never one inherited through fork)."""
    pid = os.getpid()
    with _executors_lock:
        executor = _executors.get(pid)
        if executor is None:
            executor = ThreadPoolExecutor(
                max_workers=settings.NOTIFYHUB_WEBHOOK_CONCURRENCY, thread_name_prefix="webhook"
            )
            _executors.clear()
            _executors[pid] = executor
    return executor


def _claim(
    *, free: int, only_ids: list[int] | None, busy: Counter[uuid.UUID], per_subscription: int
) -> list[int]:
    """Claim up to `free` due pending deliveries (pending → sending), none beyond a subscription's
    share of the in-flight slots.

    PostgreSQL: `FOR UPDATE SKIP LOCKED` lets concurrent workers take disjoint rows; the update is
    conditional on `pending` all the same, so a row is only ever claimed once. SQLite: the
    transaction starts IMMEDIATE, which serialises writers.
    """
    if connection.vendor == "postgresql":
        return _claim_postgresql(
            free=free, only_ids=only_ids, busy=busy, per_subscription=per_subscription
        )
    return _claim_portable(
        free=free, only_ids=only_ids, busy=busy, per_subscription=per_subscription
    )


def _claim_portable(
    *, free: int, only_ids: list[int] | None, busy: Counter[uuid.UUID], per_subscription: int
) -> list[int]:
    """`_claim` on any database, through the ORM (the twin of `_claim_postgresql`)."""
    now = timezone.now()
    full = [subscription for subscription, count in busy.items() if count >= per_subscription]
    with transaction.atomic():
        queryset = Delivery.objects.filter(
            status=Delivery.Status.PENDING, next_attempt_at__lte=now, expires_at__gt=now
        ).exclude(subscription_id__in=full)
        if only_ids is not None:
            queryset = queryset.filter(id__in=only_ids)
        candidates = list(
            queryset.order_by("next_attempt_at")
            .select_for_update(skip_locked=True)
            .values_list("id", "subscription_id")[: free * 4]
        )
        chosen: list[int] = []
        for delivery_id, subscription_id in candidates:
            if busy[subscription_id] >= per_subscription:
                continue
            # Counted as busy from the claim on, so the next claim of this round sees it.
            busy[subscription_id] += 1
            chosen.append(delivery_id)
            if len(chosen) == free:
                break
        if chosen:
            Delivery.objects.filter(id__in=chosen, status=Delivery.Status.PENDING).update(
                status=Delivery.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
            )
    return chosen


@functools.cache
def _claim_sql() -> str:
    """`_claim_postgresql`'s statement, its names from the models (built once)."""
    d = sql_names(Delivery)
    # The statuses in the SQL, not as parameters: the candidates' scan must match the partial
    # index delivery_due (sql_constant says why).
    pending = sql_constant(Delivery.Status.PENDING)
    sending = sql_constant(Delivery.Status.SENDING)
    return f"""
        WITH candidates AS (
            SELECT {d.id}, {d.subscription}, {d.next_attempt_at} FROM {d.table}
            WHERE {d.status} = {pending}
              AND {d.next_attempt_at} <= %(now)s AND {d.expires_at} > %(now)s
              AND (%(only)s::bigint[] IS NULL OR {d.id} = ANY(%(only)s::bigint[]))
            ORDER BY {d.next_attempt_at}
            LIMIT %(scan)s
            FOR UPDATE SKIP LOCKED
        ), ranked AS (
            SELECT candidates.{d.id}, candidates.{d.next_attempt_at},
                   row_number() OVER (
                       PARTITION BY candidates.{d.subscription} ORDER BY candidates.{d.id}
                   ) AS rank,
                   COALESCE(room.slots, %(per_subscription)s) AS slots
            FROM candidates
            LEFT JOIN unnest(%(busy_ids)s::uuid[], %(busy_room)s::int[])
                AS room(subscription_id, slots)
                ON room.subscription_id = candidates.{d.subscription}
        ), chosen AS (
            SELECT {d.id} FROM ranked WHERE rank <= slots
            ORDER BY {d.next_attempt_at} LIMIT %(free)s
        )
        UPDATE {d.table} AS delivery
        SET {d.status} = {sending}, {d.claimed_at} = %(now)s,
            {d.attempts} = delivery.{d.attempts} + 1
        FROM chosen
        WHERE delivery.{d.id} = chosen.{d.id} AND delivery.{d.status} = {pending}
        RETURNING delivery.{d.id}, delivery.{d.subscription}
    """  # noqa: S608 - built from our models' names (notifyhub.sql)


def _claim_postgresql(
    *, free: int, only_ids: list[int] | None, busy: Counter[uuid.UUID], per_subscription: int
) -> list[int]:
    """`_claim` for PostgreSQL as one round trip: lock candidates (SKIP LOCKED), keep each
    subscription within its room, and flip them pending → sending, in one autocommitted UPDATE
    (the twin of `_claim_portable`, which chooses the same rows)."""
    busy_ids = [subscription for subscription, count in busy.items() if count > 0]
    params = {
        "now": timezone.now(),
        "only": only_ids,
        "scan": free * 4,
        "free": free,
        "per_subscription": per_subscription,
        "busy_ids": busy_ids,
        "busy_room": [max(per_subscription - busy[s], 0) for s in busy_ids],
    }
    with connection.cursor() as cursor:
        cursor.execute(_claim_sql(), params)
        rows = cursor.fetchall()
    for _, subscription_id in rows:
        busy[subscription_id] += 1
    return [delivery_id for delivery_id, _ in rows]


def _prepare(delivery_ids: list[int]) -> list[_Prepared]:
    """Build the signed request of each claimed delivery."""
    now = timezone.now()
    timestamp = int(now.timestamp())
    prepared = []
    rows = Delivery.objects.filter(id__in=delivery_ids).select_related("subscription", "event")
    held = []
    for delivery in rows:
        subscription = delivery.subscription
        if subscription is None or subscription.paused_at is not None:
            held.append(delivery)
            continue
        message: WebhookBody = integration_message(
            event_id=delivery.event.id,
            type_id=delivery.event.type_id,
            payload=delivery.event.payload,
            created_at=delivery.created_at,
            expires_at=delivery.expires_at,
        )
        body = json.dumps(
            message,
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": webhook_sign(
                secrets=subscription.signing_secrets(now),
                msg_id=delivery.event_id,
                timestamp=timestamp,
                body=body,
            ),
        }
        prepared.append(
            _Prepared(
                delivery_id=delivery.id,
                subscription_id=subscription.id,
                claimed_at=delivery.claimed_at or now,
                attempt=delivery.attempts,
                url=subscription.notification_url,
                body=body,
                headers=headers,
                policy=subscription.delivery_policy,
                refusal="" if subscription.pushes else "push is disabled for this subscription",
                event_id=delivery.event_id,
                event_created_at=delivery.event.created_at,
                event_type=delivery.event.type_id,
                client_id=subscription.client_id,
            )
        )
    if held:
        _hold(held)
    return prepared


def _hold(deliveries: list[Delivery]) -> None:
    """Give claimed deliveries back without an attempt: those of a paused subscription wait
    (`paused`) for its resume; those of a deleted one fail (its receiver is no longer known)."""
    for delivery in deliveries:
        claim = Delivery.objects.filter(
            id=delivery.id, claimed_at=delivery.claimed_at, status=Delivery.Status.SENDING
        )
        if delivery.subscription is None:
            claim.update(
                status=Delivery.Status.FAILED,
                last_error="its subscription was deleted",
                finished_at=timezone.now(),
            )
        else:
            claim.update(status=Delivery.Status.PAUSED, claimed_at=None, attempts=F("attempts") - 1)
            # And the rest of its waiting rows at once, rather than one claim each.
            Delivery.objects.filter(
                subscription=delivery.subscription, status=Delivery.Status.PENDING
            ).update(status=Delivery.Status.PAUSED)


def _send(prepared: _Prepared, policy: OutboundPolicy) -> _Outcome:
    """Make the request (in a sending thread: no database here)."""
    started_at = timezone.now()
    start = time.monotonic()
    if prepared.refusal:
        return _Outcome(started_at=started_at, duration_ms=0, error=prepared.refusal, final=True)
    try:
        response = guarded_post(
            url=prepared.url,
            content=prepared.body,
            headers=prepared.headers,
            policy=policy,
            client=pooled_client(max_connections=settings.NOTIFYHUB_WEBHOOK_CONCURRENCY),
        )
    except OutboundRefused as exc:
        return _Outcome(
            started_at=started_at,
            duration_ms=int((time.monotonic() - start) * 1000),
            error=exc.reason[:500],
            final=True,
        )
    except OutboundError as exc:
        return _Outcome(
            started_at=started_at,
            duration_ms=int((time.monotonic() - start) * 1000),
            error=exc.reason[:500],
        )
    error = ""
    if not 200 <= response.status_code < 300:
        error = f"HTTP {response.status_code}"
        if 300 <= response.status_code < 400:
            error += " (redirects are not followed)"
    return _Outcome(
        started_at=started_at,
        duration_ms=int((time.monotonic() - start) * 1000),
        status_code=response.status_code,
        error=error,
        excerpt=response.body[:500].decode("utf-8", errors="replace"),
        retry_after=retry_after_seconds(response.headers.get("retry-after")),
        response_headers=headers_for_ledger(response.headers),
    )


def _record(results: list[tuple[_Prepared, _Outcome]]) -> dict[int, float]:
    """Store the attempts and each delivery's new status, in one transaction for the batch;
    returns the deliveries to try again, with the seconds until each is due."""
    now = timezone.now()
    delivered: dict[int, int] = {}
    ours = [prepared for prepared, _ in results]
    retry_ids: dict[int, float] = {}
    with transaction.atomic():
        DeliveryAttempt.objects.bulk_create(
            [
                DeliveryAttempt(
                    delivery_id=prepared.delivery_id,
                    number=prepared.attempt,
                    started_at=outcome.started_at,
                    duration_ms=outcome.duration_ms,
                    status_code=outcome.status_code,
                    error=outcome.error,
                    response_excerpt=outcome.excerpt,
                    request_headers=headers_for_ledger(prepared.headers),
                    response_headers=outcome.response_headers,
                )
                for prepared, outcome in results
            ]
        )
        for prepared, outcome in results:
            # Ours only if still the claim we made: a sweep may have judged it `unknown` meanwhile
            # (the answer we now have is better than that), but nothing else may have touched it.
            mine = Delivery.objects.filter(
                id=prepared.delivery_id,
                claimed_at=prepared.claimed_at,
                status__in=[Delivery.Status.SENDING, Delivery.Status.UNKNOWN],
            )
            if outcome.status_code is not None and not outcome.error:
                delivered[prepared.delivery_id] = outcome.status_code
                continue
            if outcome.status_code == 410:
                disabled = Subscription.objects.filter(
                    id=prepared.subscription_id, push_disabled_at__isnull=True
                ).update(
                    push_disabled_at=now, push_disabled_reason="the receiver answered 410 Gone"
                )
                if disabled:
                    _push_disabled_announce(prepared, now)
            elif (
                prepared.policy == Subscription.DeliveryPolicy.RETRY
                and not outcome.final
                and prepared.attempt < settings.NOTIFYHUB_WEBHOOK_MAX_ATTEMPTS
            ):
                delay = backoff_seconds(
                    attempt=prepared.attempt,
                    base=settings.NOTIFYHUB_WEBHOOK_RETRY_BASE.total_seconds(),
                    cap=RETRY_CAP,
                    retry_after=outcome.retry_after,
                )
                mine.update(
                    status=Delivery.Status.PENDING,
                    next_attempt_at=now + timedelta(seconds=delay),
                    last_status_code=outcome.status_code,
                    last_error=outcome.error,
                )
                retry_ids[prepared.delivery_id] = delay
                continue
            if mine.update(
                status=Delivery.Status.FAILED,
                last_status_code=outcome.status_code,
                last_error=outcome.error,
                finished_at=now,
            ):
                _exhausted_announce(prepared, outcome)
        # One statement per status code for the common case; each row is still checked to be
        # our claim.
        for code in set(delivered.values()):
            claims = Q()
            for prepared in ours:
                if delivered.get(prepared.delivery_id) == code:
                    claims |= Q(id=prepared.delivery_id, claimed_at=prepared.claimed_at)
            Delivery.objects.filter(
                claims, status__in=[Delivery.Status.SENDING, Delivery.Status.UNKNOWN]
            ).update(
                status=Delivery.Status.DELIVERED,
                last_status_code=code,
                last_error="",
                finished_at=now,
            )
    _attempts_observe(results)
    return retry_ids


def _attempts_observe(results: list[tuple[_Prepared, _Outcome]]) -> None:
    """Count the recorded attempts, and log each failure once, with its reason and ids."""
    for prepared, outcome in results:
        if outcome.status_code is not None and not outcome.error:
            metrics.webhook_attempts.labels("delivered", status_class(outcome.status_code)).inc()
            if prepared.event_created_at is not None:
                metrics.delivery_latency_seconds.observe(seconds_since(prepared.event_created_at))
            continue
        # Refused: never sent (the SSRF guard, push disabled); no retry can cure it.
        kind = "refused" if outcome.final and outcome.status_code is None else "failed"
        metrics.webhook_attempts.labels(kind, status_class(outcome.status_code)).inc()
        logger.warning(
            "webhook attempt %s: delivery=%s event=%s subscription=%s attempt=%d: %s",
            kind,
            prepared.delivery_id,
            prepared.event_id,
            prepared.subscription_id,
            prepared.attempt,
            outcome.error,
            extra={
                "delivery_id": prepared.delivery_id,
                "event_id": prepared.event_id,
                "subscription_id": str(prepared.subscription_id),
                "attempt": prepared.attempt,
                "status_code": outcome.status_code,
                "reason": outcome.error,
            },
        )


def _exhausted_announce(prepared: _Prepared, outcome: _Outcome) -> None:
    """notifyhub.delivery.exhausted, unless the delivery was itself of an operational event."""
    if is_operational(prepared.event_type):
        return
    payload: DeliveryExhausted = {
        "delivery_id": prepared.delivery_id,
        "subscription_id": str(prepared.subscription_id),
        "client_id": prepared.client_id,
        "notification_url": prepared.url,
        "event_id": prepared.event_id,
        "event_type": prepared.event_type,
        "attempts": prepared.attempt,
        "last_status_code": outcome.status_code,
        "reason": outcome.error,
    }
    operational_event_emit(
        type_id=DELIVERY_EXHAUSTED,
        payload=dict(payload),
        key=f"delivery-exhausted:{prepared.delivery_id}:{prepared.attempt}",
    )


def _push_disabled_announce(prepared: _Prepared, now: datetime) -> None:
    payload: SubscriptionPushDisabled = {
        "subscription_id": str(prepared.subscription_id),
        "client_id": prepared.client_id,
        "notification_url": prepared.url,
        "reason": "the receiver answered 410 Gone",
    }
    operational_event_emit(
        type_id=SUBSCRIPTION_PUSH_DISABLED,
        payload=dict(payload),
        key=f"push-disabled:{prepared.subscription_id}:{now.isoformat()}",
    )


@dataclass(frozen=True)
class SendResult:
    """What one send pass did: requests made, and the deliveries to try again when."""

    attempted: int = 0
    retries: Retries = field(default_factory=Retries)


def deliveries_send(*, delivery_ids: list[int] | None = None) -> SendResult:
    """Send due deliveries, several at once, until none is due (or the drain time is up).

    `delivery_ids` (the ones a commit just enqueued) are claimed first, then whatever else is due,
    so a busy worker keeps its sending threads full. Returns how many requests were made and
    what to retry (the task schedules it).
    """
    policy = webhook_policy()
    slots = settings.NOTIFYHUB_WEBHOOK_CONCURRENCY
    per_subscription = settings.NOTIFYHUB_WEBHOOK_PER_SUBSCRIPTION
    executor = _executor()
    in_flight: dict[Future[_Outcome], _Prepared] = {}
    busy: Counter[uuid.UUID] = Counter()
    first_ids = list(delivery_ids) if delivery_ids else None
    deadline = time.monotonic() + DRAIN_SECONDS
    drained = False
    attempted = 0
    batch = max(1, slots // 4)
    results: list[tuple[_Prepared, _Outcome]] = []
    results_since: float | None = None
    due_at: dict[int, float] = {}  # delivery id → monotonic time it is due again
    while True:
        free = slots - len(in_flight)
        # Claim in batches (a quarter of the slots) rather than per finished request: fewer
        # queries, and each row is still claimed only just before its request leaves.
        if not drained and free > 0 and (not in_flight or free >= batch):
            claimed: list[int] = []
            if first_ids is not None:
                claimed = _claim(
                    free=free, only_ids=first_ids, busy=busy, per_subscription=per_subscription
                )
                first_ids = None
            if len(claimed) < free:
                claimed += _claim(
                    free=free - len(claimed),
                    only_ids=None,
                    busy=busy,
                    per_subscription=per_subscription,
                )
            for prepared in _prepare(claimed):
                in_flight[executor.submit(_send, prepared, policy)] = prepared
            if (not claimed and not in_flight) or time.monotonic() > deadline:
                drained = True
        if not in_flight and not results:
            now = time.monotonic()
            return SendResult(
                attempted=attempted,
                retries=Retries({key: max(0.0, due - now) for key, due in due_at.items()}),
            )
        # A short wait, not "until one finishes": while slow receivers hold some threads, new
        # deliveries for other subscriptions are still claimed and sent on the free ones.
        done, _ = wait(list(in_flight), timeout=0.05, return_when=FIRST_COMPLETED)
        for future in done:
            prepared = in_flight.pop(future)
            busy[prepared.subscription_id] -= 1
            results.append((prepared, future.result()))
            if results_since is None:
                results_since = time.monotonic()
        # Outcomes are written in batches (a few ms late at most): the ledger costs a handful of
        # statements per batch instead of per request.
        if results and (
            len(results) >= batch
            or not in_flight
            or time.monotonic() - (results_since or 0) > RECORD_LINGER
        ):
            attempted += len(results)
            recorded_at = time.monotonic()
            for delivery_id, delay in _record(results).items():
                due_at[delivery_id] = recorded_at + delay
            results, results_since = [], None
