"""Celery adapters for subscription housekeeping."""

from celery import shared_task

from subscriptions.services import notifications_purge_expired


@shared_task
def notifications_purge_expired_task() -> int:
    """Delete notifications past their retention (beat, every minute)."""
    return notifications_purge_expired()
