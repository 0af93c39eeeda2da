"""Celery adapters for stream housekeeping (each task imports its service in its body)."""

from celery import shared_task


@shared_task
def stream_sessions_trim_task() -> int:
    """Record dead holders' disconnects and forget stream sessions past their retention (beat,
    every minute)."""
    from streams.services import stream_sessions_trim

    return stream_sessions_trim()
