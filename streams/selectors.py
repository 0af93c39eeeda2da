"""Reads of stream sessions: which are live, where each stands, what a reconnect replays."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from streams.messages import StreamEvent, stream_event_of
from streams.models import StreamSession
from streams.rules import StreamFilter, stream_filter_events, stream_session_events

REPLAY_PAGE_SIZE = 200

# A connection whose process missed this many heartbeats in a row is presumed dead: one late
# heartbeat (a slow database, a busy event loop) must not end a live stream's session.
HEARTBEATS_MISSED = 3


def stream_holder_silent_before(now: datetime) -> datetime:
    """A connection whose process has sent no heartbeat since this time is presumed dead."""
    return now - timedelta(seconds=HEARTBEATS_MISSED * settings.NOTIFYHUB_STREAM_HEARTBEAT)


def stream_sessions_live_filter(now: datetime | None = None) -> Q:
    """Sessions holding a connection whose process is alive (has sent a recent heartbeat)."""
    silent_before = stream_holder_silent_before(now or timezone.now())
    return Q(connection_id__isnull=False, seen_at__gte=silent_before)


def stream_sessions_connected_count() -> int:
    """Stream sessions holding a live connection now (the admin's "Live streams")."""
    return StreamSession.objects.filter(stream_sessions_live_filter()).count()


def stream_session_position(*, session_id: int) -> str:
    """The last event id recorded as sent for the session ("" if none)."""
    return (
        StreamSession.objects.filter(pk=session_id)
        .values_list("last_sent_event_id", flat=True)
        .first()
        or ""
    )


def stream_replay_page(
    *, session_id: int, after: str, limit: int = REPLAY_PAGE_SIZE
) -> list[StreamEvent]:
    """The session's events after `after` still within the reconnect window, oldest first."""
    session = StreamSession.objects.filter(pk=session_id).first()
    if session is None:
        return []
    events = stream_session_events(session, after=after, since=_replay_since())[:limit]
    return [stream_event_of(event) for event in events]


def stream_filter_replay_page(
    *, filter: StreamFilter, after: str, limit: int = REPLAY_PAGE_SIZE
) -> list[StreamEvent]:
    """A connection's replay page: `stream_replay_page` by the connection's own filter (the
    one its session was opened with), in one statement."""
    events = stream_filter_events(filter, after=after, since=_replay_since())[:limit]
    return [stream_event_of(event) for event in events]


def _replay_since() -> datetime:
    return timezone.now() - settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW
