"""Shared bench plumbing: a fresh PostgreSQL database, the real server, and a load generator.

Every figure is measured against the same daphne process, database and load generator in the
same run, so ratios hold on any machine even when absolute numbers do not.
"""

import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
BENCH_DB = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/notifyhub_bench"
)
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/9")


def server_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": BENCH_DB,
        "REDIS_URL": REDIS_URL,
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "NOTIFYHUB_SECURE_SSL_REDIRECT": "0",
        "NOTIFYHUB_REDIS_PREFIX": f"bench{os.getpid()}",
        "NOTIFYHUB_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "notifyhub.settings",
    }
    env.update(extra)
    return env


def setup_django() -> None:
    """Recreate the bench database, migrate it, and set Django up in this process against it."""
    name = BENCH_DB.rsplit("/", 1)[1]
    admin_url = BENCH_DB.rsplit("/", 1)[0] + "/postgres"
    for statement in (f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", admin_url, "-qc", statement], check=True, capture_output=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=server_env(), check=True
    )
    os.environ.update(server_env())
    import django

    django.setup()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def daphne(app: str = "bench.asgi:application") -> Iterator[str]:
    """One daphne process, which most benches measure against."""
    with server(
        lambda port: [
            str(BIN / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "--verbosity",
            "0",
            app,
        ]
    ) as url:
        yield url


@contextmanager
def server(argv: Callable[[int], list[str]], **env: str) -> Iterator[str]:
    """Any server command line (given its port), started before and stopped after the block."""
    port = free_port()
    process = subprocess.Popen(
        argv(port),
        cwd=ROOT,
        env=server_env(**env),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=15)


@dataclass
class LoadResult:
    requests: int
    items: int
    errors: int
    seconds: float
    latencies: list[float]
    timeline: list[tuple[float, int]]  # (seconds since start, items) per answered request

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def item_rate(self) -> float:
        return self.items / self.seconds

    def window_rate(self, start: float, end: float) -> float:
        """Items per second answered between `start` and `end` seconds into the run."""
        return sum(n for at, n in self.timeline if start <= at < end) / (end - start)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def load(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str],
    body: Callable[[int], bytes] | None = None,
    items: Callable[[httpx.Response], int] = lambda response: 1,
    duration: float,
    concurrency: int = 16,
    ok: tuple[int, ...] = (200,),
) -> LoadResult:
    """Keep `concurrency` requests in flight for `duration` seconds; count answers and items."""

    async def run() -> LoadResult:
        counter = 0
        requests = errors = total_items = 0
        latencies: list[float] = []
        timeline: list[tuple[float, int]] = []
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:
            started = time.monotonic()
            deadline = started + duration

            async def worker() -> None:
                nonlocal counter, requests, errors, total_items
                while time.monotonic() < deadline:
                    counter += 1
                    content = body(counter) if body else None
                    sent = time.perf_counter()
                    response = await client.request(method, url, content=content)
                    latencies.append(time.perf_counter() - sent)
                    requests += 1
                    if response.status_code in ok:
                        count = items(response)
                        total_items += count
                        timeline.append((time.monotonic() - started, count))
                    else:
                        errors += 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            seconds = time.monotonic() - started
            return LoadResult(requests, total_items, errors, seconds, latencies, timeline)

    return asyncio.run(run())


def machine() -> str:
    return (
        f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.platform()}"
    )


def row(
    name: str,
    result: LoadResult,
    *,
    unit: str = "req/s",
    baseline: float | None = None,
    by_items: bool = False,
) -> str:
    rate = result.item_rate if by_items else result.rate
    ratio = f"{rate / baseline:.2f}x" if baseline else "—"
    return (
        f"| {name} | {rate:,.0f} {unit} | {result.percentile(0.5):.1f} | "
        f"{result.percentile(0.99):.1f} | {result.errors} | {ratio} |"
    )


TABLE_HEADER = (
    "| endpoint | throughput | p50 ms | p99 ms | errors | ratio to baseline |\n"
    "|---|---|---|---|---|---|"
)


def median(values: list[float]) -> float:
    return statistics.median(values)


@dataclass
class BenchObjects:
    token: str
    api_key: str
    subscription_ids: list[str]


def prepare_objects(*, subscriptions: int = 10) -> BenchObjects:
    """A client with every scope and a live token, an API key, a schema'd type, subscriptions."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone
    from oauth2_provider.models import AccessToken, set_token_value
    from oauthlib.common import generate_token

    from events.models import EventType
    from events.services import api_key_create
    from notifyhub.services import client_create
    from subscriptions.services import subscription_create

    scopes = [settings.SCOPE_PUBLISH, settings.SCOPE_CONSUMER, settings.SCOPE_ADMINISTRATOR]
    created = client_create(name="bench", scopes=scopes)
    raw = generate_token()
    token = AccessToken(
        application=created.application,
        scope=" ".join(scopes),
        expires=timezone.now() + timedelta(hours=2),
    )
    set_token_value(token, raw)
    token.save()
    EventType.objects.create(
        id="bench.order",
        schema={
            "type": "object",
            "required": ["order_id"],
            "properties": {"order_id": {"type": "string"}, "amount": {"type": "number"}},
        },
    )
    subscription_ids = [
        str(
            subscription_create(
                client_id=created.application.client_id,
                event_type_ids=["bench.order"],
                subscribed_by="bench",
            ).id
        )
        for _ in range(subscriptions)
    ]
    return BenchObjects(
        token=raw, api_key=api_key_create(name="bench").raw_key, subscription_ids=subscription_ids
    )
