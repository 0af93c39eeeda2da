"""The cache backend: Django's Redis cache, with a way to let go of its connections."""

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache


class RedisCache(DjangoRedisCache):
    """Django's Redis cache keeps a connection pool per cache object, and a cache object per
    async context, and never closes a pool. A long-lived context (an open stream) calls
    `disconnect()` after each use, so that it holds no Redis connection while idle."""

    def disconnect(self) -> None:
        """Close the connections of this cache's pools; the next use opens one again."""
        client = self.__dict__.get("_cache")  # the cached_property holding the pools, if made
        if client is None:
            return
        for pool in client._pools.values():
            pool.disconnect()
