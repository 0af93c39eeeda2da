"""Idle streams hold no database connection and no thread of their own (the stock
django-eventstream view holds one of each per stream)."""

from pathlib import Path

import pytest
from django.db import connection

from tests import servers
from tests.streams.support import (
    ingest,
    open_stream,
    push_event_types,  # noqa: F401
    stream_bus_of_this_run,  # noqa: F401
    wait_for,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
]

STREAMS = 40


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def other_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "select count(*) from pg_stat_activity"
            " where datname = current_database() and pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


@pytest.fixture
def daphne(transactional_db, log_dir):
    """One principal holds all the streams here: a cap above them."""
    process = servers.start_daphne(log_dir, NOTIFYHUB_STREAM_MAX_PER_PRINCIPAL=str(STREAMS))
    yield process
    process.stop()


def test_idle_streams_hold_no_database_connection_and_no_thread(daphne, member):
    streams = [
        open_stream(
            daphne.url, token=member.token, params={"clientId": f"c{n}", "kinds": "newMessage"}
        )
        for n in range(STREAMS)
    ]
    try:
        assert all(stream.status == 200 for stream in streams)
        for stream in streams:
            stream.next()  # the first frame: the stream is open
        wait_for(lambda: other_connections() == 0, what="no database connection while idle")
        assert threads_of(daphne.popen.pid) < STREAMS / 2
        wanted = ingest("newMessage", user_id="maria")
        for stream in streams:
            assert [frame.id for frame in stream.events(1)] == [wanted]
        wait_for(lambda: other_connections() == 0, what="no database connection after fan-out")
    finally:
        for stream in streams:
            stream.close()
