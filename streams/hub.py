"""The stream hub of one web process: one Redis subscription fanning messages out to the
streams this process holds, indexed by stream session.

Each stream is an asyncio queue, not a thread: an idle stream costs a queue and a coroutine.
The hub also sends the process's heartbeat: one UPDATE marking every session it holds as seen,
so a session whose process is killed outright is known to be disconnected.
"""

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from notifyhub import metrics
from notifyhub.metrics import seconds_since
from notifyhub.redis import redis_client
from notifyhub.selectors import member_account_ids
from streams.frames import admin_feed_frame, stream_event_frame
from streams.messages import (
    BusMessage,
    EventRoute,
    bus_channel,
    bus_encode,
    bus_message_parse,
)
from streams.principals import browser_session_expires_at
from streams.rules import StreamFilter
from streams.services import stream_sessions_heartbeat

logger = logging.getLogger(__name__)

# A stream further behind than this is closed rather than allowed to grow without bound; its
# client reconnects and replays what it missed from the event log, so nothing is lost.
QUEUE_LIMIT = 1000

# A stream principal as its memberships know it: (user id, application id).
PrincipalKey = tuple[int | None, int | None]


@dataclass(eq=False, slots=True)
class StreamConnection:
    """One open stream in this process: its session (None for the admin feed) and its inbox.

    The inbox is a deque plus a future made only while the stream waits, lighter than an
    asyncio.Queue: an idle stream's footprint is what limits how many one process holds.
    """

    session_id: int | None
    connection_id: uuid.UUID
    # What it receives (None: the admin's feed, which receives everything).
    filter: StreamFilter | None = None
    token_id: int | None = None
    session_key: str | None = None
    # The user it listens as (a stream's or the admin feed's): deactivating the user ends it.
    user_id: int | None = None
    expires_at: float | None = None
    # Set only while this connection waits for the one it took over to record its position.
    released: asyncio.Event | None = None
    items: deque[tuple[str, Any]] = field(default_factory=deque)
    # Bytes of the frames in `items`: with what the server holds unsent, bounded by
    # NOTIFYHUB_STREAM_MAX_UNSENT_BYTES (a stream waiting for a slow client fills its inbox).
    queued_bytes: int = 0
    waiter: asyncio.Future[None] | None = None
    expiry: asyncio.TimerHandle | None = None
    # How many membership changes of its principal this process had seen when the stream's
    # filter was made (`StreamHub.members_known`): one more since, and the filter is re-read.
    members_changes: int = 0

    def offer(self, item: tuple[str, Any]) -> None:
        size = len(item[1][1]) if item[0] == "event" else 0
        if (
            len(self.items) >= QUEUE_LIMIT
            or self.queued_bytes + size > settings.NOTIFYHUB_STREAM_MAX_UNSENT_BYTES
        ):
            self.items.clear()
            self.queued_bytes = 0
            self.items.append(("close", "overflow"))
        else:
            self.items.append(item)
            self.queued_bytes += size
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next(self) -> tuple[str, Any]:
        """The next item; keep-alives and token expiry arrive as items too, so a wait needs no
        timer of its own (one per wake was a tenth of a fan-out's time)."""
        if not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        item = self.items.popleft()
        if item[0] == "event":
            self.queued_bytes -= len(item[1][1])
        return item


KEEP_ALIVE_ITEM = ("keepalive", None)


class StreamHub:
    """Holds this process's streams and its one subscription to the deployment's bus."""

    def __init__(self) -> None:
        self._by_session: dict[int, set[StreamConnection]] = {}
        # Candidates for an event: the streams of the principal its user_id names, and of the
        # principals that are members of its account; each is then checked against its filter.
        self._by_principal: dict[str, set[StreamConnection]] = {}
        self._by_account: dict[str, set[StreamConnection]] = {}
        self._feeds: set[StreamConnection] = set()
        self._all: set[StreamConnection] = set()
        # The account memberships of the principals whose streams this process holds, kept
        # current by the bus's `members` messages, and how many such messages each principal
        # has had: a stream opening here for a principal it already holds takes them from here
        # instead of the database (a reconnect storm opens many of one principal's streams).
        # Read from the stream database threads: plain dict reads and writes, atomic.
        self._members: dict[PrincipalKey, frozenset[str]] = {}
        self._members_changes: dict[PrincipalKey, int] = {}
        self._by_owner: dict[PrincipalKey, set[StreamConnection]] = {}
        self._task: asyncio.Task[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._keepalive_task: asyncio.Task[None] | None = None
        self._reloads: set[asyncio.Task[None]] = set()
        self._ready = asyncio.Event()
        self._client: aioredis.Redis | None = None

    def members_known(self, key: PrincipalKey) -> tuple[int, frozenset[str] | None]:
        """How many membership changes of the principal (user id, application id) this process
        has seen, and its memberships if a stream held here knows them current (None: read
        them). Safe to call from any thread."""
        changes = self._members_changes.get(key, 0)
        return changes, self._members.get(key)

    @property
    def connection_count(self) -> int:
        return len(self._all)

    def client(self) -> aioredis.Redis:
        """This process's asyncio Redis client, for the bus listener on the server's loop."""
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=2, health_check_interval=30
            )
        return self._client

    async def attach(self, connection: StreamConnection) -> None:
        """Start delivering to `connection`; returns once the bus subscription is live, so any
        event committed after this is either delivered here or read by the replay."""
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.get_running_loop().create_task(self._listen())
        loop = asyncio.get_running_loop()
        if self._heartbeat_task is None or self._heartbeat_task.done():
            self._heartbeat_task = loop.create_task(self._heartbeat())
        if self._keepalive_task is None or self._keepalive_task.done():
            self._keepalive_task = loop.create_task(self._keepalive())
        if connection.expires_at is not None:
            # One timer for the connection's life: its token's (or browser session's) expiry
            # ends the stream.
            left = connection.expires_at - time.time()
            connection.expiry = loop.call_later(max(0.0, left), self._expired, connection)
        self._all.add(connection)
        metrics.streams_open.inc()
        if connection.session_id is None:
            self._feeds.add(connection)
        else:
            self._by_session.setdefault(connection.session_id, set()).add(connection)
        self._index(connection)
        if connection.filter is not None:
            key = _owner(connection.filter)
            if self._members_changes.get(key, 0) != connection.members_changes:
                # Its memberships changed while the stream was opening: read them again.
                self._members.pop(key, None)
                self._spawn_reload(key)
        await self._ready.wait()

    def _expired(self, connection: StreamConnection) -> None:
        """The credential's expiry came: a token's is final; a browser session's may have been
        extended since the stream opened (the user kept using the site), so it is read again
        and the stream ends only if the session has really ended."""
        if connection.token_id is not None or not connection.session_key:
            connection.offer(("logout", "token_expired"))
            return
        task = asyncio.get_running_loop().create_task(self._session_expiry(connection))
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _session_expiry(self, connection: StreamConnection) -> None:
        try:
            expires_at = await sync_to_async(_session_expiry_burst, thread_sensitive=False)(
                session_key=connection.session_key or ""
            )
        except Exception:
            # Unknown: close without a verdict; the client reconnects and is checked afresh.
            logger.exception("could not read a browser session's expiry; closing its stream")
            connection.offer(("close", "resync"))
            return
        if connection not in self._all:
            return
        left = expires_at - time.time() if expires_at is not None else 0.0
        if left > 0:
            connection.expiry = asyncio.get_running_loop().call_later(
                left, self._expired, connection
            )
        else:
            connection.offer(("logout", "session_expired"))

    def detach(self, connection: StreamConnection) -> None:
        if connection.expiry is not None:
            connection.expiry.cancel()
        if connection in self._all:
            metrics.streams_open.dec()
        self._all.discard(connection)
        self._feeds.discard(connection)
        if connection.session_id is not None:
            _unindex(self._by_session, connection.session_id, connection)
        self._unindex(connection)

    def _index(self, connection: StreamConnection) -> None:
        if connection.filter is None:
            return
        self._by_principal.setdefault(connection.filter.principal, set()).add(connection)
        for account_id in connection.filter.member_of:
            self._by_account.setdefault(account_id, set()).add(connection)
        key = _owner(connection.filter)
        self._by_owner.setdefault(key, set()).add(connection)
        if self._members_changes.get(key, 0) == connection.members_changes:
            self._members[key] = connection.filter.member_of

    def _unindex(self, connection: StreamConnection) -> None:
        if connection.filter is None:
            return
        _unindex(self._by_principal, connection.filter.principal, connection)
        for account_id in connection.filter.member_of:
            _unindex(self._by_account, account_id, connection)
        key = _owner(connection.filter)
        _unindex(self._by_owner, key, connection)
        if key not in self._by_owner:
            self._members.pop(key, None)

    def _targets(self, route: EventRoute) -> list[StreamConnection]:
        candidates = set(self._by_principal.get(route["user_id"] or "", ()))
        if route["account_id"]:
            candidates |= self._by_account.get(route["account_id"], set())
        return [c for c in candidates if c.filter is not None and c.filter.matches(route)]

    def _spawn_reload(self, key: PrincipalKey) -> None:
        task = asyncio.get_running_loop().create_task(self._reload_members(*key))
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def _reload_members(self, user_id: int | None, application_id: int | None) -> None:
        """A principal's account memberships changed: re-read them for its open streams."""
        key = (user_id, application_id)
        mine = list(self._by_owner.get(key, ()))
        if not mine:
            return
        changes = self._members_changes.get(key, 0)
        try:
            member_of = await sync_to_async(_members_burst, thread_sensitive=False)(
                user_id=user_id, application_id=application_id
            )
        except Exception:
            # Its streams would go on matching stale accounts: close them; they reconnect.
            logger.exception("could not reload account memberships; closing the streams")
            for connection in mine:
                connection.offer(("close", "resync"))
            return
        for connection in mine:
            if connection in self._all and connection.filter is not None:
                self._unindex(connection)
                connection.filter = replace(connection.filter, member_of=member_of)
                connection.members_changes = changes
                self._index(connection)

    async def publish(self, message: BusMessage) -> None:
        """Publish from a request (takeover, release). Through the process's sync client, which
        is bound to no event loop: in-process callers such as the test client run each request
        on a loop of its own, and an asyncio client's connections cannot move between loops."""
        payload = bus_encode(message)
        await sync_to_async(redis_client().publish, thread_sensitive=False)(bus_channel(), payload)

    async def _listen(self) -> None:
        while True:
            try:
                pubsub = self.client().pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(bus_channel())
                self._ready.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        parsed = bus_message_parse(message["data"])
                        if parsed is not None:
                            self.dispatch(parsed)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("stream bus subscription lost; closing streams to resync")
                # Messages published while we were away are lost to the live streams, but
                # not to their sessions: closed streams reconnect and replay the log.
                for connection in list(self._all):
                    connection.offer(("close", "resync"))
                await asyncio.sleep(1)

    async def _keepalive(self) -> None:
        """Every NOTIFYHUB_STREAM_KEEPALIVE seconds, a keep-alive comment on every stream (busy
        or not): one timer for the process instead of one per stream and wait."""
        while True:
            await asyncio.sleep(settings.NOTIFYHUB_STREAM_KEEPALIVE)
            for connection in list(self._all):
                connection.offer(KEEP_ALIVE_ITEM)

    async def _heartbeat(self) -> None:
        """Every NOTIFYHUB_STREAM_HEARTBEAT seconds, mark the sessions this process holds as
        seen (one short database burst for all of them, never one per stream), and close the
        streams that no longer hold their session: their clients reconnect and are told the
        truth about their position."""
        while True:
            await asyncio.sleep(settings.NOTIFYHUB_STREAM_HEARTBEAT)
            held = {
                connection.connection_id: connection
                for connection in self._all
                if connection.session_id is not None
            }
            if not held:
                continue
            try:
                lost = await sync_to_async(_heartbeat_burst, thread_sensitive=False)(
                    connection_ids=list(held)
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                # A missed heartbeat is tolerated (HEARTBEATS_MISSED); the next one may land.
                logger.exception("stream heartbeat failed")
                continue
            for connection_id in lost:
                connection = held[connection_id]
                if connection in self._all:
                    connection.offer(("close", "lost"))

    def dispatch(self, message: BusMessage) -> None:
        """Hand one bus message to the streams it concerns (never raises)."""
        try:
            if message["t"] == "event":
                event = message["event"]
                targets = self._targets(message["route"])
                # Encoded once per process, to bytes, not once per stream: fan-out to a thousand
                # streams then costs a thousand queue puts and socket writes, not a thousand
                # dumps() and encode()s.
                if targets:
                    item = ("event", (event["id"], stream_event_frame(event).encode()))
                    for connection in targets:
                        connection.offer(item)
                if self._feeds:
                    item = ("event", (event["id"], admin_feed_frame(event).encode()))
                    for feed in self._feeds:
                        feed.offer(item)
                if targets or self._feeds:
                    created_at = datetime.fromisoformat(event["created_at"])
                    metrics.stream_fanout_seconds.observe(seconds_since(created_at))
            elif message["t"] == "takeover":
                for connection in self._by_session.get(message["session"], ()):
                    if str(connection.connection_id) != message["connection"]:
                        connection.offer(("close", "takeover"))
            elif message["t"] == "released":
                for connection in self._by_session.get(message["session"], ()):
                    if connection.released is not None:
                        connection.released.set()
            elif message["t"] == "members":
                key = (message["user_id"], message["application_id"])
                # From now on, an opening stream of the principal reads them from the database.
                self._members_changes[key] = self._members_changes.get(key, 0) + 1
                self._members.pop(key, None)
                self._spawn_reload(key)
            elif message["t"] == "logout":
                self._logout(message["token_id"], message["session_key"], message["user_id"])
        except Exception:
            logger.exception("could not dispatch a stream bus message: %r", message)

    def _logout(self, token_id: int | None, session_key: str | None, user_id: int | None) -> None:
        if token_id is not None:
            reason = "token_revoked"
        elif user_id is not None:
            reason = "user_deactivated"
        else:
            reason = "logout"
        for connection in self._all:
            if (
                (token_id is not None and connection.token_id == token_id)
                or (session_key and connection.session_key == session_key)
                or (user_id is not None and connection.user_id == user_id)
            ):
                connection.offer(("logout", reason))


def _owner(filter: StreamFilter) -> PrincipalKey:
    return (filter.user_id, filter.application_id)


def _unindex(
    index: dict[Any, set[StreamConnection]], key: Any, connection: StreamConnection
) -> None:
    peers = index.get(key)
    if peers is not None:
        peers.discard(connection)
        if not peers:
            del index[key]


def _members_burst(*, user_id: int | None, application_id: int | None) -> frozenset[str]:
    try:
        return member_account_ids(user_id=user_id, application_id=application_id)
    finally:
        connections.close_all()


def _session_expiry_burst(*, session_key: str) -> float | None:
    try:
        return browser_session_expires_at(session_key=session_key)
    finally:
        connections.close_all()


def _heartbeat_burst(*, connection_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The heartbeat's database burst: an idle process holds no connection between beats."""
    try:
        return stream_sessions_heartbeat(connection_ids=connection_ids)
    finally:
        connections.close_all()


hub = StreamHub()
