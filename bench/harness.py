"""Shared bench plumbing: a fresh PostgreSQL database, the real server, and a load generator.

Every figure is measured against the same daphne process, database and load generator in the
same run, so ratios hold on any machine even when absolute numbers do not.
"""

import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
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
    p50_ms: float
    p99_ms: float
    segment_item_rates: list[float]  # items/s in each consecutive slice of the run
    generator: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def item_rate(self) -> float:
        return self.items / self.seconds


# wrk drives the load when it is installed (Debian's `wrk`): a C event loop that leaves the CPU
# to the server and PostgreSQL, where the Python generator below takes most of a core itself.
WRK = shutil.which("wrk") if os.environ.get("BENCH_LOADGEN", "wrk") == "wrk" else None

_WRK_SCRIPT = r"""
local threads = {}
-- Globals, not locals: done() reads them from each thread with thread:get().
counter, items, oks, errors = 0, 0, 0, 0
local template = os.getenv("BENCH_BODY")
local marker = os.getenv("BENCH_ITEMS_MARKER")
local ok_status = tonumber(os.getenv("BENCH_OK_STATUS"))

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = os.getenv("BENCH_METHOD")
  local i = 1
  while os.getenv("BENCH_HEADER_" .. i) do
    local name, value = os.getenv("BENCH_HEADER_" .. i):match("^([^:]+):%s*(.*)$")
    wrk.headers[name] = value
    i = i + 1
  end
end

function request()
  counter = counter + 1
  local body = nil
  if template and template ~= "" then
    body = template:gsub("{n}", tostring(tid * 1000000000 + counter))
  end
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status == ok_status then
    oks = oks + 1
    if marker and marker ~= "" then
      local _, found = body:gsub(marker, "")
      items = items + found
    else
      items = items + 1
    end
  else
    errors = errors + 1
  end
end

function done(summary, latency, requests)
  local total_items, total_oks, total_errors = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_items = total_items + thread:get("items")
    total_oks = total_oks + thread:get("oks")
    total_errors = total_errors + thread:get("errors")
  end
  io.write(string.format(
    "BENCH {\"requests\": %d, \"items\": %d, \"errors\": %d, \"seconds\": %f, " ..
    "\"p50_ms\": %f, \"p99_ms\": %f, \"socket_errors\": %d}\n",
    summary.requests, total_items, total_errors + summary.errors.connect + summary.errors.read
      + summary.errors.write + summary.errors.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def load(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str],
    body: str | None = None,
    items_marker: str | None = None,
    duration: float,
    concurrency: int = 16,
    ok: int = 200,
    segments: int = 1,
) -> LoadResult:
    """Keep `concurrency` requests in flight for `duration` seconds; count answers and items.

    `body` is a template: `{n}` becomes a number unique to each request. An answer with status
    `ok` counts as one item, or as the number of times `items_marker` (plain text, no Lua pattern
    characters) occurs in its body. The run is measured in `segments` consecutive slices, so a
    sustained figure can be told from a burst.
    """
    spec = LoadSpec(url, method, headers, body, items_marker, duration / segments, concurrency, ok)
    run = _load_wrk if WRK else _load_python
    parts = [run(spec) for _ in range(segments)]
    seconds = sum(part.seconds for part in parts)
    return LoadResult(
        requests=sum(part.requests for part in parts),
        items=sum(part.items for part in parts),
        errors=sum(part.errors for part in parts),
        seconds=seconds,
        p50_ms=statistics.median(part.p50_ms for part in parts),
        p99_ms=max(part.p99_ms for part in parts),
        segment_item_rates=[part.item_rate for part in parts],
        generator=parts[0].generator,
    )


def combined(parts: list[LoadResult]) -> LoadResult:
    """Several runs of one endpoint as one (rounds of an interleaved bench)."""
    return LoadResult(
        requests=sum(part.requests for part in parts),
        items=sum(part.items for part in parts),
        errors=sum(part.errors for part in parts),
        seconds=sum(part.seconds for part in parts),
        p50_ms=statistics.median(part.p50_ms for part in parts),
        p99_ms=max(part.p99_ms for part in parts),
        segment_item_rates=[rate for part in parts for rate in part.segment_item_rates],
        generator=parts[0].generator,
    )


@dataclass(frozen=True)
class LoadSpec:
    """One slice of a load run, as either generator takes it."""

    url: str
    method: str
    headers: dict[str, str]
    body: str | None
    items_marker: str | None
    duration: float
    concurrency: int
    ok: int


def _load_wrk(spec: LoadSpec) -> LoadResult:
    env = {
        **os.environ,
        "BENCH_METHOD": spec.method,
        "BENCH_BODY": spec.body or "",
        "BENCH_ITEMS_MARKER": spec.items_marker or "",
        "BENCH_OK_STATUS": str(spec.ok),
    }
    for index, (name, value) in enumerate(spec.headers.items(), start=1):
        env[f"BENCH_HEADER_{index}"] = f"{name}: {value}"
    seconds = f"-d{max(1, round(spec.duration))}s"
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as workdir:
        script = Path(workdir) / "load.lua"
        script.write_text(_WRK_SCRIPT)
        argv = [WRK, "-t1", f"-c{spec.concurrency}", seconds, "--timeout", "30s", "-s", str(script)]
        finished = subprocess.run(
            [*argv, spec.url], env=env, capture_output=True, text=True, check=True
        )
    line = next(ln for ln in finished.stdout.splitlines() if ln.startswith("BENCH "))
    figures = json.loads(line.removeprefix("BENCH "))
    return LoadResult(
        requests=figures["requests"],
        items=figures["items"],
        errors=figures["errors"],
        seconds=figures["seconds"],
        p50_ms=figures["p50_ms"],
        p99_ms=figures["p99_ms"],
        segment_item_rates=[figures["items"] / figures["seconds"]],
        generator="wrk",
    )


def _load_python(spec: LoadSpec) -> LoadResult:
    """The fallback generator (httpx, asyncio): it costs the machine most of a core."""

    async def run() -> LoadResult:
        counter = 0
        requests = errors = total_items = 0
        latencies: list[float] = []
        width = spec.concurrency
        limits = httpx.Limits(max_connections=width, max_keepalive_connections=width)
        async with httpx.AsyncClient(limits=limits, timeout=30, headers=spec.headers) as client:
            started = time.monotonic()
            deadline = started + spec.duration

            async def worker() -> None:
                nonlocal counter, requests, errors, total_items
                while time.monotonic() < deadline:
                    counter += 1
                    body = spec.body.replace("{n}", str(counter)).encode() if spec.body else None
                    sent = time.perf_counter()
                    response = await client.request(spec.method, spec.url, content=body)
                    latencies.append(time.perf_counter() - sent)
                    requests += 1
                    if response.status_code != spec.ok:
                        errors += 1
                    elif spec.items_marker:
                        total_items += response.text.count(spec.items_marker)
                    else:
                        total_items += 1

            await asyncio.gather(*(worker() for _ in range(width)))
            seconds = time.monotonic() - started
        ordered = sorted(latencies) or [float("nan")]
        return LoadResult(
            requests=requests,
            items=total_items,
            errors=errors,
            seconds=seconds,
            p50_ms=ordered[len(ordered) // 2] * 1000,
            p99_ms=ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
            segment_item_rates=[total_items / seconds],
            generator="python (httpx)",
        )

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
        f"| {name} | {rate:,.0f} {unit} | {result.p50_ms:.1f} | "
        f"{result.p99_ms:.1f} | {result.errors} | {ratio} |"
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
    application: object  # the bench client's oauth2_provider Application


def access_token(application, scopes: list[str], *, user=None) -> str:  # type: ignore[no-untyped-def]
    """A live bearer token of `application` (and `user`), valid for two hours."""
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken, set_token_value
    from oauthlib.common import generate_token

    raw = generate_token()
    token = AccessToken(
        application=application,
        user=user,
        scope=" ".join(scopes),
        expires=timezone.now() + timedelta(hours=2),
    )
    set_token_value(token, raw)
    token.save()
    return raw


def prepare_objects(*, subscriptions: int = 10) -> BenchObjects:
    """A client with every scope and a live token, an API key, a schema'd type, subscriptions."""
    from django.conf import settings

    from events.models import EventType
    from events.services import api_key_create
    from notifyhub.services import client_create
    from notifyhub.tenancy import HUB
    from subscriptions.services import subscription_create

    scopes = [settings.SCOPE_PUBLISH, settings.SCOPE_CONSUMER, settings.SCOPE_ADMINISTRATOR]
    created = client_create(name="bench", scopes=scopes, hub_operator=True)
    raw = access_token(created.application, scopes)
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
                reach=HUB,
                client_id=created.application.client_id,
                event_type_ids=["bench.order"],
                subscribed_by="bench",
            ).id
        )
        for _ in range(subscriptions)
    ]
    return BenchObjects(
        token=raw,
        api_key=api_key_create(name="bench", any_account=True).raw_key,
        subscription_ids=subscription_ids,
        application=created.application,
    )
