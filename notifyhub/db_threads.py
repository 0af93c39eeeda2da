"""Long-lived threads that keep their database connection while busy and close it once idle.

Under ASGI, Django's sync code runs on whatever thread asgiref gives it, so connections are not
kept between requests (CONN_MAX_AGE=0) and every request pays a new PostgreSQL connection: a
backend forked, authenticated and warmed, on the database's cores. A few long-lived threads that
each keep their connection from one call to the next, as a WSGI worker with CONN_MAX_AGE does
(health-checked before each reuse), pay it once per busy spell instead; each closes its
connection once it has run nothing for `db_idle` seconds, so an idle process holds none.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

T = TypeVar("T")


def keep_connections() -> None:
    """Thread initializer: this thread keeps its connections between calls (CONN_MAX_AGE for
    this thread only; every other thread still closes its own after each use)."""
    for connection in connections.all(initialized_only=False):
        pooled = "pool" in connection.settings_dict.get("OPTIONS", {})  # The pool keeps them.
        if connection.settings_dict["CONN_MAX_AGE"] == 0 and not pooled:
            connection.settings_dict = {**connection.settings_dict, "CONN_MAX_AGE": None}


class DbThreads:
    """`count` single-thread executors; a caller leases the least busy one for its call."""

    def __init__(self, count: int, *, db_idle: float, name: str) -> None:
        self.executors = [
            ThreadPoolExecutor(
                max_workers=1, thread_name_prefix=f"{name}-{n}", initializer=keep_connections
            )
            for n in range(count)
        ]
        self.in_flight = [0] * count
        self.last_done = [0.0] * count
        self.idle_timers: list[asyncio.TimerHandle | None] = [None] * count
        self.db_idle = db_idle

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[ThreadPoolExecutor]:
        """The least busy thread's executor, for the duration of the block."""
        index = self.in_flight.index(min(self.in_flight))
        self.in_flight[index] += 1
        try:
            yield self.executors[index]
        finally:
            self.in_flight[index] -= 1
            self.last_done[index] = time.monotonic()
            if self.idle_timers[index] is None:  # One timer per thread, not one per call.
                self._arm_idle_timer(index, self.db_idle)

    async def run(self, function: Callable[..., T], /, **kwargs: Any) -> T:
        """`function(**kwargs)` on the least busy thread."""
        async with self.lease() as executor:
            return await sync_to_async(function, thread_sensitive=False, executor=executor)(
                **kwargs
            )

    def _arm_idle_timer(self, index: int, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self.idle_timers[index] = loop.call_later(delay, self._close_if_idle, index)

    def _close_if_idle(self, index: int) -> None:
        self.idle_timers[index] = None
        if self.in_flight[index]:
            return  # The call in flight re-arms the timer when it ends.
        left = self.db_idle - (time.monotonic() - self.last_done[index])
        if left > 0:
            self._arm_idle_timer(index, left)
        else:
            self.executors[index].submit(connections.close_all)


_serving: dict[str, DbThreads] = {}


def db_threads_serve(purpose: str, threads: DbThreads) -> None:
    """Set the threads a served web process runs `purpose`'s database work on (notifyhub.asgi
    sets them at start; an app asks with `db_threads_serving`)."""
    _serving[purpose] = threads


def db_threads_serving(purpose: str) -> DbThreads | None:
    """The threads set for `purpose`; None outside a served web process (tests in-process, a
    shell), where each caller runs and closes its connection as before."""
    return _serving.get(purpose)
