"""Redelivery: the sweep that finds work lost or left behind, release, and the operator's resend."""

import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from notifyhub import errors
from notifyhub.redis import redis_client, redis_key
from subscriptions.models import Delivery, DeliveryAttempt
from subscriptions.selectors import subscriptions_pushing
from subscriptions.tasks import deliveries_enqueue


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
    due = list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__lte=now - grace)
        .order_by("next_attempt_at")
        .values_list("id", flat=True)[:10_000]
    )
    deliveries_enqueue(due)
    return SweepResult(unknown=unknown, expired=expired, enqueued=len(due))


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


def deliveries_resend(*, delivery_ids: list[int]) -> int:
    """Send these deliveries again (operator's choice), whatever their outcome was; pending and
    sending ones are left alone."""
    return _deliveries_redispatch(
        Delivery.objects.filter(
            id__in=delivery_ids,
            status__in=[
                Delivery.Status.FAILED,
                Delivery.Status.UNKNOWN,
                Delivery.Status.DELIVERED,
            ],
        )
    )


def _deliveries_redispatch(queryset: QuerySet[Delivery]) -> int:
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            queryset.select_for_update(skip_locked=True, of=("self",)).values_list("id", flat=True)
        )
        # Conditional on the status still being a finished one: a row a worker claimed meanwhile
        # is not put back.
        count = Delivery.objects.filter(
            id__in=ids,
            status__in=[
                Delivery.Status.FAILED,
                Delivery.Status.UNKNOWN,
                Delivery.Status.DELIVERED,
            ],
        ).update(status=Delivery.Status.PENDING, next_attempt_at=now, finished_at=None)
        deliveries_enqueue(ids)
    return count
