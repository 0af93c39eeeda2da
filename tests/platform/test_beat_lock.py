"""Exactly one celery beat per deployment: a second one exits at start-up, naming the lock, and
the lock passes on once the first stops or dies."""

import os
import signal
import uuid

import pytest
import redis
from django.conf import settings

from tests import servers

pytestmark = pytest.mark.e2e


@pytest.fixture
def deployment() -> dict[str, str]:
    """A Redis prefix of this test's own: the lock key is this deployment's only."""
    return {"NOTIFYHUB_REDIS_PREFIX": f"beatlock-{uuid.uuid4().hex[:8]}"}


def lock_holder(prefix: str) -> bytes | None:
    value = redis.Redis.from_url(settings.REDIS_URL).get(f"{prefix}:beat:lock")
    return value if isinstance(value, bytes) else None


def test_a_second_beat_exits_naming_the_lock_and_the_first_keeps_it(log_dir, deployment):
    first = servers.start_beat(log_dir, **deployment)
    with servers.running(first):
        assert first.popen.poll() is None, first.output()
        holder = lock_holder(deployment["NOTIFYHUB_REDIS_PREFIX"])
        assert holder is not None

        second = servers.start_beat(log_dir, **deployment)
        assert second.popen.wait(timeout=30) != 0
        assert "another beat already runs" in second.output()
        assert f"{deployment['NOTIFYHUB_REDIS_PREFIX']}:beat:lock" in second.output()
        assert holder.decode() in second.output()

        assert first.popen.poll() is None, first.output()
        assert lock_holder(deployment["NOTIFYHUB_REDIS_PREFIX"]) == holder


def test_a_stopped_beat_releases_the_lock_for_the_next(log_dir, deployment):
    first = servers.start_beat(log_dir, **deployment)
    first.stop()
    assert lock_holder(deployment["NOTIFYHUB_REDIS_PREFIX"]) is None

    second = servers.start_beat(log_dir, **deployment)
    with servers.running(second):
        assert second.popen.poll() is None, second.output()
        assert lock_holder(deployment["NOTIFYHUB_REDIS_PREFIX"]) is not None


def test_a_killed_beats_lock_lapses_after_its_lifetime(log_dir, deployment):
    short = {**deployment, "NOTIFYHUB_BEAT_LOCK_TTL": "3"}
    first = servers.start_beat(log_dir, **short)
    os.killpg(first.popen.pid, signal.SIGKILL)  # No clean-up of its own: as a machine dies.
    first.popen.wait(timeout=10)
    assert lock_holder(deployment["NOTIFYHUB_REDIS_PREFIX"]) is not None  # Nobody released it.

    servers.wait_until(
        lambda: lock_holder(deployment["NOTIFYHUB_REDIS_PREFIX"]) is None,
        timeout=10,
        what="the killed beat's lock to lapse",
    )
    second = servers.start_beat(log_dir, **short)
    with servers.running(second):
        assert second.popen.poll() is None, second.output()


def test_a_beat_that_cannot_reach_redis_for_the_lock_exits_rather_than_run_unlocked(
    log_dir, deployment
):
    nowhere = f"redis://127.0.0.1:{servers.free_port()}/0"  # Nothing listens there.
    beat = servers.start_beat(log_dir, REDIS_URL=nowhere, **deployment)
    assert beat.popen.wait(timeout=30) != 0
    assert "could not take the beat lock" in beat.output()
