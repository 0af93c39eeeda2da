"""Server-sent event frames, as the Push API and the admin's live page write them.

django-eventstream's encoder does the framing: it strips CR/LF from the event name and id and
splits multi-line data.
"""

from typing import Any

from django.conf import settings
from django_eventstream.utils import sse_encode_event

from streams.messages import StreamEvent

KEEP_ALIVE = b": keep-alive\n\n"


def event_frame(kind: str, data: Any, event_id: str | None = None) -> str:
    """One frame: `event:` kind, `data:` the JSON of `data`, `id:` when given."""
    return sse_encode_event(kind, data, event_id=event_id, json_encode=True)


def stream_event_frame(event: StreamEvent) -> str:
    """A Push API frame: `id:` the event's id, `event:` its kind, `data:` the producer's
    payload exactly as posted (its own `id`, `type` or `created_at` members included)."""
    return event_frame(event["type"], event["payload"], event["id"])


def admin_feed_frame(event: StreamEvent) -> str:
    """The admin's live page frame: unnamed (`message`), every event with its metadata."""
    return event_frame("message", event, event["id"])


def retry_frame() -> str:
    """The first line of every stream: how long its EventSource waits before reconnecting."""
    return f"retry: {settings.NOTIFYHUB_STREAM_RETRY_MS}\n"


def reset_frame(*, oldest_event_id: str) -> str:
    """The first frame of a stream whose position is lost. It has no id, so the client's
    Last-Event-ID stays unset until the first fresh event."""
    return event_frame("reset", {"type": "reset", "oldest_event_id": oldest_event_id})


def logged_out_frame(reason: str) -> bytes:
    """The last frame of a stream whose credential ended."""
    return event_frame("loggedOut", {"type": "loggedOut", "reason": reason}).encode()
