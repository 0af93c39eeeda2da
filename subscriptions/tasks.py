"""Celery adapters for subscription housekeeping and webhook sending."""

from celery import shared_task

from subscriptions.redelivery import deliveries_sweep
from subscriptions.services import notifications_purge_expired
from subscriptions.streams import stream_sessions_trim
from subscriptions.webhooks import deliveries_send


@shared_task
def notifications_purge_expired_task() -> int:
    """Delete notifications past their retention (beat, every minute)."""
    return notifications_purge_expired()


@shared_task
def deliveries_send_task(*, delivery_ids: list[int]) -> int:
    """Send these deliveries (each claimed pending → sending first) and any others due."""
    return deliveries_send(delivery_ids=delivery_ids)


@shared_task
def deliveries_sweep_task() -> dict[str, int]:
    """Mark dead sends unknown and re-enqueue deliveries due but not attempted (beat)."""
    result = deliveries_sweep()
    return {"unknown": result.unknown, "expired": result.expired, "enqueued": result.enqueued}


@shared_task
def stream_sessions_trim_task() -> int:
    """Record dead holders' disconnects and forget stream sessions past their retention (beat,
    every minute)."""
    return stream_sessions_trim()
