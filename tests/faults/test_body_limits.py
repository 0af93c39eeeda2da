"""Huge request bodies against a real web process: 300 MB, with a Content-Length and chunked.

Under daphne (the web process) and under hypercorn (any other ASGI server, where the
application's own guard acts). Pass: each is answered 413 in its surface's JSON (NOT000006;
Kazoo's envelope under /v2/) long before it is all sent, no view runs, and the web process grows
by less than RSS_BOUND (before the fix one such POST grew daphne by 300 MB and got no answer).
"""

import json
import re
import select
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests import servers

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HUGE = 300 * 1024 * 1024
CHUNK = b"x" * (64 * 1024)
RSS_BOUND = 20 * 1024 * 1024


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int  # body bytes the client had sent when the answer arrived


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1)) * 1024


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        assert more, f"connection closed before an answer: {data!r}"
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        more = sock.recv(65536)
        if not more:
            break
        body += more
    return status, headers, body


def post_huge(base_url: str, path: str, *, total: int, chunked: bool, headers: str = "") -> Answer:
    """POST `total` bytes, reading the answer as soon as one arrives (as a careful client does)."""
    target = urlsplit(base_url)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {target.netloc}\r\n"
        f"Content-Type: application/json\r\n{headers}{framing}\r\n\r\n"
    )
    with socket.create_connection((target.hostname, target.port), timeout=30) as sock:
        sock.sendall(head.encode())
        sent = 0
        try:
            while sent < total:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break
                piece = CHUNK[: total - sent]
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # The server stopped listening; its answer is in our receive buffer.
        status, answer_headers, body = read_answer(sock)
    return Answer(status=status, headers=answer_headers, body=body, sent=sent)


@pytest.fixture
def web(transactional_db, log_dir):
    process = servers.start_daphne(log_dir)
    yield process
    process.stop()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_300_mb_body_is_refused_before_it_is_read(web, chunked):
    before = rss_bytes(web.popen.pid)

    answer = post_huge(web.url, "/notification/v1/subscriptions", total=HUGE, chunked=chunked)

    grown = rss_bytes(web.popen.pid) - before
    assert answer.status == 413
    assert answer.headers["content-type"] == "application/json"
    assert json.loads(answer.body)["code"] == "NOT000006"
    assert answer.sent < 64 * 1024 * 1024  # answered long before the end of the body
    assert grown < RSS_BOUND, f"the web process grew by {grown / 2**20:.1f} MiB"
    assert "Traceback" not in web.output()


def test_a_chunked_device_document_over_64_kib_gets_kazoos_413(web):
    answer = post_huge(
        web.url,
        "/v2/accounts/acme/push_notification_subscriptions/app/device-1",
        total=100 * 1024,
        chunked=True,
        headers="X-Auth-Token: some-token\r\nX-Request-ID: body-limit-1\r\n",
    )
    assert answer.status == 413
    envelope = json.loads(answer.body)
    assert envelope["error"] == "413"
    assert envelope["message"] == "request_entity_too_large"
    assert envelope["status"] == "error"
    assert envelope["request_id"] == "body-limit-1"
    assert envelope["auth_token"] == "some-token"
    assert answer.headers["x-request-id"] == "body-limit-1"


def test_a_chunked_event_over_the_event_limit_is_refused_and_a_small_one_passes_the_guard(web):
    too_big = post_huge(web.url, "/v1/notifications", total=300 * 1024, chunked=True)
    assert too_big.status == 413
    assert json.loads(too_big.body)["code"] == "NOT000006"
    # Under the limit the request reaches the view (no credentials: the view's 401).
    small = post_huge(web.url, "/v1/notifications", total=1024, chunked=True)
    assert small.status == 401


@pytest.fixture
def asgi_only(transactional_db, log_dir):
    process = servers.start_hypercorn(log_dir)
    yield process
    process.stop()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_under_another_asgi_server_the_application_refuses_the_body_itself(asgi_only, chunked):
    before = rss_bytes(asgi_only.popen.pid)

    answer = post_huge(asgi_only.url, "/notification/v1/subscriptions", total=HUGE, chunked=chunked)

    grown = rss_bytes(asgi_only.popen.pid) - before
    assert answer.status == 413
    assert json.loads(answer.body)["code"] == "NOT000006"
    assert answer.sent < 64 * 1024 * 1024
    assert grown < RSS_BOUND, f"the web process grew by {grown / 2**20:.1f} MiB"


def test_a_client_expecting_100_continue_gets_the_413_instead_and_sends_nothing(web):
    target = urlsplit(web.url)
    head = (
        f"POST /notification/v1/subscriptions HTTP/1.1\r\nHost: {target.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {HUGE}\r\n"
        "Expect: 100-continue\r\n\r\n"
    )
    with socket.create_connection((target.hostname, target.port), timeout=30) as sock:
        sock.sendall(head.encode())
        status, headers, body = read_answer(sock)
        rest = sock.recv(65536)  # The server closes its side: nothing follows the answer.
    assert status == 413
    assert json.loads(body)["code"] == "NOT000006"
    assert headers["connection"] == "close"
    assert rest == b""
