"""The cache backend: Django's Redis cache, with one connection pool per process.

Django keeps a cache object per async context (every request, every database burst of a stream)
and gives each its own Redis connection pool. A stream's token check therefore connected afresh
each time: four round trips (connect, two `CLIENT SETINFO`, `SELECT`) before its one `GET`, a
tenth of a stream open's time in a reconnect storm (docs/benchmarks.md), and a connection held
for as long as the cache object lived. Here every cache object of a process shares one
thread-safe pool per server, so connections are reused, and the process holds at most as many
as were in use at once (one per thread running a cache call), however many streams are open.
"""

import threading
from typing import TYPE_CHECKING, Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient

# (server URL, pool options) -> that server's pool, for the whole process.
_pools: dict[tuple[str, str], Any] = {}
_pools_lock = threading.Lock()


class SharedPoolRedisCacheClient(RedisCacheClient):
    """Django's client, taking its pools from the process's (`_pools`) instead of making its
    own. redis-py's pools are thread-safe, and start afresh in a forked child."""

    if TYPE_CHECKING:  # Django's, which its stubs leave out
        _pools: dict[int, Any]
        _servers: list[str]
        _pool_options: dict[str, Any]
        _pool_class: Any

        def _get_connection_pool_index(self, write: bool) -> int: ...

    def _get_connection_pool(self, write: bool) -> Any:
        index = self._get_connection_pool_index(write)
        pool = self._pools.get(index)
        if pool is None:
            key = (self._servers[index], repr(sorted(self._pool_options.items())))
            with _pools_lock:
                pool = _pools.get(key)
                if pool is None:
                    pool = _pools[key] = self._pool_class.from_url(
                        self._servers[index], **self._pool_options
                    )
            self._pools[index] = pool
        return pool


class RedisCache(DjangoRedisCache):
    """Django's Redis cache, sharing the process's pools (`SharedPoolRedisCacheClient`)."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = SharedPoolRedisCacheClient
