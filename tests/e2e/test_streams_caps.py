"""Per-principal caps on open streams and kept stream sessions, counted across two real daphne
processes: over a cap a new stream is refused with 429 (Retry-After, the platform's error body)
before it opens, and a takeover of a clientId the principal already has never counts twice."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from streams.models import StreamSession
from tests import servers
from tests.streams.support import (
    open_stream,
    push_event_types,  # noqa: F401
    stream_bus_of_this_run,  # noqa: F401
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CAPS = {
    "NOTIFYHUB_STREAM_MAX_PER_PRINCIPAL": "2",
    "NOTIFYHUB_STREAM_MAX_SESSIONS_PER_PRINCIPAL": "3",
}


@pytest.fixture
def two_daphnes(transactional_db, log_dir):
    first = servers.start_daphne(log_dir, **CAPS)
    second = servers.start_daphne(log_dir, **CAPS)
    yield first, second
    first.stop()
    second.stop()


def test_streams_and_sessions_over_the_principal_caps_are_refused_with_429(
    two_daphnes, member, outsider
):
    a, b = two_daphnes
    streams = []

    def stream(server, client_id, token=member.token):
        opened = open_stream(
            server.url, token=token, params={"clientId": client_id, "kinds": "newMessage"}
        )
        streams.append(opened)
        return opened

    def disconnected(client_id):
        wait_for(
            lambda: (
                StreamSession.objects.get(principal="maria", client_id=client_id).connection_id
                is None
            ),
            what=f"{client_id} recorded as disconnected",
        )

    try:
        c1, c2 = stream(a, "c1"), stream(a, "c2")
        assert (c1.status, c2.status) == (200, 200)

        # A third open stream, in another process: refused before it opens.
        refused = stream(b, "c3")
        assert refused.status == 429
        assert int(refused.response.headers["Retry-After"]) >= 1
        assert refused.response.json()["code"] == "NOT000009"
        assert "open streams" in refused.response.json()["description"]
        assert not StreamSession.objects.filter(client_id="c3").exists()
        # Another principal has caps of its own.
        assert stream(b, "c3", token=outsider.token).status == 200

        # Taking c1 over (from the other process) replaces its stream: not counted twice.
        c1_again = stream(b, "c1")
        assert c1_again.status == 200
        assert c1.ended()

        c2.close()
        disconnected("c2")
        assert stream(b, "c3").status == 200  # c1 and c3 open; c1, c2, c3 kept

        streams[-1].close()
        disconnected("c3")
        # A fourth session: three are kept (within their retention) for this principal.
        over = stream(b, "c4")
        assert over.status == 429
        assert "sessions" in over.response.json()["description"]
        assert int(over.response.headers["Retry-After"]) > 3600  # the oldest session's retention
        # Coming back to a session it has is no new session.
        assert stream(a, "c2").status == 200
    finally:
        for opened in streams:
            opened.close()


def test_a_burst_of_opens_from_one_token_gets_no_more_streams_than_the_cap(daphne, member):
    def attempt(n: int):
        return open_stream(
            daphne.url, token=member.token, params={"clientId": f"burst-{n}", "kinds": "ticket"}
        )

    with ThreadPoolExecutor(max_workers=30) as pool:
        streams = list(pool.map(attempt, range(30)))
    try:
        statuses = Counter(stream.status for stream in streams)
        # The default cap (20), however the opens raced each other across the process.
        assert statuses == {200: 20, 429: 10}
        assert StreamSession.objects.filter(principal="maria").count() == 20
    finally:
        for stream in streams:
            stream.close()
