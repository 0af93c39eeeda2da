"""Unit costs for the capacity model (docs/capacity.md): CPU per event on each tier, per channel.

One web process (daphne), one Celery worker (concurrency 2), a private PostgreSQL cluster and a
private Redis, so each tier's CPU is its own: the web process, the worker and its pool, every
PostgreSQL process (its reaped backends included) and redis-server are read from /proc before
and after each phase. A producer in this process posts `--events` events per phase, 8 at a time,
and waits until the channel has delivered every one; the CPU the tiers spend idle over the same
seconds (measured first) is taken off. Redis commands come from `INFO commandstats`.

Phases, each its own event type so it routes to its channel alone:
- the same-run baseline: the minimal authenticated endpoint (a bearer token, a scope, JSON);
- ingest with no subscriber, then into a paged pull queue, a FIFO pull queue, a webhook (a
  loopback receiver answering at once), 10 streams of one user (1,000 held, 100 users), and
  10 phones (5 fake APNs, 5 fake FCM);
- reading what the pull phases queued: pages of 100, then the FIFO queue one at a time.

    python bench/capacity.py [--events 3000]
"""

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.push import FakesProcess
from bench.soak_faults import PrivateRedis
from bench.streams import PrivatePostgres, event_source_connect, event_source_frames, start_daphne
from bench.summary import record

CONCURRENCY = 8
USERS = 100
STREAMS_PER_USER = 10
PHONES = 10
IDLE_SECONDS = 10.0
CAP_TYPES = ("warm", "none", "paged", "fifo", "webhook")  # `cap.*` event types
TICKS = os.sysconf("SC_CLK_TCK")
TIERS = ("web", "worker", "postgres", "redis")


def cpu_seconds(root: int) -> float:
    """CPU time of a process and its live descendants, with what each has reaped (a PostgreSQL
    backend that ended counts in the postmaster's, a Celery pool child in the worker's)."""
    total = 0
    pending = [root]
    while pending:
        pid = pending.pop()
        try:
            # Fields after the command name: utime, stime, cutime, cstime are the 12th to 15th.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # It ended between two reads: its parent's reaped time has it.
        total += sum(int(value) for value in fields[11:15])
    return total / TICKS


@dataclass
class Snapshot:
    at: float
    cpu: dict[str, float]
    redis_commands: int


@dataclass
class Cost:
    """What one phase cost, idle CPU taken off, per unit of its work."""

    name: str
    units: int
    unit: str
    seconds: float
    cpu_ms: dict[str, float]  # per unit, by tier
    redis_commands: float  # per unit

    @property
    def total_ms(self) -> float:
        return sum(self.cpu_ms.values())


class Meter:
    def __init__(self, pids: dict[str, int], redis_url: str) -> None:
        import redis

        self.pids = pids
        self.redis = redis.Redis.from_url(redis_url)
        self.idle_cpu_per_s = dict.fromkeys(TIERS, 0.0)
        self.idle_commands_per_s = 0.0

    def snapshot(self) -> Snapshot:
        stats = self.redis.info("commandstats")
        commands = sum(int(entry["calls"]) for entry in stats.values())
        return Snapshot(
            time.monotonic(), {tier: cpu_seconds(pid) for tier, pid in self.pids.items()}, commands
        )

    def measure_idle(self, seconds: float) -> None:
        before = self.snapshot()
        time.sleep(seconds)
        after = self.snapshot()
        span = after.at - before.at
        self.idle_cpu_per_s = {t: (after.cpu[t] - before.cpu[t]) / span for t in TIERS}
        self.idle_commands_per_s = (after.redis_commands - before.redis_commands) / span

    def cost(self, name: str, units: int, unit: str, before: Snapshot, after: Snapshot) -> Cost:
        span = after.at - before.at
        cpu_ms = {
            tier: max(0.0, after.cpu[tier] - before.cpu[tier] - self.idle_cpu_per_s[tier] * span)
            * 1000
            / units
            for tier in TIERS
        }
        commands = after.redis_commands - before.redis_commands - self.idle_commands_per_s * span
        return Cost(name, units, unit, span, cpu_ms, max(0.0, commands) / units)


async def post_events(
    client: httpx.AsyncClient, token: str, events: list[dict[str, Any]]
) -> list[str]:
    """Post every event, `CONCURRENCY` at a time; the ids the hub gave them."""
    ids: list[str] = [""] * len(events)
    queue = iter(enumerate(events))

    async def producer() -> None:
        for index, event in queue:
            response = await client.post(
                "/v1/notifications",
                json={"event": event},
                headers={"Authorization": f"Bearer {token}", "Api-Version": "3.0"},
            )
            if response.status_code >= 300:
                raise RuntimeError(f"ingest refused: {response.status_code} {response.text[:300]}")
            ids[index] = response.json()["id"]

    await asyncio.gather(*(producer() for _ in range(CONCURRENCY)))
    return ids


async def get_many(client: httpx.AsyncClient, path: str, token: str, count: int) -> None:
    """`count` GETs of `path`, `CONCURRENCY` at a time."""
    remaining = iter(range(count))

    async def getter() -> None:
        for _ in remaining:
            response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            response.raise_for_status()

    await asyncio.gather(*(getter() for _ in range(CONCURRENCY)))


async def wait_for(done: Callable[[], Awaitable[bool]], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not await done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not delivered within {timeout:g} s: {what}")
        await asyncio.sleep(0.05)


class HeldStreams:
    """`USERS` times `STREAMS_PER_USER` Push API streams, each counting the frames it receives."""

    def __init__(self, port: int, tokens: list[str]) -> None:
        self.port, self.tokens = port, tokens
        self.frames = 0
        self.tasks: list[asyncio.Task[None]] = []
        self.writers: list[asyncio.StreamWriter] = []

    async def open(self) -> None:
        for user, token in enumerate(self.tokens):
            opened = await asyncio.gather(
                *(
                    event_source_connect(
                        self.port, client_id=f"cap-{user}-{k}", token=token, last_id=""
                    )
                    for k in range(STREAMS_PER_USER)
                )
            )
            for reader, writer, status in opened:
                if " 200 " not in f"{status} ":
                    raise RuntimeError(f"stream refused: {status}")
                self.writers.append(writer)
                self.tasks.append(asyncio.create_task(self._read(reader)))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(OSError):
            async for frame, _ in event_source_frames(reader):
                if b"\nevent: newMessage" in b"\n" + frame:
                    self.frames += 1

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            writer.close()


def prepare(receiver_url: str) -> dict[str, Any]:
    """Clients, tokens, one subscription per phase's event type, stream users and phones."""
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from devices.models import Device, Preference, Registration
    from events.models import EventType
    from notifyhub.models import Account
    from notifyhub.services import client_create
    from notifyhub.tenancy import HUB
    from subscriptions.services import subscription_create

    objects = harness.prepare_objects(subscriptions=0)
    EventType.objects.bulk_create(EventType(id=f"cap.{name}") for name in CAP_TYPES)
    client_id = objects.application.client_id
    fifo = client_create(name="capacity-fifo", scopes=[settings.SCOPE_CONSUMER])
    paged = subscription_create(
        reach=HUB, client_id=client_id, event_type_ids=["cap.paged"], subscribed_by="bench"
    )
    subscription_create(
        reach=HUB,
        client_id=fifo.application.client_id,
        event_type_ids=["cap.fifo"],
        subscribed_by="bench",
    )
    subscription_create(
        reach=HUB,
        client_id=client_id,
        event_type_ids=["cap.webhook"],
        subscribed_by="bench",
        notification_url=receiver_url,
    )
    users = [get_user_model().objects.create_user(f"cap-{u}") for u in range(USERS)]
    account = Account.objects.create(id="cap")
    for i in range(PHONES):
        device = Device.objects.create(
            account=account,
            app_name="com.capacity.phone",
            device_id=f"d{i}",
            mobile_device_id=f"m{i}",
            platform="ios" if i % 2 == 0 else "android",
            sip_proxy_server="sip.capacity",
            revision="1-capacity",
        )
        registration = Registration.objects.create(
            device=device,
            token=f"{i:064x}" if i % 2 == 0 else f"fcm:capacity-{i}",
            notification_type="apns" if i % 2 == 0 else "fcm",
        )
        Preference.objects.create(device=device, registration=registration, name="chat")
    return {
        "token": objects.token,
        "paged": str(paged.id),
        "fifo_token": harness.access_token(fifo.application, [settings.SCOPE_CONSUMER]),
        "stream_tokens": [
            harness.access_token(objects.application, [settings.SCOPE_CONSUMER], user=user)
            for user in users
        ],
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        worker = subprocess.Popen(
            [
                str(harness.BIN / "celery"),
                *("--app", "notifyhub", "worker", "--loglevel", "INFO"),
                *("--concurrency", "2", "--without-gossip", "--without-mingle"),
            ],
            cwd=harness.ROOT,
            env={**env, "NOTIFYHUB_DB_CONN_MAX_AGE": "600"},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text():
        if time.monotonic() > deadline or worker.poll() is not None:
            raise RuntimeError(f"worker did not start: {log.read_text()[-3000:]}")
        time.sleep(0.2)
    return worker


async def run_phases(
    meter: Meter, port: int, setup: dict[str, Any], fakes: FakesProcess, receiver: Any, n: int
) -> list[Cost]:
    from asgiref.sync import sync_to_async

    from subscriptions.models import Delivery, Notification

    costs: list[Cost] = []
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=60
    ) as client:

        async def phase(
            name: str,
            work: Callable[[], Awaitable[None]],
            units: int,
            unit: str = "event",
            delivered: Callable[[], Awaitable[bool]] | None = None,
        ) -> None:
            before = meter.snapshot()
            await work()
            if delivered is not None:
                await wait_for(delivered, name)
            cost = meter.cost(name, units, unit, before, meter.snapshot())
            costs.append(cost)
            print(
                f"{name}: {cost.seconds:.1f} s, "
                + ", ".join(f"{t} {ms:.3f} ms" for t, ms in cost.cpu_ms.items())
                + f", {cost.redis_commands:.1f} Redis commands per {unit}",
                flush=True,
            )

        def ingest(
            type_id: str, payload: Callable[[int], dict[str, Any]]
        ) -> Callable[[], Awaitable[None]]:
            async def work() -> None:
                events = [{"type": type_id, "payload": payload(i)} for i in range(n)]
                await post_events(client, setup["token"], events)

            return work

        token = setup["token"]
        bearer = {"Authorization": f"Bearer {token}"}
        # Warm the web process's code paths (and its database threads) before any figure.
        await get_many(client, "/bench/minimal", token, 200)
        await ingest("cap.warm", lambda i: {"i": i})()

        await phase(
            "minimal authenticated GET (baseline)",
            lambda: get_many(client, "/bench/minimal", token, n),
            n,
            "request",
        )
        await phase("ingest, no subscriber", ingest("cap.none", lambda i: {"i": i}), n)
        await phase("ingest into a paged pull queue", ingest("cap.paged", lambda i: {"i": i}), n)

        paged_path = f"/notification/v1/subscriptions/{setup['paged']}/notifications?size=100"

        async def read_pages() -> None:
            while True:
                response = await client.get(paged_path, headers=bearer)
                response.raise_for_status()
                if not response.json()["results"]:
                    return

        await phase("paged pull, pages of 100", read_pages, n, "notification")
        await phase("ingest into a FIFO pull queue", ingest("cap.fifo", lambda i: {"i": i}), n)

        async def fifo_empty() -> bool:
            return not await sync_to_async(Notification.objects.exists)()

        await phase(
            "FIFO pull, one per GET",
            lambda: get_many(client, "/api/v3/integration/notifications", setup["fifo_token"], n),
            n,
            "notification",
            fifo_empty,
        )

        async def webhooks_in() -> bool:
            """The receiver has every request and the worker has recorded every outcome."""
            if len(receiver.requests) < n:
                return False
            recorded = Delivery.objects.filter(status=Delivery.Status.DELIVERED).count
            return await sync_to_async(recorded)() >= n

        await phase(
            "ingest into a webhook, delivered",
            ingest("cap.webhook", lambda i: {"i": i}),
            n,
            delivered=webhooks_in,
        )

        streams = HeldStreams(port, setup["stream_tokens"])
        await streams.open()
        await asyncio.sleep(2)  # Their opens' database bursts are over.
        per_event = STREAMS_PER_USER

        async def frames_in() -> bool:
            return streams.frames >= n * per_event

        try:
            await phase(
                f"ingest into {per_event} streams of one user (of {len(streams.writers)} held),"
                " delivered",
                ingest("newMessage", lambda i: {"user_id": f"cap-{i % USERS}", "i": i}),
                n,
                delivered=frames_in,
            )
        finally:
            streams.close()

        fakes.call("reset_counts")

        async def pushed() -> bool:
            return fakes.call("counts")["answered"] >= n * PHONES

        await phase(
            f"ingest into {PHONES} phones (5 APNs, 5 FCM), pushed",
            ingest("chat", lambda i: {"account_id": "cap", "i": i}),
            n,
            delivered=pushed,
        )
    return costs


def report(costs: list[Cost]) -> None:
    baseline = costs[0]
    print(
        "\n| work | per | web CPU ms | worker CPU ms | PostgreSQL CPU ms | Redis CPU ms "
        "| Redis commands | all tiers, to the baseline |\n|---|---|---|---|---|---|---|---|"
    )
    for cost in costs:
        ms = cost.cpu_ms
        print(
            f"| {cost.name} | {cost.unit} | {ms['web']:.2f} | {ms['worker']:.2f} "
            f"| {ms['postgres']:.2f} | {ms['redis']:.3f} | {cost.redis_commands:.1f} "
            f"| {cost.total_ms / baseline.total_ms:.1f}x |"
        )
    by_name = {cost.name: cost for cost in costs}
    print("\nPer core (1,000 ms of CPU / the tier's cost):")
    for cost in costs[1:]:
        tiers = ", ".join(
            f"{tier} {1000 / ms:,.0f}/s" for tier, ms in cost.cpu_ms.items() if ms >= 0.01
        )
        print(f"- {cost.name}: {tiers}")
    for cost in costs:
        record(
            f"capacity: CPU per {cost.unit}, {cost.name} (all tiers)",
            round(cost.total_ms, 3),
            "ms",
            baseline_name=baseline.name,
            baseline=round(baseline.total_ms, 3),
            higher_is_better=False,
        )
    push = next(cost for name, cost in by_name.items() if "phones" in name)
    pushes_per_core = 1000 / (push.cpu_ms["worker"] / PHONES)
    print(f"\npushes per worker core: {pushes_per_core:,.0f}/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000, help="events per phase")
    args = parser.parse_args()

    from tests.receivers import Behaviour, receiving

    work = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    pg = PrivatePostgres()
    pg.start(max_connections=100)
    redis_server = PrivateRedis()
    redis_server.start()
    harness.BENCH_DB = pg.url("nh_capacity")
    harness.REDIS_URL = redis_server.url
    fakes = FakesProcess(work / "tls")
    web: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    try:
        harness.setup_django()
        with receiving(Behaviour()) as receiver:
            setup = prepare(receiver.url)
            env = harness.server_env(
                NOTIFYHUB_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
                NOTIFYHUB_STREAM_MAX_PER_PRINCIPAL=str(10 * STREAMS_PER_USER),
                NOTIFYHUB_STREAM_MAX_SESSIONS_PER_PRINCIPAL=str(10 * STREAMS_PER_USER),
                **{name: str(value) for name, value in fakes.settings.items()},
            )
            web, port = start_daphne("bench.asgi:application", env, work / "web.log")
            worker = start_worker(env, work / "worker.log")
            postmaster = int((pg.dir / "data" / "postmaster.pid").read_text().split()[0])
            assert redis_server.process is not None
            meter = Meter(
                {
                    "web": web.pid,
                    "worker": worker.pid,
                    "postgres": postmaster,
                    "redis": redis_server.process.pid,
                },
                redis_server.url,
            )
            time.sleep(3)  # The worker's and web process's start-up work is over.
            meter.measure_idle(IDLE_SECONDS)
            idle = ", ".join(f"{t} {s * 1000:.1f} ms/s" for t, s in meter.idle_cpu_per_s.items())
            print(
                f"idle: {idle}, {meter.idle_commands_per_s:.1f} Redis commands/s"
                f" ({harness.machine()})",
                flush=True,
            )
            costs = asyncio.run(run_phases(meter, port, setup, fakes, receiver, args.events))
        report(costs)
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)  # The worker and its pool.
            worker.wait(timeout=30)
        if web is not None:
            web.terminate()
            web.wait(timeout=30)
        fakes.stop()
        redis_server.stop()
        pg.stop()
        pg.cleanup()


if __name__ == "__main__":
    main()
