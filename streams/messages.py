"""The stream bus: the messages every web process's hub receives, declared once.

The bus is one Redis pub/sub channel per deployment. Each message is a JSON object whose `t`
names its kind; it is built by a function below, sent by `bus_publish` (or `StreamHub.publish`
from a request), and read back only by `bus_message_parse`, so the hub dispatches on a typed
message and no other module knows the keys.
"""

import json
import logging
from typing import Literal, TypedDict, cast, get_type_hints

from events.models import Event
from notifyhub.formats import iso_utc
from notifyhub.redis import redis_key, redis_publish
from notifyhub.types import JSONDict

logger = logging.getLogger(__name__)


class EventRoute(TypedDict):
    """What the stream rule reads of an event: its type and routing attributes."""

    type_id: str
    user_id: str | None
    account_id: str | None
    ticket_number: str | None


class StreamEvent(TypedDict):
    """An event as the bus carries it and the replay reads it: the producer's payload,
    untouched, beside the hub's metadata (which a Push API frame puts in its `id:` and `event:`
    fields, never in its `data:`)."""

    id: str
    type: str
    created_at: str  # notifyhub.formats.iso_utc
    payload: JSONDict


class EventMessage(TypedDict):
    """An event was ingested: streams whose filters match its route receive it."""

    t: Literal["event"]
    route: EventRoute
    event: StreamEvent


class TakeoverMessage(TypedDict):
    """A new connection holds the session: every other connection of it closes."""

    t: Literal["takeover"]
    session: int
    connection: str


class ReleasedMessage(TypedDict):
    """A connection that was taken over has recorded its position: the new one may replay."""

    t: Literal["released"]
    session: int


class MembersMessage(TypedDict):
    """A principal's account memberships changed: its open streams reload them."""

    t: Literal["members"]
    user_id: int | None
    application_id: int | None


class LogoutMessage(TypedDict):
    """A credential ended: the streams opened with it get `loggedOut` and close. One of the
    three is set: a revoked token, a logged-out browser session, a deactivated user."""

    t: Literal["logout"]
    token_id: int | None
    session_key: str | None
    user_id: int | None


BusMessage = EventMessage | TakeoverMessage | ReleasedMessage | MembersMessage | LogoutMessage

# Every key of each kind (all are required), by its `t`.
_KEYS: dict[str, frozenset[str]] = {
    get_type_hints(kind)["t"].__args__[0]: frozenset(get_type_hints(kind))
    for kind in (EventMessage, TakeoverMessage, ReleasedMessage, MembersMessage, LogoutMessage)
}


def bus_channel() -> str:
    """The Redis pub/sub channel of this deployment's streams (prefixed: never shared)."""
    return redis_key("streams", "bus")


# --- Building ---


def stream_event_of(event: Event) -> StreamEvent:
    return {
        "id": event.id,
        "type": event.type_id,
        "created_at": iso_utc(event.created_at),
        "payload": event.payload,
    }


def event_route_of(event: Event) -> EventRoute:
    return {
        "type_id": event.type_id,
        "user_id": event.user_id,
        "account_id": event.account_id,
        "ticket_number": event.ticket_number,
    }


def event_message(event: Event) -> EventMessage:
    return {"t": "event", "route": event_route_of(event), "event": stream_event_of(event)}


def takeover_message(*, session_id: int, connection_id: str) -> TakeoverMessage:
    return {"t": "takeover", "session": session_id, "connection": connection_id}


def released_message(*, session_id: int) -> ReleasedMessage:
    return {"t": "released", "session": session_id}


def members_message(*, user_id: int | None, application_id: int | None) -> MembersMessage:
    return {"t": "members", "user_id": user_id, "application_id": application_id}


def logout_message(
    *, token_id: int | None = None, session_key: str | None = None, user_id: int | None = None
) -> LogoutMessage:
    return {"t": "logout", "token_id": token_id, "session_key": session_key, "user_id": user_id}


# --- Sending and reading ---


def bus_encode(message: BusMessage) -> str:
    return json.dumps(message, separators=(",", ":"))


def bus_publish(message: BusMessage) -> None:
    """Publish one message to every web process's streams (never raises)."""
    try:
        redis_publish(bus_channel(), bus_encode(message))
    except Exception:
        # For an event, the event log still holds it: a stream's reconnect replays it.
        logger.exception("stream bus publish failed (%s)", message["t"])


def bus_message_parse(raw: bytes | str) -> BusMessage | None:
    """The message `raw` carries, or None (logged) if it is not one of the bus's kinds with
    every key that kind requires."""
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    keys = _KEYS.get(str(data.get("t"))) if isinstance(data, dict) else None
    if keys is None or not keys <= data.keys():
        logger.warning("ignored a malformed stream bus message: %.200r", raw)
        return None
    return cast(BusMessage, data)
