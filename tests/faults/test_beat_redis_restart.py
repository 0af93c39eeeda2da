"""Redis restarts empty under a running beat: the beat keeps running and holds its lock again.

The lock key vanished with Redis's data. Taken to mean "another beat has it", it made beat stop
itself on every Redis restart (bench/soak.py --faults found it); a missing key is nobody's, so
the beat takes it again. A key that another beat holds still stops it.
"""

import os
import signal
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from notifyhub.devredis import start_redis
from tests import servers

pytestmark = pytest.mark.e2e


@pytest.fixture
def private_redis() -> Iterator[tuple[int, list]]:
    """A Redis of this test alone (it is restarted), and its process (replaced on restart)."""
    port = servers.free_port()
    processes = [start_redis(port=port)[0]]
    try:
        yield port, processes
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)


def lock_holder(port: int, prefix: str) -> bytes | None:
    value = redis.Redis(port=port).get(f"{prefix}:beat:lock")
    return value if isinstance(value, bytes) else None


def test_a_beat_keeps_running_and_retakes_its_lock_after_redis_restarts_empty(
    log_dir, private_redis
):
    port, processes = private_redis
    prefix = f"beatredis-{uuid.uuid4().hex[:8]}"
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "NOTIFYHUB_REDIS_PREFIX": prefix,
        "NOTIFYHUB_BEAT_LOCK_TTL": "3",  # renewed every second
    }
    beat = servers.start_beat(log_dir, **env)
    with servers.running(beat):
        assert beat.popen.poll() is None, beat.output()
        holder = lock_holder(port, prefix)
        assert holder is not None

        os.killpg(processes[0].pid, signal.SIGKILL)  # its data goes with it
        processes[0].wait()
        time.sleep(2)  # at least one renewal fails while Redis is down
        processes.append(start_redis(port=port)[0])
        assert lock_holder(port, prefix) is None

        servers.wait_until(
            lambda: lock_holder(port, prefix) == holder,
            timeout=10,
            what="the same beat holding its lock again",
        )
        time.sleep(2)  # two more renewals: it still runs
        assert beat.popen.poll() is None, beat.output()
        assert "held by another beat" not in beat.output()


def test_a_beat_whose_lock_another_beat_holds_stops(log_dir, private_redis):
    port, _ = private_redis
    prefix = f"beatredis-{uuid.uuid4().hex[:8]}"
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "NOTIFYHUB_REDIS_PREFIX": prefix,
        "NOTIFYHUB_BEAT_LOCK_TTL": "3",
    }
    beat = servers.start_beat(log_dir, **env)
    with servers.running(beat):
        assert lock_holder(port, prefix) is not None
        # As if this beat had paused past its lifetime and another had taken over.
        redis.Redis(port=port).set(f"{prefix}:beat:lock", b"other-host:1:feedbeef", px=60_000)
        assert beat.popen.wait(timeout=15) == 0
        assert "held by another beat" in beat.output()
        assert lock_holder(port, prefix) == b"other-host:1:feedbeef"
