"""The life of one open stream in a web process, from its first frame to its recorded end.

A stream is an async generator of encoded frames: the `retry:` line (or a `reset`), a takeover
of the session's previous connection, the replay from the event log, then what the hub hands it
live, until its client leaves, another connection takes its session over or its credential
ends. Between those steps it holds no thread and no database connection: each read or write is a
short burst on the shared pool, closed afterwards (`db_burst`).
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections
from django.http import HttpRequest, StreamingHttpResponse

from notifyhub.db_threads import db_threads_serving
from streams.frames import (
    KEEP_ALIVE,
    logged_out_frame,
    reset_frame,
    retry_frame,
    stream_event_frame,
)
from streams.hub import StreamConnection, hub
from streams.messages import released_message, takeover_message
from streams.selectors import (
    REPLAY_PAGE_SIZE,
    stream_filter_replay_page,
    stream_session_position,
)
from streams.services import StreamOpened, stream_session_close

logger = logging.getLogger(__name__)


T = TypeVar("T")

TAKEOVER_WAIT = 2.0

# How long after its replay a stream still looks for the replayed events' own copies in its
# inbox (each arrives within moments of its commit; a copy later than this goes out twice).
REPLAY_OVERLAP = 30.0

_background: set[asyncio.Task[Any]] = set()

_REQUEST_HEAVY = (
    "META",
    "headers",
    "GET",
    "POST",
    "COOKIES",
    "FILES",
    "session",
    "user",
    "auser",
    "_messages",
    "resolver_match",
    "_stream",
    "csrf_processing_done",
    "_cached_user",
)


async def db_burst(function: Callable[..., T], /, **kwargs: Any) -> T:
    """Run `function` on a thread of the stream pool and let go of what it used afterwards, so
    an idle stream holds neither a thread nor a database connection between bursts."""
    # A served web process keeps a connection per stream database thread while bursts keep
    # coming (a reconnect storm: one connection per thread, not one per open), closed once
    # idle (notifyhub/asgi.py); elsewhere each burst closes its connection afterwards.
    threads = db_threads_serving("streams")

    def run() -> T:
        try:
            return function(**kwargs)
        finally:
            if threads is None:
                connections.close_all()

    if threads is not None:
        return await threads.run(run)
    return await sync_to_async(run, thread_sensitive=False)()


def release_request_connection() -> None:
    connections.close_all()


def _schedule_task(coroutine: Any) -> None:
    task = asyncio.get_running_loop().create_task(coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _close_session(session_id: int, connection: StreamConnection, last_sent: str) -> None:
    try:
        held = await db_burst(
            stream_session_close,
            session_id=session_id,
            connection_id=connection.connection_id,
            last_sent_event_id=last_sent,
        )
        if not held:
            await hub.publish(released_message(session_id=session_id))
    except Exception:
        logger.exception("could not record the end of stream session %s", session_id)


async def _live(
    connection: StreamConnection, replayed: set[str] | None = None
) -> AsyncIterator[tuple[bytes, str]]:
    """(frame, event id) pairs from the inbox, keep-alives included, until told to close.

    Events come in the order their producers committed, which is not always their ids' order
    (two producers, or two web processes, commit in either order): each is delivered whatever
    its id. Only what the replay already sent is skipped (the inbox fills while the log is
    read), for REPLAY_OVERLAP seconds: a copy on the bus arrives within moments of its commit.
    """
    forget_replayed_at = time.monotonic() + REPLAY_OVERLAP
    while True:
        what, value = await connection.next()
        if what == "event":
            event_id, frame = value
            if replayed:
                if event_id in replayed:
                    replayed.discard(event_id)
                    continue
                if time.monotonic() > forget_replayed_at:
                    replayed.clear()
            yield frame, event_id
        elif what == "keepalive":
            yield KEEP_ALIVE, ""
        elif what == "logout":
            yield logged_out_frame(value), ""
            return
        else:
            return


async def _take_over(connection: StreamConnection, opened: StreamOpened, last_sent: str) -> str:
    """Close the session's other connection; without a Last-Event-ID, wait briefly for it to
    record how far it got, so the replay starts there and repeats nothing."""
    if opened.position_from_session:
        connection.released = asyncio.Event()
    await hub.publish(
        takeover_message(session_id=opened.session_id, connection_id=str(connection.connection_id))
    )
    if connection.released is None:
        return last_sent
    try:
        # A connection in a process that died never answers: then replay from what is known.
        async with asyncio.timeout(TAKEOVER_WAIT):
            await connection.released.wait()
    except TimeoutError:
        logger.info(
            "stream session %s: no answer from the connection taken over", opened.session_id
        )
    finally:
        connection.released = None
    recorded = await db_burst(stream_session_position, session_id=opened.session_id)
    return max(last_sent, recorded)


def _forget_request(request: HttpRequest) -> None:
    """Let go of what the request parsed: Django's handler keeps the request until the stream
    ends, and nothing reads it once the response has started."""
    for name in _REQUEST_HEAVY:
        request.__dict__.pop(name, None)


async def session_stream(
    request: HttpRequest, connection: StreamConnection, opened: StreamOpened
) -> AsyncIterator[bytes]:
    last_sent = opened.replay_after
    # Runs once the middleware has finished with the request and the headers are sent.
    _forget_request(request)
    try:
        if opened.reset:
            # The first frame says the position is lost.
            yield (retry_frame() + reset_frame(oldest_event_id=opened.oldest_event_id)).encode()
        else:
            yield (retry_frame() + "\n").encode()
        await hub.attach(connection)
        if opened.took_over:
            last_sent = await _take_over(connection, opened, last_sent)
        replayed: set[str] = set()
        while True:
            page = await db_burst(stream_filter_replay_page, filter=opened.filter, after=last_sent)
            for event in page:
                last_sent = event["id"]
                replayed.add(last_sent)
                yield stream_event_frame(event).encode()
            if len(page) < REPLAY_PAGE_SIZE:
                break
        async for frame, event_id in _live(connection, replayed):
            # The position recorded at the end: the highest id sent, so a resume without
            # Last-Event-ID repeats nothing (an earlier id may arrive after a later one).
            last_sent = max(last_sent, event_id)
            yield frame
    except Exception:
        # Never let an exception escape once the status is sent: it would end daphne's
        # connection-reaping loop. The client reconnects and resumes from the event log.
        logger.exception("stream of session %s failed", opened.session_id)
    finally:
        hub.detach(connection)
        # Not awaited here: the generator may be closing because its task was cancelled.
        _schedule_task(_close_session(opened.session_id, connection, last_sent))


async def feed_stream(request: HttpRequest, connection: StreamConnection) -> AsyncIterator[bytes]:
    _forget_request(request)
    try:
        yield (retry_frame() + "\n").encode()
        await hub.attach(connection)
        # The hub sends feeds unnamed ("message") frames: the page shows every type.
        async for frame, _ in _live(connection):
            yield frame
    except Exception:
        logger.exception("admin live feed failed")
    finally:
        hub.detach(connection)


class EventStreamResponse(StreamingHttpResponse):
    """A `text/event-stream` response whose body is already encoded frames (one bytes object
    shared by every stream a fan-out reaches). `frames` lets notifyhub.asgi's stream handler
    send them as they come, without Django's per-chunk re-wrapping; any other server (the test
    client) streams it as the StreamingHttpResponse it is."""

    def __init__(self, frames: AsyncIterator[bytes]) -> None:
        super().__init__(frames, content_type="text/event-stream")
        self.frames = frames
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"
