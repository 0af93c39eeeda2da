"""Push API stream sessions: who a stream belongs to, what it receives, its replay, and the bus.

A stream session is one principal's `clientId`, with a position: the last event its connections
were sent. The routing step (StreamChannel) finds the sessions an event concerns and, after
commit, publishes the event once on this deployment's Redis channel with their ids; each web
process hands it to the streams it holds. Nothing is copied per session: a reconnect replays from
the event log itself, the events after the session's position that its filters match, within the
reconnect window. Ingesting an event therefore costs the same with ten sessions or ten thousand
(django-eventstream and a per-session buffer both write a row per listener). The bus only makes
delivery immediate; the event log makes a reconnect lossless.
"""

import json
import logging
import math
import re
import secrets
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from importlib import import_module
from typing import Any, TypedDict

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.base import SessionBase
from django.db import connection, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django_eventstream.utils import sse_encode_event
from oauth2_provider.models import get_access_token_model

from events.models import Event
from notifyhub import errors
from notifyhub.auth import TokenInfo
from notifyhub.formats import iso_utc
from notifyhub.models import AccountMember
from notifyhub.redis import redis_client, redis_key, redis_publish
from notifyhub.types import JSONDict
from subscriptions.models import StreamSession

logger = logging.getLogger(__name__)

STREAM_KINDS = ("accountStatus", "loggedOut", "newMessage", "newNotification", "ticket")
# The admin's live page shows every tenant's payloads: being staff is not enough, the operator
# must hold the permission the admin's own Event pages ask for.
LIVE_FEED_PERMISSION = "events.view_event"
REPLAY_PAGE_SIZE = 200
# A connection whose process missed this many heartbeats in a row is presumed dead: one late
# heartbeat (a slow database, a busy event loop) must not end a live stream's session.
HEARTBEATS_MISSED = 3


# A ULID in Crockford base32; the first character is at most 7 (48-bit time). Only an id of
# this form can name an event: any other Last-Event-ID is a position the hub does not know.
EVENT_ID_RE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


def bus_channel() -> str:
    """The Redis pub/sub channel of this deployment's streams (prefixed: never shared)."""
    return redis_key("streams", "bus")


def event_id_well_formed(value: str) -> bool:
    """Whether `value` has the form of an event id (a ULID, in upper case)."""
    return EVENT_ID_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class StreamPrincipal:
    """Who a stream listens as, and what would log it out (a token, or a browser session)."""

    kind: str
    name: str
    user_id: int | None
    application_id: int | None
    token_id: int | None = None
    session_key: str | None = None
    # When the token expires (a POSIX timestamp): its streams end then with `loggedOut`.
    expires_at: float | None = None


# --- Principals and their accounts (reads) ---


def principal_for_token(*, token: TokenInfo) -> StreamPrincipal | None:
    """A user token listens as its user; an application token as its client id."""
    if token.user_id is not None:
        username = (
            get_user_model()
            .objects.filter(pk=token.user_id, is_active=True)
            .values_list("username", flat=True)
            .first()
        )
        if username is None:
            return None
        return StreamPrincipal(
            kind=StreamSession.PrincipalKind.USER,
            name=username,
            user_id=token.user_id,
            application_id=None,
            token_id=token.token_id,
            expires_at=token.expires.timestamp(),
        )
    return StreamPrincipal(
        kind=StreamSession.PrincipalKind.CLIENT,
        name=token.client_id,
        user_id=None,
        application_id=token.application_id,
        token_id=token.token_id,
        expires_at=token.expires.timestamp(),
    )


def principal_for_user(*, user: Any, session: SessionBase | None) -> StreamPrincipal:
    """A logged-in browser session listens as its user, until the session expires (None: a
    user acting with no session, such as the hub's own code)."""
    return StreamPrincipal(
        kind=StreamSession.PrincipalKind.USER,
        name=user.get_username(),
        user_id=user.pk,
        application_id=None,
        session_key=session.session_key if session is not None else None,
        expires_at=session_expires_at(session=session) if session is not None else None,
    )


def session_expires_at(*, session: SessionBase) -> float:
    """When a browser session ends (a POSIX timestamp): the expiry its store holds, which is
    when the session stops authenticating. `get_expiry_date()` alone counts the cookie age from
    now, later than the stored date of a session last saved a while ago; a database-backed
    store is asked for its row instead."""
    model = getattr(session, "model", None)
    if model is not None and session.session_key:
        stored = (
            model.objects.filter(session_key=session.session_key)
            .values_list("expire_date", flat=True)
            .first()
        )
        if stored is not None:
            return float(stored.timestamp())
    return float(session.get_expiry_date().timestamp())


def _memberships(*, user_id: int | None, application_id: int | None) -> QuerySet[AccountMember]:
    """A principal's account memberships: a user's, or an application's acting as itself."""
    if user_id is not None:
        return AccountMember.objects.filter(user_id=user_id)
    if application_id is None:  # a principal is one or the other; neither belongs anywhere
        return AccountMember.objects.none()
    return AccountMember.objects.filter(user__isnull=True, application_id=application_id)


def member_account_ids(*, user_id: int | None, application_id: int | None) -> frozenset[str]:
    """Every account the principal is a member of (the accounts it may watch)."""
    memberships = _memberships(user_id=user_id, application_id=application_id)
    return frozenset(memberships.values_list("account_id", flat=True))


def browser_session_expires_at(*, session_key: str) -> float | None:
    """When a browser session ends, as its store holds it now (a POSIX timestamp); None if it
    has ended (logged out, expired, deleted)."""
    store: SessionBase = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if not store.exists(session_key):
        return None
    expires_at = session_expires_at(session=store)
    return expires_at if expires_at > time.time() else None


@dataclass(frozen=True, slots=True)
class EventRoute:
    """What the rule below reads of an event: its type and routing attributes."""

    type_id: str
    user_id: str | None
    account_id: str | None
    ticket_number: str | None

    def to_message(self) -> JSONDict:
        """As the bus carries it (`EventRoute(**data)` reads it back); asdict() deep-copies."""
        return {
            "type_id": self.type_id,
            "user_id": self.user_id,
            "account_id": self.account_id,
            "ticket_number": self.ticket_number,
        }


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """What one stream receives, kept in memory by the process holding the stream: the live
    side of the rule whose replay side is `stream_session_events` (tests/streams/
    test_replay_rule.py checks that both agree). Matching in memory, when the bus delivers the
    event, is what lets routing skip the database for streams altogether."""

    principal: str
    user_id: int | None
    application_id: int | None
    kinds: frozenset[str]
    account_ids: frozenset[str]  # accountIds: the accounts whose `accountStatus` it wants
    ticket_number: str
    member_of: frozenset[str]  # the principal's accounts (refreshed when membership changes)

    def matches(self, event: EventRoute) -> bool:
        if event.type_id not in self.kinds:
            return False
        if event.user_id != self.principal and event.account_id not in self.member_of:
            return False
        if event.type_id == "accountStatus" and event.account_id not in self.account_ids:
            return False
        return not (
            event.type_id == "ticket"
            and self.ticket_number
            and event.ticket_number != self.ticket_number
        )


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


# --- Opening, replaying and closing a stream ---


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
    # No Last-Event-ID: the position is the previous connection's, which a connection being
    # taken over records only as it closes, so the new one waits for it (not when the previous
    # connection's process has gone silent: it is dead and will record nothing).
    position_from_session: bool = False


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
    the database (every process's streams). A connection to a session it already has (a
    reconnect, a takeover of the same clientId) adds no session, and replaces, not adds, an
    open stream: it is never counted twice."""
    retention = max(
        settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW, settings.NOTIFYHUB_STREAM_SESSION_RETENTION
    )
    # Sessions past their retention are forgotten by the trim task: they no longer count.
    kept = StreamSession.objects.filter(
        principal_kind=principal.kind, principal=principal.name
    ).exclude(disconnected_at__lt=now - retention)
    new_session = not kept.filter(client_id=client_id).exists()
    if new_session and kept.count() >= settings.NOTIFYHUB_STREAM_MAX_SESSIONS_PER_PRINCIPAL:
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
    open_elsewhere = kept.exclude(client_id=client_id).filter(stream_sessions_live_filter(now))
    if open_elsewhere.count() >= settings.NOTIFYHUB_STREAM_MAX_PER_PRINCIPAL:
        raise errors.Throttled(
            "Too many open streams for this principal: at most "
            f"{settings.NOTIFYHUB_STREAM_MAX_PER_PRINCIPAL}.",
            retry_after=_stream_slot_wait(),
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
) -> StreamOpened:
    """Attach a new connection to the principal's session for `client_id` (creating it) and
    decide where its stream resumes: after `last_event_id`, else after the session's position
    (the last event its previous connection was sent); a new session starts at the newest
    event, and one past the reconnect window, or resumed from an id the hub no longer keeps
    for it, starts there too and is told so (`reset`)."""
    _principal_opens_serialize(principal)
    now = timezone.now()
    _stream_caps_check(principal=principal, client_id=client_id, now=now)
    cutoff = now - settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW
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
    if new or reset or not replay_after:
        # Start fresh, at the newest event: nothing older is meant for this stream.
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
        position_from_session=last_event_id is None and not reset and not holder_dead,
    )


class StreamEvent(TypedDict):
    """An event as the stream bus carries it and the replay reads it: the producer's payload,
    untouched, beside the hub's metadata (which a Push API frame puts in its `id:` and `event:`
    fields, never in its `data:`)."""

    id: str
    type: str
    created_at: str  # notifyhub.formats.iso_utc
    payload: JSONDict


def stream_event_of(event: Event) -> StreamEvent:
    return {
        "id": event.id,
        "type": event.type_id,
        "created_at": iso_utc(event.created_at),
        "payload": event.payload,
    }


def event_frame(kind: str, data: Any, event_id: str | None = None) -> str:
    """One server-sent event frame (django-eventstream's encoder: it strips CR/LF from the
    event name and id and splits multi-line data)."""
    return sse_encode_event(kind, data, event_id=event_id, json_encode=True)


def stream_event_frame(event: StreamEvent) -> str:
    """A Push API frame: `id:` the event's id, `event:` its kind, `data:` the producer's
    payload exactly as posted (its own `id`, `type` or `created_at` members included)."""
    return event_frame(event["type"], event["payload"], event["id"])


def admin_feed_frame(event: StreamEvent) -> str:
    """The admin's live page frame: unnamed (`message`), every event with its metadata."""
    return event_frame("message", event, event["id"])


def stream_session_events(
    session: StreamSession, *, after: str, since: datetime
) -> "QuerySet[Event]":
    """The events a session is owed after `after`, created since `since`, oldest first (ULIDs
    sort by time): its kinds, its principal's (the payload's user_id names it, or its
    account_id is one the principal is a member of), narrowed by its accountIds for
    `accountStatus` and its ticket number for `ticket`.

    The same rule as `StreamFilter.matches`, read the other way (streams for an event there,
    events for a session here); tests/streams/test_replay_rule.py checks they agree.
    """
    kinds = set(session.kinds)
    wanted = Q(type_id__in=sorted(kinds - {"accountStatus", "ticket"}))
    if "accountStatus" in kinds and session.account_ids:
        wanted |= Q(type_id="accountStatus", account_id__in=session.account_ids)
    if "ticket" in kinds:
        wanted |= (
            Q(type_id="ticket", ticket_number=session.ticket_number)
            if (session.ticket_number)
            else Q(type_id="ticket")
        )
    members = _memberships(
        user_id=session.principal_user_id, application_id=session.principal_application_id
    )
    belongs = Q(user_id=session.principal) | Q(account_id__in=members.values("account_id"))
    return Event.objects.filter(wanted, belongs, id__gt=after, created_at__gte=since).order_by("id")


def stream_replay_page(
    *, session_id: int, after: str, limit: int = REPLAY_PAGE_SIZE
) -> list[StreamEvent]:
    """The session's events after `after` still within the reconnect window, oldest first."""
    session = StreamSession.objects.filter(pk=session_id).first()
    if session is None:
        return []
    since = timezone.now() - settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW
    events = stream_session_events(session, after=after, since=since)[:limit]
    return [stream_event_of(event) for event in events]


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


def stream_session_position(*, session_id: int) -> str:
    """The last event id recorded as sent for the session ("" if none)."""
    return (
        StreamSession.objects.filter(pk=session_id)
        .values_list("last_sent_event_id", flat=True)
        .first()
        or ""
    )


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


# --- Routing (the delivery channel) ---


def bus_publish(message: JSONDict) -> None:
    """Publish one message to every web process's streams."""
    try:
        redis_publish(bus_channel(), json.dumps(message, separators=(",", ":")))
    except Exception:
        # The event log still holds the event: a stream's reconnect replays it from there.
        logger.exception("stream bus publish failed")


def event_route_of(event: Event) -> EventRoute:
    return EventRoute(
        type_id=event.type_id,
        user_id=event.user_id,
        account_id=event.account_id,
        ticket_number=event.ticket_number,
    )


class StreamChannel:
    """After commit, publishes each event once on the bus; every web process hands it to the
    streams it holds whose filters match (and to the admin's live page). Routing reads and
    writes nothing for streams: the event row is the replay, and the match runs in memory."""

    name = "stream"

    def routing_statement(self, *, event: Event, connection: BaseDatabaseWrapper) -> None:
        return None

    def routed(self, *, event: Event, row_ids: list[Any]) -> None:
        message = {
            "t": "event",
            "route": event_route_of(event).to_message(),
            "event": stream_event_of(event),
        }
        transaction.on_commit(lambda: bus_publish(message), robust=True)


# --- Closing streams: logout, takeover ---


def stream_logout_publish(
    *, token_id: int | None = None, session_key: str | None = None, user_id: int | None = None
) -> None:
    """Tell every process to send `loggedOut` to, and close, the streams of a token, a browser
    session, or (deactivated) a user, whatever credential they were opened with."""
    bus_publish(
        {"t": "logout", "token_id": token_id, "session_key": session_key, "user_id": user_id}
    )


def revoked_token_logout(sender: type, instance: Any, **kwargs: Any) -> None:
    """post_delete receiver for AccessToken: DOT revokes by deleting, so its tickets and streams
    end."""
    token_id = instance.pk

    def end() -> None:
        stream_tickets_revoke(token_id=token_id)
        stream_logout_publish(token_id=token_id)

    transaction.on_commit(end, robust=True)


def deactivated_user_logout(sender: type, instance: Any, **kwargs: Any) -> None:
    """post_save receiver for the user model: a deactivated user's streams end at once, in
    every process, whether opened with a token, a ticket or a browser session (the token
    cache forgets the user's tokens in notifyhub.auth). Published on every save of an inactive
    user: one bus message, and a repeat ends nothing that is not already ended."""
    if instance.is_active:
        return
    user_id = instance.pk
    transaction.on_commit(lambda: stream_logout_publish(user_id=user_id), robust=True)


def account_membership_changed(sender: type, instance: AccountMember, **kwargs: Any) -> None:
    """post_save/post_delete receiver for AccountMember: the processes holding the principal's
    streams reload its accounts, so a member removed from an account stops receiving its
    events at once, and one added starts."""
    message = {
        "t": "members",
        "user_id": instance.user_id,
        "application_id": instance.application_id,
    }
    transaction.on_commit(lambda: bus_publish(message), robust=True)


def session_logout(sender: type, request: Any, user: Any, **kwargs: Any) -> None:
    """user_logged_out receiver: the browser session's tickets and streams end with it."""
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if session_key:
        stream_tickets_revoke(session_key=session_key)
        stream_logout_publish(session_key=session_key)


# --- Tickets: what a browser's EventSource URL carries instead of a bearer token ---
#
# A ticket names its principal and never outlives the credential it was made from (the token's
# expiry, the browser session's). Unused, it lives at most NOTIFYHUB_STREAM_TICKET_TTL; its first
# subscribe binds it to that request's clientId, and from then on it opens that one session's
# stream, as often as the browser reconnects (EventSource reuses its URL, so a single-use ticket
# would end the stream at the first restart), and refuses every other clientId. Revoking the
# token or logging the session out deletes its tickets at once: each credential keeps the set of
# its tickets, and each redemption checks in the database that the credential still stands.

# What token_urlsafe(32) makes (43 characters of URL-safe base64), with room to spare: anything
# else is no ticket, and is refused without a Redis round trip.
TICKET_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Atomic, so two connections racing to be a ticket's first cannot both bind it.
# KEYS[1]: the ticket's hash. ARGV[1]: the clientId ("": only tell whether the ticket stands).
_REDEEM_LUA = """
local principal = redis.call('HGET', KEYS[1], 'principal')
if not principal or ARGV[1] == '' then
  return principal
end
local bound = redis.call('HGET', KEYS[1], 'client_id')
if not bound then
  redis.call('HSET', KEYS[1], 'client_id', ARGV[1])
  redis.call('EXPIREAT', KEYS[1], redis.call('HGET', KEYS[1], 'valid_until'))
  return principal
end
if bound == ARGV[1] then
  return principal
end
return false
"""

# Atomic, so no ticket is listed but left undeleted. One made after the revocation read the set
# is refused at redemption, by the database check of its credential.
# KEYS[1]: the credential's set of tickets. ARGV[1]: the prefix of a ticket's key.
_REVOKE_LUA = """
local tickets = redis.call('SMEMBERS', KEYS[1])
for _, ticket in ipairs(tickets) do
  redis.call('DEL', ARGV[1] .. ticket)
end
redis.call('DEL', KEYS[1])
return #tickets
"""


def _ticket_key(ticket: str) -> str:
    return redis_key("streams", "ticket", ticket)


def _credential_tickets_key(*, token_id: int | None, session_key: str | None) -> str:
    if token_id is not None:
        return redis_key("streams", "tickets", "token", str(token_id))
    return redis_key("streams", "tickets", "session", session_key or "")


@dataclass(frozen=True, slots=True)
class StreamTicketIssued:
    """A ticket just made, as POST /api/push/tickets answers it."""

    ticket: str
    # Seconds left to use it for the first time.
    expires_in: int


def stream_ticket_create(*, principal: StreamPrincipal, valid_until: float) -> StreamTicketIssued:
    """A ticket that opens `principal`'s stream for the first clientId it is used with, first
    used within NOTIFYHUB_STREAM_TICKET_TTL, and usable until `valid_until` (a POSIX time: the
    end of the token or browser session it is made from), never later."""
    now = time.time()
    # Whole seconds, rounded down: the ticket may end a little early, never late.
    end = int(valid_until)
    first_use_by = min(int(now) + settings.NOTIFYHUB_STREAM_TICKET_TTL, end)
    ticket = secrets.token_urlsafe(32)
    key = _ticket_key(ticket)
    credential = _credential_tickets_key(
        token_id=principal.token_id, session_key=principal.session_key
    )
    pipe = redis_client().pipeline()
    pipe.hset(key, mapping={"principal": json.dumps(asdict(principal)), "valid_until": end})
    pipe.expireat(key, first_use_by)
    pipe.sadd(credential, ticket)
    # Every ticket of a credential ends with it, so its set may end then too.
    pipe.expireat(credential, end)
    pipe.execute()
    return StreamTicketIssued(ticket=ticket, expires_in=max(0, first_use_by - int(now)))


def stream_ticket_redeem(*, ticket: str, client_id: str | None) -> StreamPrincipal | None:
    """The principal a ticket opens a stream as, binding the ticket to `client_id` if this is
    its first use; None if it is unknown, expired, revoked or bound to another clientId. With
    `client_id` None (a request refused for its parameters anyway) nothing is bound."""
    if not TICKET_RE.fullmatch(ticket):
        return None
    client = redis_client()
    raw = client.eval(_REDEEM_LUA, 1, _ticket_key(ticket), client_id or "")
    if not raw:
        return None
    return StreamPrincipal(**json.loads(raw))


def stream_tickets_revoke(*, token_id: int | None = None, session_key: str | None = None) -> int:
    """Delete every ticket made from a token or a browser session; returns how many."""
    if token_id is None and not session_key:
        return 0
    credential = _credential_tickets_key(token_id=token_id, session_key=session_key)
    try:
        return int(redis_client().eval(_REVOKE_LUA, 1, credential, _ticket_key("")))
    except Exception:
        # Not fatal: every redemption also checks the credential in the database.
        logger.exception("could not delete the stream tickets of a revoked credential")
        return 0


def stream_principal_active(*, principal: StreamPrincipal) -> bool:
    """Whether the credential behind a ticket still stands: its token neither revoked nor
    expired, its browser session not logged out, its user active. Deleting tickets on
    revocation makes them unusable at once; this makes a revocation whose Redis half failed,
    or a deactivated user, count too."""
    users = get_user_model().objects.filter(is_active=True)
    if principal.user_id is not None and not users.filter(pk=principal.user_id).exists():
        return False
    if principal.token_id is not None:
        tokens = get_access_token_model().objects.filter(
            pk=principal.token_id, expires__gt=timezone.now()
        )
        return tokens.exists()
    if principal.session_key:
        store: SessionBase = import_module(settings.SESSION_ENGINE).SessionStore()
        return bool(store.exists(principal.session_key))
    return False
