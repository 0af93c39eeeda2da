"""The cache's Redis connections: one pool per process, whatever the number of cache objects."""

import threading

from django.core.cache import caches


def test_cache_objects_of_other_threads_share_the_process_pool_and_its_connection():
    seen = []

    def use_cache() -> None:
        cache = caches["default"]
        cache.set("notifyhub-test-shared-pool", "x", 5)
        assert cache.get("notifyhub-test-shared-pool") == "x"
        pool = cache._cache._get_connection_pool(write=True)
        seen.append((cache, pool, pool._created_connections))  # kept: ids stay unique

    for _ in range(3):  # one after another: each thread has a cache object of its own
        thread = threading.Thread(target=use_cache)
        thread.start()
        thread.join()

    assert len({id(cache) for cache, _, _ in seen}) == 3
    assert len({id(pool) for _, pool, _ in seen}) == 1
    # The second and third threads reused a connection of the pool instead of opening one.
    assert [created for _, _, created in seen] == [seen[0][2]] * 3
