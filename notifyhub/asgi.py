"""ASGI entry point served by daphne: HTTP (including server-sent event streams)."""

import atexit
import gc
import io
import os
from contextlib import aclosing
from http import HTTPStatus
from importlib import import_module
from urllib.parse import unquote

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from channels.routing import ProtocolTypeRouter
from daphne import http_protocol
from daphne import server as daphne_server
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from notifyhub.db_threads import DbThreads, db_threads_serve
from notifyhub.http_channel import HubHTTPFactory, StreamWriteBound, stream_pacer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyhub.settings")

django.setup(set_prefix=False)  # What get_asgi_application() does before building its handler.

from notifyhub.body_limits import body_limit_for, too_large_answer  # noqa: E402 - needs setup()
from notifyhub.metrics import process_dead  # noqa: E402 - needs setup()


class ThreadPoolASGIHandler(ASGIHandler):
    """Django's handler for API requests, with one hop to a long-lived thread per request.

    The stock handler enters a fresh ThreadSensitiveContext per request (asgiref then starts a
    thread for it and joins it when the response ends) and runs the middleware chain in async
    mode, which hops to that thread and back for every sync middleware, twice. Measured here,
    that was most of a minimal API request. This handler builds the chain in sync mode, as under
    WSGI, and runs the whole of it, view included, in one call on the least busy of `threads`
    long-lived threads, which keep their database connection while busy (notifyhub/db_threads.py).
    Async views (the streams) go through `StreamASGIHandler` instead.
    """

    def __init__(self, threads: int, db_idle: float) -> None:
        super().__init__()
        self.load_middleware(is_async=False)
        self.threads = DbThreads(threads, db_idle=db_idle, name="web")

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]  # ASGI scope/receive/send
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        async with (
            self.threads.lease() as executor,
            ThreadSensitiveContext(executor=executor),
        ):
            await self.handle(scope, receive, send)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


api_asgi_app = ThreadPoolASGIHandler(
    settings.NOTIFYHUB_WEB_THREADS, db_idle=settings.NOTIFYHUB_WEB_DB_IDLE
)
# Stream opens, replays and closes: on threads of their own (an API request never waits behind
# a reconnect storm), which keep their connection while the opens keep coming.
db_threads_serve(
    "streams",
    DbThreads(
        settings.NOTIFYHUB_STREAM_DB_THREADS,
        db_idle=settings.NOTIFYHUB_WEB_DB_IDLE,
        name="stream-db",
    ),
)


# The streams' middleware chain: settings.MIDDLEWARE with these entries replaced by the given
# one, or left out (None). Left out: what a GET of a stream never uses (CSRF, the views are
# exempt; messages; frame options of an HTML page). Replaced:
# the same middleware running its hooks on the event loop (notifyhub.middleware.InlineHooks).
# Each left-out or replaced hook was a hop to the one shared sync thread and back: 15 per open
# before, 2 now (the session's, whose response hook may save it).
STREAM_MIDDLEWARE_CHANGES = {
    "django.middleware.security.SecurityMiddleware": (
        "notifyhub.middleware.InlineSecurityMiddleware"
    ),
    "django.middleware.common.CommonMiddleware": "notifyhub.middleware.InlineCommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware": None,
    "django.contrib.auth.middleware.AuthenticationMiddleware": (
        "notifyhub.middleware.InlineAuthenticationMiddleware"
    ),
    "django.contrib.messages.middleware.MessageMiddleware": None,
    "django.middleware.clickjacking.XFrameOptionsMiddleware": None,
}


class StreamASGIHandler(ASGIHandler):
    """Django's handler for long-lived streams, without asgiref's per-request thread.

    The stock handler wraps each request in a ThreadSensitiveContext, which gives the request a
    thread of its own for its sync parts (middleware) and keeps it until the response ends: one
    idle thread per open stream. Here the sync parts run on asgiref's one shared thread and the
    stream views do their database work in short bursts on the shared pool. Its middleware is
    the streams' own chain (STREAM_MIDDLEWARE_CHANGES).
    """

    def load_middleware(self, is_async: bool = False) -> None:
        full = settings.MIDDLEWARE
        streams = [STREAM_MIDDLEWARE_CHANGES.get(path, path) for path in full]
        # Django builds the chain from the setting alone; it is swapped for this one build, at
        # import time, before any request is served.
        settings.MIDDLEWARE = [path for path in streams if path is not None]
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]  # ASGI scope/receive/send
        await self.handle(scope, receive, send)

    async def send_response(self, response, send):  # type: ignore[no-untyped-def]  # ASGI scope/receive/send
        """An event stream's frames go out as they come (already bytes, one object shared by
        every stream of a fan-out), without the async-generator wrapper and the per-chunk
        make_bytes()/chunk_bytes() Django puts around each one: at a fan-out to a thousand
        streams those were a quarter of the event loop's time."""
        frames = getattr(response, "frames", None)
        if frames is None:
            await super().send_response(response, send)
            return
        headers = [
            (name.encode("ascii"), value.encode("latin1")) for name, value in response.items()
        ]
        headers += [
            (b"Set-Cookie", cookie.output(header="").encode("ascii").strip())
            for cookie in response.cookies.values()
        ]
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        # Waits while the client is behind, and closes it if it stays behind (http_channel).
        pace = stream_pacer(send)
        async with aclosing(frames):
            async for frame in frames:
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                await pace()
        await send({"type": "http.response.body"})


stream_asgi_app = StreamASGIHandler()


async def http_application(scope, receive, send):  # type: ignore[no-untyped-def]  # ASGI scope/receive/send
    """Streams to the thread-free handler; everything else to the thread-pool one."""
    if scope["path"] in settings.NOTIFYHUB_STREAM_PATHS:
        await stream_asgi_app(scope, receive, send)
    else:
        await api_asgi_app(scope, receive, send)


async def body_limited(scope, receive, send):  # type: ignore[no-untyped-def]  # ASGI scope/receive/send
    """The body limit of the path (notifyhub/body_limits.py), applied before any view runs: a
    declared length over it is refused unread, and a body sent in chunks (no length) is counted
    as it arrives and refused at the first byte over. Django reads a whole body before its view
    runs anyway, so holding it here until it is complete changes nothing else."""
    limit, _ = body_limit_for(scope["path"])
    headers = {
        name.decode("latin1").lower(): value.decode("latin1") for name, value in scope["headers"]
    }
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        await _answer_too_large(scope["path"], headers, send)
        return
    arrived = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return  # The client went away before its body was complete.
        size += len(message.get("body", b""))
        if size > limit:
            await _answer_too_large(scope["path"], headers, send)
            return
        arrived.append(message)
        if not message.get("more_body", False):
            break

    async def replayed():  # type: ignore[no-untyped-def]  # ASGI scope/receive/send
        if arrived:
            return arrived.pop(0)
        return await receive()  # Then what the connection says (a disconnect).

    await http_application(scope, replayed, send)


async def _answer_too_large(path: str, headers: dict[str, str], send) -> None:  # type: ignore[no-untyped-def]  # ASGI scope/receive/send
    answer_headers, body = too_large_answer(path, headers)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(name.encode(), value.encode()) for name, value in answer_headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


application = ProtocolTypeRouter({"http": body_limited})
# A web process that stops takes its live gauges (open streams) out of every later scrape's sum.
atexit.register(process_dead, os.getpid())


_PHRASES = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}


# After a body's refusal the connection reads (and drops) what the client still sends for this
# long before it closes: closing at once, with the client's bytes unread, would reset the
# connection and the client could lose the 413 before reading it.
REFUSED_BODY_LINGER = 5.0


class HubWebRequest(StreamWriteBound, http_protocol.WebRequest):
    """daphne's request, with three of Twisted's habits corrected (and a stream's unsent bytes
    bounded: `StreamWriteBound`, notifyhub/http_channel.py).

    - A body over its path's limit (notifyhub/body_limits.py) is refused as it arrives: Twisted
      stores a whole body (in memory, or a temporary file past 100 kB) before daphne hands it to
      the application, which daphne then queues in full, so an unauthenticated 300 MB POST grew
      the process by 300 MB before any view could say no. A declared length over the limit is
      refused at the end of the headers, a chunked body at its first byte over; the 413 goes out
      at once, what the client still sends is dropped, and the application never sees the
      request.
    - No parse of POST form bodies: daphne hands the raw body to the application and never
      reads the `args` Twisted parses from a form or multipart body, so that parse is wasted: a
      fifth of a millisecond per JSON POST (Twisted reads every Content-Type with the `email`
      package), and on a malformed multipart body Twisted answered with its own HTML 400 before
      Django saw the request. The `parsePOSTFormSubmission` switch is Twisted's way to opt out
      (twisted/twisted#12413).
    - Every status gets its reason phrase: ASGI carries none, and Twisted's table lacks 422 and
      429 among others, which went out as `422 Unknown Status`.
    """

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]  # ASGI scope/receive/send
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(*args, **kwargs)
        self.body_limit = 0
        self.body_received = 0
        self.body_refused = False

    def gotLength(self, length: int | None) -> None:
        # Twisted calls this once the headers are in, before any of the body.
        self.body_limit, _ = body_limit_for(self._target_path())
        if length is not None and length > self.body_limit:
            self.content = io.BytesIO()  # Nothing will be written to it.
            # Twisted answers `Expect: 100-continue` right after this call: not after a 413.
            self.requestHeaders.removeHeader(b"Expect")
            self._refuse_body()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.body_refused:
            return
        self.body_received += len(data)
        if self.body_received > self.body_limit:
            self._refuse_body()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if self.body_refused:
            return  # Answered already: the application never sees this request.
        super().requestReceived(command, path, version)

    def _target_path(self) -> str:
        """The path of the request whose headers just arrived. Twisted sets the request's own
        `path` only once the body is complete; until then the request line is the channel's."""
        target = getattr(self.channel, "_path", b"")
        return unquote(target.split(b"?", 1)[0].decode("ascii", errors="replace"))

    def _refuse_body(self) -> None:
        """Answer 413 on the raw connection (the request line is not parsed into this object yet),
        stop answering, drop what the client still sends, and close after the linger."""
        self.body_refused = True
        headers = {
            name.decode("latin1").lower(): values[0].decode("latin1")
            for name, values in self.requestHeaders.getAllRawHeaders()
        }
        answer_headers, body = too_large_answer(self._target_path(), headers)
        head = "HTTP/1.1 413 Payload Too Large\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in answer_headers
        )
        transport = self.channel.transport
        transport.write(head.encode("latin1") + b"\r\n" + body)
        transport.loseWriteConnection()
        # The channel's TimeoutMixin clock: the reactor daphne runs.
        self.channel.callLater(REFUSED_BODY_LINGER, transport.abortConnection)

    def setResponseCode(self, code: int, message: bytes | None = None) -> None:
        if message is None and code in _PHRASES:  # any other status keeps Twisted's answer
            message = _PHRASES[code]
        super().setResponseCode(code, message)


# daphne's protocol factory builds each connection's requests from this module attribute; the
# daphne command imports `application` (this module) before it serves its first connection.
http_protocol.WebRequest = HubWebRequest
# Its server builds its factory from this one, when it starts serving (after that import): the
# request-head deadline (notifyhub/http_channel.py).
daphne_server.HTTPFactory = HubHTTPFactory


def _freeze_startup_objects() -> None:
    """Take what startup loaded (Django, DRF, every app, the URLconf) out of the cyclic garbage
    collector's sight; they live as long as the process anyway.

    Under load a web process promotes request objects to the oldest generation fast enough to
    trigger full collections often, and each one walked all of those objects with the GIL held:
    a real share of the minimal endpoint's time, and a stall for every request in flight (the
    figures are in docs/benchmarks.md). `gc.freeze()` moves them to a permanent generation that
    collections ignore, so a full collection walks only what requests left behind.
    """
    import_module(settings.ROOT_URLCONF)  # Django would import it on the first request.
    gc.collect()
    gc.freeze()


_freeze_startup_objects()
