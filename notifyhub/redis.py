"""One Redis client per process for the hub's own keys and pub/sub (Celery has its own)."""

import os
import threading
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


class _Publisher(threading.local):
    """The calling thread's own connection for PUBLISH (see `redis_publish`)."""

    connection: redis.connection.ConnectionInterface | None = None
    pid = 0


_publisher = _Publisher()


def redis_publish(channel: str, message: str) -> None:
    """PUBLISH on a connection the calling thread keeps.

    The pooled client checks a connection out and back in and wraps each command in its retry
    machinery, a large share of a PUBLISH's CPU (docs/benchmarks.md), and every ingest publishes
    once (the stream bus). A broken connection is replaced and the command sent once more, as the
    client's own retry would; a forked child opens its own.
    """
    connection = _publisher.connection
    if connection is None or _publisher.pid != os.getpid():
        connection = _publisher.connection = redis_client().connection_pool.make_connection()
        _publisher.pid = os.getpid()
    try:
        connection.send_command("PUBLISH", channel, message)
        connection.read_response()
    except (redis.ConnectionError, redis.TimeoutError):
        connection.disconnect()
        connection.send_command("PUBLISH", channel, message)
        connection.read_response()
