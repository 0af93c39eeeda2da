"""Celery adapters for subscription housekeeping and webhook sending.

The enqueue helper sits beside its task and is imported by services at module level; each task
imports its service inside its body (so this module imports no service at import time).
"""

from celery import shared_task
from django.db import transaction

from notifyhub.outbox import Retries

ENQUEUE_CHUNK = 200
# Short waits get a delayed message; longer ones are left to the sweep, since Celery holds a
# delayed message in a worker's memory (and Redis redelivers it after the visibility timeout)
# for all of its wait.
RETRY_MESSAGE_MAX_DELAY = 60.0


def deliveries_enqueue(delivery_ids: list[int], *, countdown: float | None = None) -> None:
    """Enqueue sends of these deliveries once the current transaction commits (at once outside
    one); the rows stay the truth, this is only the shortcut."""
    for start in range(0, len(delivery_ids), ENQUEUE_CHUNK):
        chunk = delivery_ids[start : start + ENQUEUE_CHUNK]

        def send(chunk: list[int] = chunk) -> None:
            deliveries_send_task.apply_async(kwargs={"delivery_ids": chunk}, countdown=countdown)

        transaction.on_commit(send, robust=True)


def _schedule_retries(retries: Retries) -> None:
    for delivery_id, delay in retries.due_in.items():
        if delay <= RETRY_MESSAGE_MAX_DELAY:
            deliveries_enqueue([delivery_id], countdown=delay)


@shared_task
def notifications_purge_expired_task() -> int:
    """Delete notifications past their retention (beat, every minute)."""
    from subscriptions.services import notifications_purge_expired

    return notifications_purge_expired()


@shared_task
def deliveries_send_task(*, delivery_ids: list[int]) -> int:
    """Send these deliveries (each claimed pending → sending first) and any others due; schedule
    the ones to retry soon (the sweep finds the others)."""
    from subscriptions.webhooks import deliveries_send

    result = deliveries_send(delivery_ids=delivery_ids)
    _schedule_retries(result.retries)
    return result.attempted


@shared_task
def deliveries_sweep_task() -> dict[str, int]:
    """Mark dead sends unknown and re-enqueue deliveries due but not attempted (beat)."""
    from subscriptions.redelivery import deliveries_sweep

    result = deliveries_sweep()
    return {"unknown": result.unknown, "expired": result.expired, "enqueued": result.enqueued}


def recovery_enqueue(recovery_id: int) -> None:
    """Run this recovery's job once the current transaction commits."""
    transaction.on_commit(
        lambda: recovery_run_task.apply_async(kwargs={"recovery_id": recovery_id}), robust=True
    )


@shared_task
def recovery_run_task(*, recovery_id: int) -> int:
    """Resend one recovery's deliveries (an operator's or administrator's "recover since T")."""
    from subscriptions.redelivery import recovery_run

    recovery = recovery_run(recovery_id=recovery_id)
    return recovery.resent if recovery is not None else 0


@shared_task
def deliveries_purge_ledger_task() -> int:
    """Forget finished deliveries past NOTIFYHUB_LEDGER_RETENTION (beat, hourly)."""
    from subscriptions.redelivery import deliveries_purge_ledger

    return deliveries_purge_ledger()
