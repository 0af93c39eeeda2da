"""Redelivery: the sweep that finds work lost or left behind, release, the operator's resend,
pause and resume, and "recover since T"."""

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from notifyhub import errors
from notifyhub.redis import redis_client, redis_key
from subscriptions.models import Delivery, DeliveryAttempt, Recovery, Subscription
from subscriptions.selectors import subscriptions_pushing
from subscriptions.tasks import deliveries_enqueue, recovery_enqueue

FINISHED = [Delivery.Status.FAILED, Delivery.Status.UNKNOWN, Delivery.Status.DELIVERED]
# Why a row asked for is not sent again (the admin and the API show these counts).
SKIP_IN_FLIGHT = "still pending, sending or paused: it will be sent anyway"
SKIP_EXPIRED = "past its retention: the receiver would get a notification already expired"
SKIP_NOT_FAILED = "delivered (recover only failed and unknown ones, or choose all)"
SKIP_NO_PUSH = "its subscription no longer pushes (no notification_url, or push disabled)"
SKIP_TAKEN = "claimed by a worker meanwhile"


@dataclass(frozen=True)
class SweepResult:
    """What one sweep did."""

    unknown: int
    expired: int
    enqueued: int


def deliveries_sweep(
    *, lease: timedelta | None = None, grace: timedelta = timedelta(seconds=10)
) -> SweepResult:
    """Mark deliveries held past their lease `unknown`, fail pending ones that expired, and
    enqueue those due for `grace` and not attempted (a lost message, a worker killed first)."""
    now = timezone.now()
    lease = lease if lease is not None else settings.NOTIFYHUB_WEBHOOK_LEASE
    with transaction.atomic():
        stale = list(
            Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_at__lte=now - lease)
            .select_for_update(skip_locked=True)
            .values_list("id", "attempts", "claimed_at")
        )
        reason = "the worker stopped during the request: the receiver may or may not have it"
        unknown = Delivery.objects.filter(
            id__in=[row[0] for row in stale], status=Delivery.Status.SENDING
        ).update(status=Delivery.Status.UNKNOWN, last_error=reason, finished_at=now)
        DeliveryAttempt.objects.bulk_create(
            # `claimed_at` is set whenever a row is `sending` (the filter above matched on it).
            DeliveryAttempt(
                delivery_id=row[0], number=row[1], started_at=row[2] or now, error=reason
            )
            for row in stale
        )
    expired = Delivery.objects.filter(status=Delivery.Status.PENDING, expires_at__lte=now).update(
        status=Delivery.Status.FAILED, last_error="expired before it was sent", finished_at=now
    )
    # A row held while its subscription was being resumed (the sender read it paused, the
    # resume ran before the hold was written) is released here.
    Delivery.objects.filter(
        status=Delivery.Status.PAUSED, subscription__paused_at__isnull=True
    ).update(status=Delivery.Status.PENDING)
    expired += Delivery.objects.filter(status=Delivery.Status.PAUSED, expires_at__lte=now).update(
        status=Delivery.Status.FAILED,
        last_error="expired while its subscription was paused",
        finished_at=now,
    )
    due = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now - grace)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:10_000]
    )
    deliveries_enqueue(due)
    return SweepResult(unknown=unknown, expired=expired, enqueued=len(due))


def deliveries_purge_ledger() -> int:
    """Forget finished deliveries (and their attempts) older than NOTIFYHUB_LEDGER_RETENTION,
    those of deleted subscriptions included; returns how many."""
    cutoff = timezone.now() - settings.NOTIFYHUB_LEDGER_RETENTION
    ids = list(
        Delivery.objects.filter(status__in=FINISHED, finished_at__lt=cutoff).values_list(
            "id", flat=True
        )[:10_000]
    )
    DeliveryAttempt.objects.filter(delivery_id__in=ids).delete()
    return Delivery.objects.filter(id__in=ids).delete()[1].get(Delivery._meta.label, 0)


def _releasable(*, client_id: str) -> QuerySet[Delivery]:
    return Delivery.objects.filter(
        subscription__in=subscriptions_pushing(client_id=client_id),
        status__in=[Delivery.Status.FAILED, Delivery.Status.UNKNOWN],
        expires_at__gt=timezone.now(),
    )


def _release_window_take(*, client_id: str) -> None:
    """Spend this client's release for the interval, or raise Throttled with the time left.

    SET NX is the arbiter: of two concurrent releases exactly one sets the key.
    """
    client = redis_client()
    key = redis_key("release", client_id)
    interval = int(settings.NOTIFYHUB_RELEASE_INTERVAL.total_seconds())
    if client.set(key, int(time.time()), nx=True, ex=interval):
        return
    left = client.ttl(key)
    raise errors.Throttled(
        "Failed deliveries may be released once per hour; try again later.",
        retry_after=max(int(left), 1) if isinstance(left, int) else interval,
    )


def deliveries_release(*, client_id: str, dry_run: bool = False, rate_limited: bool = True) -> int:
    """Re-dispatch the client's failed and unknown deliveries that have not expired; returns how
    many. Once per interval per client unless `rate_limited` is off (operators); a dry run only
    counts and spends nothing. Only for a client the hub pushes to: for any other, release
    means nothing, so it is refused and spends nothing either."""
    if not subscriptions_pushing(client_id=client_id).exists():
        raise errors.Conflict(
            "Release applies only to clients the hub pushes to: no subscription of this "
            "client has an active notification_url."
        )
    if dry_run:
        return _releasable(client_id=client_id).count()
    if rate_limited:
        _release_window_take(client_id=client_id)
    return _deliveries_redispatch(_releasable(client_id=client_id))


@dataclass
class Resent:
    """What a resend did: how many rows were queued again, and the others counted by reason."""

    resent: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        text = f"{self.resent} queued to be sent again"
        if self.skipped:
            text += "; left as they were: " + "; ".join(
                f"{count} {reason}" for reason, count in self.skipped.most_common()
            )
        return text


def deliveries_resend(*, delivery_ids: list[int], scope: str = Recovery.Scope.ALL) -> Resent:
    """Send these deliveries again (operator's choice): finished ones (only failed and unknown
    with scope `failed`) still within their retention, of subscriptions that still push. Every
    other row is left alone, counted under the reason why."""
    now = timezone.now()
    rows = Delivery.objects.filter(id__in=delivery_ids).values_list(
        "id",
        "status",
        "expires_at",
        "subscription__notification_url",
        "subscription__push_disabled_at",
    )
    result = Resent()
    wanted = []
    for delivery_id, status, expires_at, url, push_disabled_at in rows:
        if status not in FINISHED:
            result.skipped[SKIP_IN_FLIGHT] += 1
        elif scope == Recovery.Scope.FAILED and status == Delivery.Status.DELIVERED:
            result.skipped[SKIP_NOT_FAILED] += 1
        elif expires_at <= now:
            result.skipped[SKIP_EXPIRED] += 1
        elif not url or push_disabled_at is not None:
            result.skipped[SKIP_NO_PUSH] += 1
        else:
            wanted.append(delivery_id)
    result.resent = _deliveries_redispatch(Delivery.objects.filter(id__in=wanted))
    if len(wanted) > result.resent:
        result.skipped[SKIP_TAKEN] += len(wanted) - result.resent
    return result


# --- Pause and resume ---


def subscription_pause(*, subscription: Subscription) -> int:
    """Hold the subscription's webhook deliveries: its events are still queued and its
    deliveries still written, and wait (status `paused`) until it is resumed. Returns how many
    waiting deliveries were held now (a delivery being sent at this moment finishes)."""
    now = timezone.now()
    with transaction.atomic():
        Subscription.objects.filter(pk=subscription.pk, paused_at__isnull=True).update(
            paused_at=now
        )
        held = Delivery.objects.filter(
            subscription=subscription, status=Delivery.Status.PENDING
        ).update(status=Delivery.Status.PAUSED)
    subscription.refresh_from_db(fields=["paused_at"])
    return held


def subscription_resume(*, subscription: Subscription) -> int:
    """Send what the subscription held while paused, in the order it was written (each row due
    at its creation, so the claim, oldest first, meets them in order). Returns how many."""
    with transaction.atomic():
        Subscription.objects.filter(pk=subscription.pk).update(paused_at=None)
        held = list(
            Delivery.objects.filter(subscription=subscription, status=Delivery.Status.PAUSED)
            .select_for_update(skip_locked=True)
            .order_by("id")
            .values_list("id", flat=True)
        )
        Delivery.objects.filter(id__in=held, status=Delivery.Status.PAUSED).update(
            status=Delivery.Status.PENDING, next_attempt_at=F("created_at")
        )
        deliveries_enqueue(held)
    subscription.refresh_from_db(fields=["paused_at"])
    return len(held)


# --- Recover since T ---

RECOVERY_CHUNK = 500


def recovery_start(
    *, subscription: Subscription, since: datetime, scope: str, requested_by: str
) -> Recovery:
    """Record a recovery and queue its job (after commit); the row shows its progress."""
    if since > timezone.now():
        raise errors.ValidationFailed("since: a time in the past", field="since")
    recovery = Recovery.objects.create(
        subscription=subscription, since=since, scope=scope, requested_by=requested_by
    )
    recovery_enqueue(recovery.pk)
    return recovery


def recovery_run(*, recovery_id: int) -> Recovery | None:
    """Resend the recovery's deliveries, oldest first, in chunks, recording progress after each
    (an interrupted job resumes where it stood: rows already resent are pending, then finished
    again, and are not counted twice because the walk goes by id)."""
    recovery = Recovery.objects.filter(pk=recovery_id).first()
    if recovery is None or recovery.status == Recovery.Status.DONE:
        return recovery
    deliveries = Delivery.objects.filter(
        subscription_id=recovery.subscription_id, created_at__gte=recovery.since
    ).order_by("id")
    Recovery.objects.filter(pk=recovery.pk).update(
        status=Recovery.Status.RUNNING, total=deliveries.count()
    )
    after = 0
    resent, skipped = 0, Counter[str]()
    while True:
        chunk = list(deliveries.filter(id__gt=after).values_list("id", flat=True)[:RECOVERY_CHUNK])
        if not chunk:
            break
        after = chunk[-1]
        result = deliveries_resend(delivery_ids=chunk, scope=recovery.scope)
        resent += result.resent
        skipped.update(result.skipped)
        Recovery.objects.filter(pk=recovery.pk).update(resent=resent, skipped=dict(skipped))
    Recovery.objects.filter(pk=recovery.pk).update(
        status=Recovery.Status.DONE, finished_at=timezone.now()
    )
    recovery.refresh_from_db()
    return recovery


def _deliveries_redispatch(queryset: QuerySet[Delivery]) -> int:
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            queryset.select_for_update(skip_locked=True, of=("self",)).values_list("id", flat=True)
        )
        # Conditional on the status still being a finished one: a row a worker claimed meanwhile
        # is not put back.
        count = Delivery.objects.filter(id__in=ids, status__in=FINISHED).update(
            status=Delivery.Status.PENDING, next_attempt_at=now, finished_at=None
        )
        deliveries_enqueue(ids)
    return count
