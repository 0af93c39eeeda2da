"""Clients that hurt a web process by being slow, against a real daphne: a slow-loris request
head, an idle keep-alive connection, and a stream client that never reads.

Pass: the first two are closed at NOTIFYHUB_HTTP_HEAD_TIMEOUT while a stream older than that
keeps going; the stuck stream client costs the web process less than STUCK_RSS_BOUND of memory
under a 50 MB flow of events routed to it, its stream is closed by the server, and its
reconnect with Last-Event-ID receives every event it did not read.
"""

import socket
import threading
import time
from pathlib import Path

import pytest

from tests import servers
from tests.streams.support import (
    ingest,
    open_stream,
    push_event_types,  # noqa: F401
    stream_bus_of_this_run,  # noqa: F401
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

HEAD_TIMEOUT = 1.5
STUCK_RSS_BOUND = 15 * 1024 * 1024
EVENT_BYTES = 50 * 1024
FLOW_EVENTS = 1000  # 50 MB


def connect(url: str, *, rcvbuf: int | None = None) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    if rcvbuf is not None:
        # Set before connecting, so the window the server sees is small from the start.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((host, int(port)))
    return sock


def ends_within(sock: socket.socket, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


@pytest.fixture
def hub(transactional_db, log_dir):
    process = servers.start_daphne(
        log_dir, NOTIFYHUB_HTTP_HEAD_TIMEOUT=str(HEAD_TIMEOUT), NOTIFYHUB_STREAM_KEEPALIVE="0.3"
    )
    yield process
    process.stop()


def test_a_slow_loris_request_head_is_closed_at_the_deadline(hub):
    sock = connect(hub.url)
    try:
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed = False
        # One header byte every 0.2 s: Twisted's idle timeout alone never fired on this.
        while time.monotonic() - started < 10 * HEAD_TIMEOUT:
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if ends_within(sock, 0.2):
                closed = True
                break
        assert closed, "the server kept a trickling request head open"
        assert time.monotonic() - started < HEAD_TIMEOUT + 2
    finally:
        sock.close()


def test_a_connection_that_sends_nothing_is_closed_at_the_deadline(hub):
    sock = connect(hub.url)
    try:
        assert ends_within(sock, HEAD_TIMEOUT + 2)
    finally:
        sock.close()


def test_an_idle_keep_alive_connection_is_closed_after_its_response(hub):
    sock = connect(hub.url)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert ends_within(sock, HEAD_TIMEOUT + 2)
        assert time.monotonic() - started >= HEAD_TIMEOUT - 0.5
    finally:
        sock.close()


def test_a_stream_lives_on_past_the_head_deadline(hub, member):
    stream = open_stream(
        hub.url, token=member.token, params={"clientId": "web", "kinds": "newMessage"}
    )
    try:
        assert stream.status == 200
        time.sleep(3 * HEAD_TIMEOUT)
        wanted = ingest("newMessage", user_id="maria")
        assert [frame.id for frame in stream.events(1)] == [wanted]
    finally:
        stream.close()


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


def complete_frame_ids(raw: bytes) -> list[str]:
    """The ids of the frames received whole (a frame ends with a blank line)."""
    whole = raw[: raw.rfind(b"\n\n") + 2] if b"\n\n" in raw else b""
    return [line[4:].decode() for line in whole.split(b"\n") if line.startswith(b"id: ")]


def test_a_stuck_stream_client_is_closed_and_its_reconnect_misses_nothing(
    transactional_db, log_dir, member, record_property
):
    server = servers.start_daphne(log_dir, NOTIFYHUB_STREAM_KEEPALIVE="1")
    sock = connect(server.url, rcvbuf=4096)
    try:
        sock.sendall(
            b"GET /api/push/subscribe?clientId=stuck&kinds=newMessage HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nAccept: text/event-stream\r\n"
            + f"Authorization: Bearer {member.token}\r\n\r\n".encode()
        )
        sock.settimeout(10)
        received = sock.recv(4096)
        assert received.startswith(b"HTTP/1.1 200"), received
        # Warm the process up (the frame path, the bus) before the baseline.
        filler = "x" * EVENT_BYTES
        ingest("newMessage", user_id="maria", n=-1, text=filler)
        time.sleep(1)
        baseline = rss(server.popen.pid)
        peak = baseline
        sampling = True

        def sample() -> None:
            nonlocal peak
            while sampling:
                peak = max(peak, rss(server.popen.pid))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            sent = [
                ingest("newMessage", user_id="maria", n=n, text=filler) for n in range(FLOW_EVENTS)
            ]
            time.sleep(3)  # two keep-alive intervals: the server gives up on the client
        finally:
            sampling = False
            sampler.join()
        growth = peak - baseline
        record_property("stuck_client_rss_growth_bytes", growth)
        print(f"stuck client: baseline RSS {baseline} B, peak {peak} B, growth {growth} B")
        assert growth < STUCK_RSS_BOUND

        # Only now does the client read: what the kernel held, then the server's close. The
        # stream ends either with the connection (aborted while behind) or, when its inbox
        # overflowed first, with the response's last chunk on a connection kept alive for the
        # next request: an EventSource reconnects on either.
        sock.settimeout(10)
        chunks = [received]
        closed = False
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if b"".join(chunks[-2:]).endswith(b"\r\n0\r\n\r\n"):
                    break
            closed = True
        except ConnectionResetError:
            closed = True
        assert closed
        seen = complete_frame_ids(b"".join(chunks))
        assert len(seen) < FLOW_EVENTS  # it fell behind, and was closed
        known = [event_id for event_id in seen if event_id in sent]
        assert known == sent[: len(known)]

        again = open_stream(
            server.url,
            token=member.token,
            params={"clientId": "stuck", "kinds": "newMessage"},
            headers={"Last-Event-ID": known[-1]} if known else None,
        )
        try:
            assert again.status == 200
            rest = again.events(FLOW_EVENTS - len(known), timeout=120)
            assert known + [frame.id for frame in rest] == sent
        finally:
            again.close()
    finally:
        sock.close()
        server.stop()
