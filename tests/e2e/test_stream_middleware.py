"""The streams' own middleware chain (notifyhub/asgi.py, STREAM_MIDDLEWARE_CHANGES), through a
real daphne: what it keeps still reaches every answer of the stream path, and its hooks run on
the event loop without failing. A browser session's stream, which needs the session and user
steps, is tests/e2e/test_streams_delivery.py's."""

import httpx
import pytest

from tests import servers
from tests.streams.support import (
    SUBSCRIBE,
    open_stream,
    push_event_types,  # noqa: F401
    stream_bus_of_this_run,  # noqa: F401
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def daphne(transactional_db, log_dir):
    process = servers.start_daphne(log_dir)
    yield process
    process.stop()


def test_a_stream_carries_the_request_id_and_security_headers(daphne, member):
    stream = open_stream(
        daphne.url,
        token=member.token,
        params={"clientId": "c1", "kinds": "newMessage"},
        headers={"X-Request-ID": "storm-check-1"},
    )
    try:
        assert stream.status == 200
        headers = stream.response.headers
        assert headers["X-Request-ID"] == "storm-check-1"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"
        assert "Content-Length" not in headers
    finally:
        stream.close()


def test_a_refused_open_is_json_with_its_length_and_headers(daphne, member):
    answer = httpx.get(
        f"{daphne.url}{SUBSCRIBE}",
        params={"kinds": "newMessage"},  # no clientId
        headers={"Authorization": f"Bearer {member.token}", "Accept": "text/event-stream"},
        timeout=10,
    )
    assert answer.status_code == 422
    assert answer.headers["Content-Type"].startswith("application/json")
    assert answer.headers["Content-Length"] == str(len(answer.content))
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["X-Request-ID"]
