"""Celery adapters for device pushes: send a batch, retry it when due, sweep lost work."""

from celery import shared_task
from django.conf import settings
from django.db import transaction

from devices.services import device_pushes_due, device_pushes_send


def device_pushes_enqueue(*, push_ids: list[int]) -> None:
    """Send these pushes once the current transaction commits, in batches."""
    size = settings.NOTIFYHUB_PUSH_BATCH
    for start in range(0, len(push_ids), size):
        chunk = push_ids[start : start + size]
        transaction.on_commit(lambda chunk=chunk: device_pushes_send_task.delay(chunk), robust=True)


@shared_task
def device_pushes_send_task(push_ids: list[int]) -> int:
    """Send the due pushes among `push_ids`; schedule the ones a provider asked to retry."""
    result = device_pushes_send(push_ids=push_ids)
    if result.retry_ids:
        # The rows carry next_attempt_at, so a lost countdown message is found by the sweep.
        device_pushes_send_task.apply_async((result.retry_ids,), countdown=result.retry_in)
    return result.sent


@shared_task
def device_pushes_sweep_task() -> int:
    """Re-enqueue pushes that are due but whose task was lost (beat)."""
    push_ids = device_pushes_due(limit=10 * settings.NOTIFYHUB_PUSH_BATCH)
    size = settings.NOTIFYHUB_PUSH_BATCH
    for start in range(0, len(push_ids), size):
        device_pushes_send_task.delay(push_ids[start : start + size])
    return len(push_ids)
