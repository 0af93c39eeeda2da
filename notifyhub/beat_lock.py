"""The lock that keeps celery beat to one process per deployment.

Two beats would each enqueue every sweep, doubling the work (the tasks are safe to run twice,
but not free). The beat that starts first holds a Redis key (`SET NX PX`) and renews it from a
thread; a second beat finds the key taken and exits with a message naming the holder. A beat
that stops cleanly deletes the key; one that is killed leaves it to expire after
NOTIFYHUB_BEAT_LOCK_TTL seconds, after which another may start.
"""

import atexit
import logging
import os
import signal
import socket
import threading
import uuid
from dataclasses import dataclass, field

import redis
from django.conf import settings

from notifyhub.redis import redis_client, redis_key

logger = logging.getLogger(__name__)

# Extend the key's life only while it is still ours: after a long pause (a stopped VM) another
# beat may hold it, and a blind PEXPIRE would extend that one's lock on our behalf. A missing
# key is taken again: nobody holds it (Redis restarted empty, or it lapsed while no other beat
# was waiting), and the SET happens in the script, so a beat starting meanwhile either took it
# first (we stop) or finds it ours (it exits). Stopping instead made every Redis restart stop
# beat, which `make run` and a supervisor restart but a bare `celery beat` does not.
_RENEW = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not held then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# Delete the key only while it is ours, for the same reason.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class BeatAlreadyRunning(SystemExit):
    """Raised at beat start-up when another beat holds the lock: the process exits with it."""


def beat_lock_key() -> str:
    return redis_key("beat", "lock")


@dataclass
class BeatLock:
    """This process's hold on the beat lock, renewed every third of its lifetime."""

    ttl_ms: int
    token: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    )
    stopped: threading.Event = field(default_factory=threading.Event)

    def acquire(self) -> bool:
        client = redis_client()
        return bool(client.set(beat_lock_key(), self.token, nx=True, px=self.ttl_ms))

    def holder(self) -> str:
        value = redis_client().get(beat_lock_key())
        return value.decode() if isinstance(value, bytes) else "nobody (it just expired)"

    def renew(self) -> bool:
        """True while the lock is still ours; a Redis error counts as still ours (the key outlives
        a short outage, and the next renewal tells)."""
        try:
            renewed = redis_client().eval(_RENEW, 1, beat_lock_key(), self.token, self.ttl_ms)
        except redis.RedisError as exc:
            logger.warning("beat lock: could not renew (%s); retrying", exc)
            return True
        return bool(renewed)

    def release(self) -> None:
        self.stopped.set()
        try:
            redis_client().eval(_RELEASE, 1, beat_lock_key(), self.token)
        except redis.RedisError as exc:
            logger.warning("beat lock: could not release (%s); it expires by itself", exc)

    def keep_renewed(self) -> None:
        """The renewal loop (a daemon thread). Losing the lock stops this beat: SIGTERM runs
        beat's own shutdown (it saves its schedule and exits)."""
        interval = self.ttl_ms / 3000
        while not self.stopped.wait(interval):
            if not self.renew():
                logger.error(
                    "beat lock %s is held by another beat (this beat paused past its "
                    "lifetime?): stopping",
                    beat_lock_key(),
                )
                os.kill(os.getpid(), signal.SIGTERM)
                return


def beat_lock_hold() -> BeatLock:
    """Take the beat lock for this process and keep it until the process exits; raise
    BeatAlreadyRunning (a SystemExit) naming the holder when another beat has it."""
    lock = BeatLock(ttl_ms=int(settings.NOTIFYHUB_BEAT_LOCK_TTL * 1000))
    try:
        acquired = lock.acquire()
    except redis.RedisError as exc:
        # Fail closed: Celery's signal dispatch would log an ordinary exception and let this
        # beat run without the lock.
        raise SystemExit(f"celery beat: could not take the beat lock ({exc}); exiting") from None
    if not acquired:
        raise BeatAlreadyRunning(
            f"celery beat: another beat already runs for this deployment (Redis key "
            f"{beat_lock_key()} is held by {lock.holder()}). Run exactly one beat; this one "
            f"exits. A killed beat's lock expires within {settings.NOTIFYHUB_BEAT_LOCK_TTL} s."
        )
    atexit.register(lock.release)
    threading.Thread(target=lock.keep_renewed, name="beat-lock", daemon=True).start()
    logger.info("beat lock %s taken by %s", beat_lock_key(), lock.token)
    return lock
