"""Liveness of the processes the web tier cannot ask quickly: Celery workers and beat.

Each writes a heartbeat (its name, scored by the time) into a Redis sorted set of its role every
NOTIFYHUB_HEARTBEAT_INTERVAL seconds from a daemon thread; readers take the newest score. One
ZRANGE per role answers "when did any worker last show signs of life", with no broadcast to
wait out (Celery's ping waited two seconds for answers that may never come).
"""

import logging
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from notifyhub.redis import redis_client, redis_key

logger = logging.getLogger(__name__)

ROLES = ("worker", "beat")
# A process is alive while its last heartbeat is younger than this many intervals.
MISSED_BEATS = 3


def _key(role: str) -> str:
    return redis_key("heartbeats", role)


def heartbeat_write(*, role: str, name: str) -> None:
    """Record that `name` (a worker's hostname, beat's) is alive now; forget long-dead peers."""
    now = time.time()
    forget_before = now - 100 * settings.NOTIFYHUB_HEARTBEAT_INTERVAL
    pipe = redis_client().pipeline(transaction=False)
    pipe.zadd(_key(role), {name: now})
    pipe.zremrangebyscore(_key(role), "-inf", forget_before)
    pipe.execute()


def heartbeat_remove(*, role: str, name: str) -> None:
    """A process stopping cleanly says so, rather than waiting to be judged dead."""
    redis_client().zrem(_key(role), name)


@dataclass(frozen=True)
class Liveness:
    """What the heartbeats of one role say: the newest one's age, and how many are recent."""

    role: str
    age: float | None  # seconds since the newest heartbeat; None if none was ever seen
    alive: int

    @property
    def up(self) -> bool:
        return self.alive > 0

    def describe(self) -> str:
        if self.age is None:
            return "down: no heartbeat seen"
        if not self.up:
            return f"down: last heartbeat {self.age:.0f} s ago"
        plural = "" if self.alive == 1 else "es"
        return f"up: {self.alive} process{plural}, last heartbeat {self.age:.0f} s ago"


def liveness_read() -> dict[str, Liveness]:
    """Every role's liveness, in one Redis round trip."""
    pipe = redis_client().pipeline(transaction=False)
    for role in ROLES:
        pipe.zrange(_key(role), 0, -1, withscores=True)
    now = time.time()
    horizon = MISSED_BEATS * settings.NOTIFYHUB_HEARTBEAT_INTERVAL
    result: dict[str, Liveness] = {}
    for role, members in zip(ROLES, pipe.execute(), strict=True):
        scores = [float(score) for _, score in members]
        result[role] = Liveness(
            role=role,
            age=max(0.0, now - max(scores)) if scores else None,
            alive=sum(1 for score in scores if now - score < horizon),
        )
    return result


class HeartbeatThread(threading.Thread):
    """Writes a process's heartbeat every interval until stopped (a daemon: never holds exit)."""

    def __init__(self, *, role: str, name: str) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{role}")
        self.role = role
        self.member = name
        self.stopped = threading.Event()

    def run(self) -> None:
        failing = False
        while True:
            try:
                heartbeat_write(role=self.role, name=self.member)
                failing = False
            except Exception as exc:
                if not failing:  # Once per outage, not once per interval.
                    logger.warning("%s heartbeat not written: %s", self.role, exc)
                failing = True
            if self.stopped.wait(settings.NOTIFYHUB_HEARTBEAT_INTERVAL):
                return

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)  # Its last write lands before the removal, not after.
        try:
            heartbeat_remove(role=self.role, name=self.member)
        except Exception as exc:
            logger.warning("%s heartbeat not removed: %s", self.role, exc)
