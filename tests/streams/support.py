"""Helpers for Push API tests: a real SSE client reading a stream on its own thread, and event
ingestion through the real service."""

import contextlib
import json
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from django.conf import settings
from httpx_sse import EventSource, ServerSentEvent, connect_sse

from events.models import EventType
from events.services import event_ingest
from notifyhub.tenancy import HUB
from streams.rules import STREAM_KINDS

SUBSCRIBE = "/api/push/subscribe"


@pytest.fixture(scope="module", autouse=True)
def stream_bus_of_this_run(worker_id: str) -> Iterator[None]:
    """Redis pub/sub ignores the database number: give this test process its own prefix so
    parallel runs never see each other's stream messages (servers pass it to daphne). Module
    scope: other modules keep the prefix their daphne and token cache agree on."""
    original = settings.NOTIFYHUB_REDIS_PREFIX
    settings.NOTIFYHUB_REDIS_PREFIX = f"{original}-test-{worker_id}-{os.getpid()}"
    yield
    settings.NOTIFYHUB_REDIS_PREFIX = original


@pytest.fixture(autouse=True)
def push_event_types(request: pytest.FixtureRequest) -> None:
    """The Push API kinds in the catalogue (a transactional test flushes the seeded rows)."""
    if "transactional_db" not in request.fixturenames and not any(
        mark.kwargs.get("transaction") for mark in request.node.iter_markers("django_db")
    ):
        return
    request.getfixturevalue("transactional_db")
    for kind in STREAM_KINDS:
        EventType.objects.get_or_create(id=kind)


def ingest(type_id: str, **payload: Any) -> str:
    """Ingest one event through the real service (committed: the test is transactional)."""
    return event_ingest(
        producer="test", reach=HUB, type_id=type_id, payload=payload, idempotency_key=None
    ).event_id


@dataclass
class Stream:
    """An open SSE connection read by httpx-sse on a background thread."""

    response: httpx.Response
    client: httpx.Client
    frames: "queue.Queue[ServerSentEvent | None]" = field(default_factory=queue.Queue)
    seen: list[ServerSentEvent] = field(default_factory=list)
    thread: threading.Thread | None = None
    error: BaseException | None = None
    # connect_sse's context manager: dropping it would close the response under the reader.
    context: Any = None

    @property
    def status(self) -> int:
        return self.response.status_code

    def _read(self, source: Any) -> None:
        try:
            for sse in source.iter_sse():
                self.frames.put(sse)
        except BaseException as exc:  # closed from the test thread, or the server ended it
            self.error = exc
        finally:
            self.frames.put(None)

    def next(self, timeout: float = 10) -> ServerSentEvent | None:
        """The next frame (None once the stream ended)."""
        sse = self.frames.get(timeout=timeout)
        if sse is not None:
            self.seen.append(sse)
        return sse

    def events(self, count: int, *, timeout: float = 30) -> list[ServerSentEvent]:
        """The next `count` frames that carry an id (events), in arrival order."""
        got: list[ServerSentEvent] = []
        deadline = time.monotonic() + timeout
        while len(got) < count:
            sse = self.next(timeout=max(0.1, deadline - time.monotonic()))
            if sse is None:
                if self.error is not None:
                    raise AssertionError(f"the stream failed: {self.error!r}") from self.error
                break
            if sse.id:
                got.append(sse)
        return got

    def nothing_more(self, *, wait: float = 1.0) -> list[ServerSentEvent]:
        """Frames (other than keep-alives) arriving within `wait` seconds."""
        extra: list[ServerSentEvent] = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                sse = self.frames.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if sse is None:
                break
            extra.append(sse)
        return extra

    def ended(self, timeout: float = 10) -> bool:
        """Whether the server closed the stream within `timeout` (frames are drained)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                sse = self.frames.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if sse is None:
                return True
            self.seen.append(sse)
        return False

    def close(self) -> None:
        # Shut the socket down first: closing the response alone does not wake the reader
        # thread blocked in recv().
        network = self.response.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.response.close()
        self.client.close()
        if self.thread is not None:
            self.thread.join(timeout=10)


def open_stream(
    base_url: str,
    *,
    token: str | None = None,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    cookies: dict[str, str] | None = None,
    query: str | None = None,
    headers_as_given: bool = False,
) -> Stream:
    """Open a stream; for a 200 the frames are read in the background. `query` is a query
    string sent as it is (a client's own encoding), instead of `params`; `headers_as_given`
    sends `headers` without the Accept and Cache-Control that httpx-sse sets."""
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    client = httpx.Client(base_url=base_url, timeout=httpx.Timeout(10, read=None), cookies=cookies)
    url = f"{SUBSCRIBE}?{query}" if query is not None else SUBSCRIBE
    connect = _connect_as_given if headers_as_given else connect_sse
    context = connect(client, "GET", url, params=params, headers=all_headers)
    source = context.__enter__()
    stream = Stream(response=source.response, client=client, context=context)
    if source.response.status_code == 200:
        stream.thread = threading.Thread(target=stream._read, args=(source,), daemon=True)
        stream.thread.start()
    else:
        source.response.read()
    return stream


@contextlib.contextmanager
def _connect_as_given(
    client: httpx.Client, method: str, url: str, **kwargs: Any
) -> Iterator[EventSource]:
    with client.stream(method, url, **kwargs) as response:
        yield EventSource(response)


def data(sse: ServerSentEvent) -> dict[str, Any]:
    return json.loads(sse.data)


def wait_for(predicate: Any, *, timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
