"""Idle streams hold no database connection, no thread and no Redis connection of their own
(the stock django-eventstream view holds a database connection and a thread per stream)."""

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings
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


def redis_connections_of(pid: int) -> int:
    """TCP connections of process `pid` to the Redis of settings.REDIS_URL."""
    port = urlsplit(settings.REDIS_URL).port or 6379
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in inodes:
                count += 1
    return count


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


def test_idle_streams_hold_no_database_connection_thread_or_redis_connection(daphne, member):
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
        # The token checks share the process's cache pool: a few connections, not one a stream.
        assert redis_connections_of(daphne.popen.pid) < STREAMS / 4
        wanted = ingest("newMessage", user_id="maria")
        for stream in streams:
            assert [frame.id for frame in stream.events(1)] == [wanted]
        wait_for(lambda: other_connections() == 0, what="no database connection after fan-out")
    finally:
        for stream in streams:
            stream.close()
