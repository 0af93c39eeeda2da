"""Celery adapters for device pushes: send a batch, retry it when due, sweep lost work.

The enqueue helper sits beside its task and is imported by services at module level; each task
imports its service inside its body (so this module imports no service at import time).
"""

from celery import shared_task
from django.conf import settings
from django.db import transaction


def device_pushes_enqueue(*, push_ids: list[int]) -> None:
    """Send these pushes once the current transaction commits, in batches."""
    size = settings.NOTIFYHUB_PUSH_BATCH
    for start in range(0, len(push_ids), size):
        chunk = push_ids[start : start + size]

        def send(chunk: list[int] = chunk) -> None:
            device_pushes_send_task.delay(chunk)

        transaction.on_commit(send, robust=True)


@shared_task
def device_pushes_send_task(push_ids: list[int]) -> int:
    """Send the due pushes among `push_ids`; schedule the ones a provider asked to retry."""
    from devices.services import device_pushes_send

    result = device_pushes_send(push_ids=push_ids)
    if result.retries.due_in:
        # One message for the batch, when its first push is due: the claim sends only the
        # pushes due by then, and the rows carry next_attempt_at, so the sweep finds the rest
        # (and any lost countdown message).
        device_pushes_send_task.apply_async(
            (list(result.retries.due_in),), countdown=result.retries.soonest
        )
    return result.sent


@shared_task
def device_pushes_sweep_task() -> int:
    """Re-enqueue pushes that are due but whose task was lost (beat)."""
    from devices.services import device_pushes_due

    push_ids = device_pushes_due(limit=10 * settings.NOTIFYHUB_PUSH_BATCH)
    size = settings.NOTIFYHUB_PUSH_BATCH
    for start in range(0, len(push_ids), size):
        device_pushes_send_task.delay(push_ids[start : start + size])
    return len(push_ids)
