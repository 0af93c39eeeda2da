"""One Redis client per process for the hub's own keys and pub/sub (Celery has its own)."""

from functools import cache

import redis
from django.conf import settings


@cache
def redis_client() -> redis.Redis:
    """A pooled client for REDIS_URL with short timeouts, so a Redis outage fails fast."""
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )


def redis_key(*parts: str) -> str:
    """A key or channel name under this deployment's prefix."""
    return ":".join((settings.NOTIFYHUB_REDIS_PREFIX, *parts))
