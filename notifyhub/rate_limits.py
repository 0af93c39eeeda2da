"""Request counters in Redis: how many requests one caller made in the current window.

Fixed windows (one counter per key and window, expiring with it): two INCRs and an EXPIRE in one
round trip, shared by every web process. A burst across a window's edge may get up to twice the
limit through, which is fine for what these guard (CPU, not quotas).
"""

import logging
import math
import time
from dataclasses import dataclass

import redis

from notifyhub.redis import redis_client, redis_key

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateLimit:
    """At most `limit` requests per `window` seconds for each value of one kind of key."""

    name: str
    limit: int
    window: int


def rate_limits_hit(*, counted: list[tuple[RateLimit, str]]) -> int | None:
    """Count one request against each (limit, key); the seconds until the window ends if any
    limit is exceeded, else None. Redis being unavailable lets the request through (logged): a
    throttle must not take the endpoint it guards down with it."""
    now = time.time()
    pipeline = redis_client().pipeline(transaction=False)
    for rate, key in counted:
        window_key = redis_key("rate", rate.name, key, str(int(now // rate.window)))
        pipeline.incr(window_key)
        pipeline.expire(window_key, rate.window + 1)
    try:
        replies = pipeline.execute()
    except redis.RedisError as exc:
        logger.warning("rate limits not counted (Redis unavailable): %s", exc)
        return None
    waits = [
        rate.window - (now % rate.window)
        for (rate, _), count in zip(counted, replies[::2], strict=True)
        if count > rate.limit
    ]
    if not waits:
        return None
    return max(1, math.ceil(max(waits)))
