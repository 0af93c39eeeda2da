"""Celery adapters for event housekeeping."""

from celery import shared_task

from events.services import idempotency_keys_expire


@shared_task
def idempotency_keys_expire_task() -> int:
    """Free idempotency keys older than the window (beat, every 10 minutes)."""
    return idempotency_keys_expire()
