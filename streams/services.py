"""Stream sessions: opening one (where its stream resumes), closing it, heartbeats and trimming.

A stream session is one principal's `clientId`, with a position: the last event its connections
were sent. Routing publishes each event once on the bus (streams/channels.py) and each web
process hands it to the streams it holds. Nothing is copied per session: a reconnect replays
from the event log itself, the events after the session's position that its filters match,
within the reconnect window. Ingesting an event therefore costs the same with ten sessions or
ten thousand (django-eventstream and a per-session buffer both write a row per listener). The
bus only makes delivery immediate; the event log makes a reconnect lossless.
"""

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from events.models import Event
from notifyhub import errors
from notifyhub.selectors import member_account_ids
from streams.models import StreamSession
from streams.principals import StreamPrincipal
from streams.rules import StreamFilter, event_id_well_formed, stream_session_events
from streams.selectors import (
    HEARTBEATS_MISSED,
    stream_holder_silent_before,
    stream_sessions_live_filter,
)


@dataclass(frozen=True)
class StreamOpened:
    """What a new connection of a session must do first."""

    session_id: int
    connection_id: uuid.UUID
    # Replay the session's events after this event id ("": every event within the window).
    replay_after: str
    # True: the client's position is lost; it is told with a `reset` frame and starts fresh.
    reset: bool
    # With `reset`: the oldest event id the session could still replay (or, with none, the
    # newest event the hub stored: where the fresh stream starts); "" if the hub stored none.
    oldest_event_id: str
    # Another connection held the session: it must be closed.
    took_over: bool
    # What the connection receives from the bus.
    filter: StreamFilter
    # No Last-Event-ID: the position is the previous connection's, which a connection being
    # taken over records only as it closes, so the new one waits for it (not when the previous
    # connection's process has gone silent: it is dead and will record nothing).
    position_from_session: bool = False
    # `members_known`'s count of the principal's membership changes when the filter was made.
    members_changes: int = 0


# Given (user id, application id): how many membership changes of that principal the web
# process has seen, and its memberships if the process knows them current (None: unknown).
MembersKnown = Callable[[tuple[int | None, int | None]], tuple[int, frozenset[str] | None]]


def _csv(values: list[str]) -> str:
    return "," + ",".join(values) + "," if values else ""


def _newest_event_id() -> str:
    return Event.objects.order_by("-id").values_list("id", flat=True).first() or ""


def _principal_opens_serialize(principal: StreamPrincipal) -> None:
    """One principal's stream opens take turns until their transaction ends (PostgreSQL: an
    advisory lock on the principal), so two opens racing for its last free slot cannot both
    take it, in whatever processes they run. SQLite runs one writing transaction at a time."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))",
            [f"notifyhub.streams:{principal.kind}:{principal.name}"],
        )


def _stream_caps_check(*, principal: StreamPrincipal, client_id: str, now: datetime) -> None:
    """Refuse (429) a principal's new stream over NOTIFYHUB_STREAM_MAX_PER_PRINCIPAL open ones,
    or its new session over NOTIFYHUB_STREAM_MAX_SESSIONS_PER_PRINCIPAL kept ones, counted in
    the database (every process's streams) by one statement. A connection to a session it
    already has (a reconnect, a takeover of the same clientId) adds no session, and replaces,
    not adds, an open stream: it is never counted twice."""
    retention = max(
        settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW, settings.NOTIFYHUB_STREAM_SESSION_RETENTION
    )
    # Sessions past their retention are forgotten by the trim task: they no longer count.
    kept = StreamSession.objects.filter(
        principal_kind=principal.kind, principal=principal.name
    ).exclude(disconnected_at__lt=now - retention)
    counts = kept.aggregate(
        this=Count("pk", filter=Q(client_id=client_id)),
        sessions=Count("pk"),
        open_elsewhere=Count(
            "pk", filter=~Q(client_id=client_id) & stream_sessions_live_filter(now)
        ),
    )
    new_session = counts["this"] == 0
    if new_session and counts["sessions"] >= settings.NOTIFYHUB_STREAM_MAX_SESSIONS_PER_PRINCIPAL:
        oldest = (
            kept.filter(disconnected_at__isnull=False)
            .order_by("disconnected_at")
            .values_list("disconnected_at", flat=True)
            .first()
        )
        wait = (oldest + retention - now).total_seconds() if oldest else _stream_slot_wait()
        raise errors.Throttled(
            "Too many stream sessions (clientIds) for this principal: at most "
            f"{settings.NOTIFYHUB_STREAM_MAX_SESSIONS_PER_PRINCIPAL} are kept; reuse a "
            "clientId.",
            retry_after=max(1, math.ceil(wait)),
        )
    if counts["open_elsewhere"] >= settings.NOTIFYHUB_STREAM_MAX_PER_PRINCIPAL:
        raise errors.Throttled(
            "Too many open streams for this principal: at most "
            f"{settings.NOTIFYHUB_STREAM_MAX_PER_PRINCIPAL}.",
            retry_after=_stream_slot_wait(),
        )


def _live_session_locked(
    *, principal: StreamPrincipal, client_id: str, now: datetime
) -> StreamSession | None:
    """The session, locked, if it already holds a connection whose process is alive: this
    connection then takes its place (a reconnect after a restart, a second tab of the same
    clientId), so it adds neither a session nor an open stream and needs no cap check, nor the
    principal's turn (a reconnect storm of one principal's streams would otherwise open them
    one at a time). One statement: only a live session's row is locked, and whoever locks a
    row here never waits for the principal's turn afterwards (no deadlock with an open that
    holds the turn and waits for the row)."""
    return (
        StreamSession.objects.select_for_update()
        .filter(principal_kind=principal.kind, principal=principal.name, client_id=client_id)
        .filter(stream_sessions_live_filter(now))
        .first()
    )


def _stream_slot_wait() -> int:
    """Seconds to suggest before retrying an open refused for open streams: by then a stream
    whose process died has stopped counting (its heartbeats missed); a closed one at once."""
    return max(1, math.ceil(HEARTBEATS_MISSED * settings.NOTIFYHUB_STREAM_HEARTBEAT))


@transaction.atomic
def stream_session_open(
    *,
    principal: StreamPrincipal,
    client_id: str,
    kinds: list[str],
    account_ids: list[str],
    ticket_number: str,
    last_event_id: str | None,
    members_known: MembersKnown | None = None,
) -> StreamOpened:
    """Attach a new connection to the principal's session for `client_id` (creating it) and
    decide where its stream resumes: after `last_event_id`, else after the session's position
    (the last event its previous connection was sent); a new session starts at the newest
    event, and one past the reconnect window, or resumed from an id the hub no longer keeps
    for it, starts there too and is told so (`reset`).

    A principal may watch only the accounts it is a member of: naming any other in
    `account_ids` is refused (403) before anything is written. Its memberships come from
    `members_known` (the web process's streams of the same principal) when it knows them, else
    from the database."""
    key = (principal.user_id, principal.application_id)
    members_changes, member_of = members_known(key) if members_known else (0, None)
    if member_of is None:
        member_of = member_account_ids(
            user_id=principal.user_id, application_id=principal.application_id
        )
    refused = [account for account in account_ids if account not in member_of]
    if refused:
        raise errors.Forbidden(f"accountIds: you may not watch account {refused[0]!r}")
    now = timezone.now()
    cutoff = now - settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW
    session = _live_session_locked(principal=principal, client_id=client_id, now=now)
    if session is None:
        _principal_opens_serialize(principal)
        _stream_caps_check(principal=principal, client_id=client_id, now=now)
        StreamSession.objects.bulk_create(
            [
                StreamSession(
                    principal_kind=principal.kind,
                    principal=principal.name,
                    client_id=client_id,
                    kinds_csv=_csv(kinds),
                    disconnected_at=now,
                )
            ],
            ignore_conflicts=True,
        )
        # The row lock serializes two connections of one session racing to take it over.
        session = StreamSession.objects.select_for_update().get(
            principal_kind=principal.kind, principal=principal.name, client_id=client_id
        )
    # A connection whose process died (SIGKILL, a lost machine) never recorded its disconnect;
    # its last heartbeat stands in for it, so the window runs from then.
    disconnected_at = session.disconnected_since(silent_before=stream_holder_silent_before(now))
    holder_dead = session.connection_id is not None and disconnected_at is not None
    expired = disconnected_at is not None and disconnected_at < cutoff
    new = session.connected_at is None
    session.principal_user_id = principal.user_id
    session.principal_application_id = principal.application_id
    session.kinds_csv = _csv(kinds)
    session.account_ids_csv = _csv(account_ids)
    session.ticket_number = ticket_number
    if last_event_id is None:
        reset = expired
        replay_after = "" if (new or expired) else session.last_sent_event_id
    else:
        # An id is resumable while the session is within its window and the event is one the
        # replay still reads (created within the window); any other is a lost position, and so
        # is every id sent to a session the hub no longer has (forgotten past its window). An id
        # not of an event's form (a number, another server's id, garbage) names no event: it is
        # a lost position too, checked first so that it never reaches the database.
        known = event_id_well_formed(last_event_id) and (
            last_event_id == session.last_sent_event_id
            or Event.objects.filter(id=last_event_id, created_at__gte=cutoff).exists()
        )
        reset = expired or new or not known
        # Used only when not reset, so only a known id is ever stored as the position.
        replay_after = last_event_id
    oldest = ""
    if reset and not expired:
        # Past its window a session keeps nothing; within it, its replay could start here.
        oldest = (
            stream_session_events(session, after="", since=cutoff)
            .values_list("id", flat=True)
            .first()
            or ""
        )
    if new or reset:
        # Start fresh, at the newest event: nothing older is meant for this stream. A session
        # that started when the log was empty keeps "" as its position: every event since is
        # owed to it (found by bench/storm.py: a client given no event before a restart, so
        # reconnecting without Last-Event-ID, lost what was ingested while it was away).
        replay_after = _newest_event_id()
    # A takeover is still announced when the holder is presumed dead: if it is only slow, the
    # message closes it at once.
    took_over = session.connection_id is not None
    session.last_sent_event_id = replay_after
    session.connection_id = uuid.uuid4()
    session.connected_at = now
    session.disconnected_at = None
    session.seen_at = now
    session.save()
    return StreamOpened(
        session_id=session.pk,
        connection_id=session.connection_id,
        replay_after=replay_after,
        reset=reset,
        oldest_event_id=oldest or replay_after,
        took_over=took_over,
        filter=StreamFilter(
            principal=principal.name,
            user_id=principal.user_id,
            application_id=principal.application_id,
            kinds=frozenset(kinds),
            account_ids=frozenset(account_ids),
            ticket_number=ticket_number,
            member_of=member_of,
        ),
        position_from_session=last_event_id is None and not reset and not holder_dead,
        members_changes=members_changes,
    )


def stream_session_close(
    *, session_id: int, connection_id: uuid.UUID, last_sent_event_id: str
) -> bool:
    """Mark the session disconnected from now, remembering the last event sent; if another
    connection took it over meanwhile, only move its position forward (the new connection may
    be waiting for it); returns whether this connection still held the session."""
    changes: dict[str, Any] = {"connection_id": None, "disconnected_at": timezone.now()}
    if last_sent_event_id:
        changes["last_sent_event_id"] = last_sent_event_id
    held = StreamSession.objects.filter(pk=session_id, connection_id=connection_id).update(
        **changes
    )
    if not held and last_sent_event_id:
        StreamSession.objects.filter(
            pk=session_id, last_sent_event_id__lt=last_sent_event_id
        ).update(last_sent_event_id=last_sent_event_id)
    return bool(held)


def stream_sessions_heartbeat(*, connection_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Mark the sessions these connections (one process's) hold as seen now, in one UPDATE;
    returns the connections that no longer hold their session (taken over, or given up for
    dead by the trim task while their process was stalled)."""
    if not connection_ids:
        return []
    marked = StreamSession.objects.filter(connection_id__in=connection_ids).update(
        seen_at=timezone.now()
    )
    if marked == len(connection_ids):
        return []
    holding = set(
        StreamSession.objects.filter(connection_id__in=connection_ids).values_list(
            "connection_id", flat=True
        )
    )
    return [connection_id for connection_id in connection_ids if connection_id not in holding]


def stream_sessions_trim() -> int:
    """Record as disconnected (since their last heartbeat) the sessions whose process died, and
    forget sessions disconnected for longer than NOTIFYHUB_STREAM_SESSION_RETENTION (at least
    the reconnect window); returns the sessions forgotten. A session past its window but not
    yet forgotten replays nothing: its client, coming back even without Last-Event-ID, is told
    with `reset` rather than silently started afresh."""
    now = timezone.now()
    window = settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW
    # The condition is checked again after any row lock (PostgreSQL's READ COMMITTED): a
    # session a new connection is taking over right now has a fresh seen_at and is left alone.
    StreamSession.objects.filter(
        connection_id__isnull=False, seen_at__lt=stream_holder_silent_before(now)
    ).update(connection_id=None, disconnected_at=F("seen_at"))
    forget_before = now - max(window, settings.NOTIFYHUB_STREAM_SESSION_RETENTION)
    sessions, _ = StreamSession.objects.filter(disconnected_at__lt=forget_before).delete()
    return sessions
