"""Celery adapters for subscription housekeeping."""

from celery import shared_task

from subscriptions.services import notifications_purge_expired
from subscriptions.streams import stream_sessions_trim


@shared_task
def notifications_purge_expired_task() -> int:
    """Delete notifications past their retention (beat, every minute)."""
    return notifications_purge_expired()


@shared_task
def stream_sessions_trim_task() -> int:
    """Forget stream sessions and buffered events past the reconnect window (beat, every minute)."""
    return stream_sessions_trim()
