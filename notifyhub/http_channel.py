"""daphne's HTTP connections, with the two limits daphne has no option for.

- **A request head within a deadline.** Twisted's idle timeout (daphne keeps its default, 60 s)
  restarts at every byte received, so a client trickling a header line a byte at a time held
  its connection forever. Here a connection must complete each request head within
  NOTIFYHUB_HTTP_HEAD_TIMEOUT seconds of opening, or of the previous response's end: a
  slow-loris connection, and an idle keep-alive one, is closed then. The deadline stops once
  the head is in, so a long-lived event stream (or a slow body, under Twisted's own idle
  timeout) is never cut by it. daphne's `--http-timeout` is no substitute: it ends every
  response older than its value, event streams included.
- **A stream's unsent bytes, bounded.** daphne hands each ASGI `http.response.body` to
  Twisted, whose transport buffers whatever it is given, and the application's `send()` returns
  at once: a stream client that stops reading kept every frame routed to it in the web
  process's memory. A `text/event-stream` response whose transport holds more than
  NOTIFYHUB_STREAM_MAX_UNSENT_BYTES not yet taken by the kernel is aborted; its client
  reconnects with Last-Event-ID and the replay from the event log sends what it missed.

Both are daphne's seams: its server builds the factory `daphne.server.HTTPFactory` (replaced by
`HubHTTPFactory` in notifyhub/asgi.py, as `WebRequest` is) and the factory builds each
connection's requests from `daphne.http_protocol.WebRequest`.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from daphne import http_protocol
from django.conf import settings
from twisted.internet import reactor
from twisted.internet.base import DelayedCall
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http

logger = logging.getLogger(__name__)


def transport_unsent_bytes(transport: Any) -> int:
    """Bytes written to a Twisted transport that the kernel has not taken yet.

    A TCP transport (`twisted.internet.abstract.FileDescriptor`) keeps them in `dataBuffer`
    (from `offset` on) and `_tempDataBuffer` (`_tempDataLen` bytes): Twisted exposes no
    public count. A wrapping transport (TLS) is measured on the transport beneath it.
    """
    while transport is not None and not hasattr(transport, "dataBuffer"):
        transport = getattr(transport, "transport", None)
    if transport is None:
        return 0
    return (
        len(transport.dataBuffer)
        - getattr(transport, "offset", 0)
        + getattr(transport, "_tempDataLen", 0)
    )


class StreamWriteBound:
    """A request mixin: aborts an event-stream response whose client has fallen more than
    NOTIFYHUB_STREAM_MAX_UNSENT_BYTES behind. The stream's view sees the disconnect as any
    other (its session's position stays at the last frame handed to Twisted)."""

    # Twisted's Request attributes, as the mixin reads them.
    channel: Any
    responseHeaders: Any
    _stream_response: bool | None = None
    _stream_aborted = False

    def write(self, data: bytes) -> None:
        if self._stream_aborted:
            return  # The abort drops the connection on the reactor's next turn.
        super().write(data)  # type: ignore[misc]  # zope.interface: no `self` in the stub
        if self._stream_response is None:
            content_type = self.responseHeaders.getRawHeaders(b"content-type") or [b""]
            self._stream_response = content_type[0].startswith(b"text/event-stream")
        if not self._stream_response:
            return
        transport = self.channel.transport if self.channel is not None else None
        unsent = transport_unsent_bytes(transport)
        if unsent > settings.NOTIFYHUB_STREAM_MAX_UNSENT_BYTES:
            self.abort_behind(unsent)

    def abort_behind(self, unsent: int) -> None:
        """Close the stream of a client too far behind, dropping what it has not read."""
        if self._stream_aborted or self.channel is None:
            return
        self._stream_aborted = True
        logger.info(
            "stream client %s left %d bytes unread; closing its stream",
            getattr(self, "client_addr", None),
            unsent,
        )
        self.channel.transport.abortConnection()


def _daphne_request(send: Any) -> "StreamWriteBound | None":
    """The daphne request behind an ASGI `send`: daphne passes `partial(server.handle_reply,
    request)`. None under any other server (the test client), which then paces nothing."""
    args = getattr(send, "args", ())
    request = args[0] if args else None
    return request if isinstance(request, StreamWriteBound) else None


def stream_pacer(send: Any) -> Callable[[], Awaitable[None]]:
    """An awaitable to call after each frame a stream sends: while the client has more than
    half of NOTIFYHUB_STREAM_MAX_UNSENT_BYTES left unread, it waits for the client to read (a
    replay then goes at the client's pace, never all into memory); a client that reads
    nothing for two keep-alive intervals is behind for good, and its connection is aborted."""
    request = _daphne_request(send)
    loop = asyncio.get_running_loop()

    async def pace() -> None:
        if request is None or request.channel is None:
            return
        transport = request.channel.transport
        low = settings.NOTIFYHUB_STREAM_MAX_UNSENT_BYTES // 2
        unsent = transport_unsent_bytes(transport)
        if unsent <= low:
            return
        deadline = loop.time() + 2 * settings.NOTIFYHUB_STREAM_KEEPALIVE
        while unsent > low:
            if loop.time() > deadline:
                request.abort_behind(unsent)
                return
            # Polled only while the client is behind: Twisted tells no one when its buffer
            # drains but the channel's own producer.
            await asyncio.sleep(0.02)
            if request.channel is None:
                return
            unsent = transport_unsent_bytes(transport)

    return pace


class HubHTTPChannel(http.HTTPChannel):
    """Twisted's HTTP/1.1 channel with a deadline on each request head (see the module)."""

    def __init__(self) -> None:
        super().__init__()
        self._head_deadline: DelayedCall | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        self._await_head()

    def _await_head(self) -> None:
        self._cancel_head_deadline()
        # zope.interface declares methods without `self`, so mypy shifts their arguments by one.
        timeout = settings.NOTIFYHUB_HTTP_HEAD_TIMEOUT
        self._head_deadline = reactor.callLater(timeout, self._head_late)  # type: ignore[arg-type]  # as the comment above says

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None and self._head_deadline.active():
            self._head_deadline.cancel()
        self._head_deadline = None

    def _head_late(self) -> None:
        self._head_deadline = None
        if self.transport is not None:
            # A close, not an abort: the previous response may still be on its way to a slow
            # reader (Twisted's own idle timeout, restored after each request, ends that one).
            self.transport.loseConnection()  # type: ignore[misc]  # zope.interface, as above

    def allHeadersReceived(self) -> None:
        self._cancel_head_deadline()
        super().allHeadersReceived()

    def requestDone(self, request: Any) -> None:
        # Armed before the buffered data is parsed: a pipelined request whose head is already
        # in cancels it within super().requestDone().
        if self.persistent:
            self._await_head()
        super().requestDone(request)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancel_head_deadline()
        super().connectionLost(reason)


def _hub_channel_protocol(factory: http.HTTPFactory) -> Any:
    # What Twisted's own `_genericHTTPChannelProtocolFactory` builds, with our channel.
    return http._GenericHTTPChannelProtocol(HubHTTPChannel())


class HubHTTPFactory(http_protocol.HTTPFactory):
    """daphne's factory, building HubHTTPChannel connections."""

    protocol = _hub_channel_protocol
