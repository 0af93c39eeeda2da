"""Push API streams against django-eventstream's stock view, side by side in one run.

Both run under one daphne process each, on a private PostgreSQL cluster this script starts (so a
benchmark never exhausts a shared server's connections) and the REDIS_URL Redis. Measured:
memory per idle stream (RSS delta / N) at N = 1000, database connections, threads and file
descriptors held while idle, fan-out of one event to 1000 streams (ingest -> receipt, p50/p99
over 10 events), and 20 events/s to 100 streams for 10 s (p50/p99). Then, on a PostgreSQL with
the stock `max_connections = 100`: how many idle streams each holds (notifyhub: 5000).

Run: `.venv/bin/python bench/streams.py` (as root it runs PostgreSQL as the `postgres` user).
Options by environment: BENCH_N (1000), BENCH_N_MANY (5000), BENCH_STOCK_LIMIT_N (200).
"""

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/6")
N = int(os.environ.get("BENCH_N", "1000"))
N_MANY = int(os.environ.get("BENCH_N_MANY", "5000"))
STOCK_LIMIT_N = int(os.environ.get("BENCH_STOCK_LIMIT_N", "200"))
SEQ = re.compile(rb'"seq": (\d+)[,}]')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- A private PostgreSQL cluster ---


class PrivatePostgres:
    """initdb + pg_ctl in a temporary directory, on a free loopback port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="nh-bench-pg-"))
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.dir, "postgres")
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres")

    def _run(self, *argv: str) -> None:
        subprocess.run(
            [*self.as_postgres, *argv], check=True, stdout=subprocess.DEVNULL, cwd=self.dir
        )

    def start(self, max_connections: int) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir}"
            f" -c max_connections={max_connections} -c fsync=off -c synchronous_commit=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.dir / "data"),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def url(self, name: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def psql(self, sql: str, db: str = "postgres") -> str:
        return subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                db,
                "-Atc",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def connections(self, db: str) -> int | str:
        sql = f"select count(*) from pg_stat_activity where datname = '{db}'"  # noqa: S608
        try:
            return int(self.psql(sql))
        except subprocess.CalledProcessError as exc:
            return "all: the server refused another client (" + exc.stderr.strip()[:80] + ")"

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


# --- Servers ---


def proc_stats(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    return {"rss_kib": rss, "threads": threads, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


@dataclass
class Server:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    db: str
    stream_path: str
    headers: dict[str, str]
    ingest: "object"
    per_stream_query: bool = False

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def run_python(code: str, env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env, cwd=ROOT
    ).stdout


def start_daphne(app: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    with log.open("wb") as handle:
        popen = subprocess.Popen(
            [str(BIN / "daphne"), "--bind", "127.0.0.1", "--port", str(port), app],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return popen, port
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"daphne {app} did not start: {log.read_text()}")


# Migrate, and `token(app, scopes, user)` minting an access token: the start of every bench's setup.
SETUP_PRELUDE = """
import json, django
django.setup()
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from oauth2_provider.models import AccessToken, set_token_value
from oauthlib.common import generate_token
from notifyhub.services import client_create
call_command("migrate", verbosity=0)
def token(app, scopes, user=None):
    raw = generate_token()
    row = AccessToken(application=app, user=user, scope=" ".join(scopes),
                      expires=timezone.now() + timedelta(hours=2))
    set_token_value(row, raw)
    row.save()
    return raw
"""

NOTIFYHUB_SETUP = (
    SETUP_PRELUDE
    + """
user = get_user_model().objects.create_user("bench")
consumer = client_create(name="bench-consumer", scopes=["notification:consent:consumer"])
producer = client_create(name="bench-producer", scopes=["events:publish"], hub_operator=True)
print(json.dumps({
    "consumer": token(consumer.application, ["notification:consent:consumer"], user),
    "producer": token(producer.application, ["events:publish"]),
}))
"""
)


def notifyhub_setup(
    pg: PrivatePostgres, *, streams: int
) -> tuple[str, dict[str, str], dict[str, str]]:
    """A fresh database on `pg` migrated for notifyhub, with a consumer (user `bench`) and a
    producer: the database's name, the environment to serve it with (caps above `streams` streams
    of one principal) and the two access tokens."""
    db = f"nh_bench_{os.getpid()}"
    pg.psql(f"drop database if exists {db}")
    pg.psql(f"create database {db}")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "notifyhub.settings",
        "DATABASE_URL": pg.url(db),
        "REDIS_URL": REDIS_URL,
        "NOTIFYHUB_REDIS_PREFIX": f"nh-bench-{os.getpid()}",
        "SECRET_KEY": "bench-only-not-secret",
        "ALLOWED_HOSTS": "127.0.0.1",
        "NOTIFYHUB_SECURE_SSL_REDIRECT": "0",
        "NOTIFYHUB_HSTS_SECONDS": "0",
        "NOTIFYHUB_LOG_LEVEL": "WARNING",
        "DEBUG": "0",
        # Every bench stream is one principal's: caps above them.
        "NOTIFYHUB_STREAM_MAX_PER_PRINCIPAL": str(2 * streams),
        "NOTIFYHUB_STREAM_MAX_SESSIONS_PER_PRINCIPAL": str(2 * streams),
    }
    tokens = json.loads(run_python(NOTIFYHUB_SETUP, env).strip().splitlines()[-1])
    return db, env, tokens


async def notifyhub_ingest(
    client: httpx.AsyncClient, port: int, token: str, seq: int, *, user: str = "bench"
) -> None:
    """Post one `newMessage` for `user` carrying `seq` (the bench streams are user `bench`'s)."""
    response = await client.post(
        f"http://127.0.0.1:{port}/v1/notifications",
        json={"event": {"type": "newMessage", "payload": {"user_id": user, "seq": seq}}},
        headers={"Authorization": f"Bearer {token}", "Api-Version": "3.0"},
    )
    response.raise_for_status()


def start_notifyhub(pg: PrivatePostgres, workdir: Path) -> Server:
    db, env, tokens = notifyhub_setup(pg, streams=max(N, N_MANY))
    popen, port = start_daphne("notifyhub.asgi:application", env, workdir / "notifyhub.log")

    async def ingest(client: httpx.AsyncClient, seq: int) -> None:
        await notifyhub_ingest(client, port, tokens["producer"], seq)

    return Server(
        name="notifyhub",
        popen=popen,
        port=port,
        db=db,
        stream_path="/api/push/subscribe?kinds=newMessage&clientId=",
        headers={"Authorization": f"Bearer {tokens['consumer']}"},
        ingest=ingest,
        per_stream_query=True,
    )


def start_stock(pg: PrivatePostgres, workdir: Path) -> Server:
    db = f"es_bench_{os.getpid()}"
    pg.psql(f"drop database if exists {db}")
    pg.psql(f"create database {db}")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.eventstream_app.settings",
        "BENCH_STOCK_DATABASE_URL": pg.url(db),
        "REDIS_URL": REDIS_URL,
        "PYTHONPATH": str(ROOT),
    }
    run_python(
        "import django; django.setup(); from django.core.management import "
        "call_command; call_command('migrate', verbosity=0)",
        env,
    )
    popen, port = start_daphne("bench.eventstream_app.asgi:application", env, workdir / "stock.log")

    async def ingest(client: httpx.AsyncClient, seq: int) -> None:
        response = await client.post(f"http://127.0.0.1:{port}/send?seq={seq}")
        response.raise_for_status()

    return Server(
        name="django-eventstream",
        popen=popen,
        port=port,
        db=db,
        stream_path="/events/",
        headers={},
        ingest=ingest,
    )


# --- Clients ---


@dataclass
class Receipts:
    sent: dict[int, float] = field(default_factory=dict)
    received: dict[int, list[float]] = field(default_factory=dict)

    def latencies_ms(self, seqs: list[int]) -> list[float]:
        return [(t - self.sent[seq]) * 1000 for seq in seqs for t in self.received.get(seq, [])]


class StreamClient:
    """A raw HTTP/1.1 SSE client: enough to open a stream and spot each event's `seq`."""

    def __init__(self, server: Server, n: int, receipts: Receipts) -> None:
        self.server, self.n, self.receipts = server, n, receipts
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    async def open(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                reader, self.writer = await asyncio.open_connection("127.0.0.1", self.server.port)
                path = self.server.stream_path + (
                    f"bench-{self.n}" if self.server.per_stream_query else ""
                )
                headers = "".join(f"{k}: {v}\r\n" for k, v in self.server.headers.items())
                self.writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                    f"{headers}\r\n".encode()
                )
                head = await reader.readuntil(b"\r\n\r\n")
                if b" 200 " not in head.split(b"\r\n", 1)[0]:
                    return False
                await reader.read(1)  # the first frame has started: the stream is open
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            self.close()
            return False
        self.task = asyncio.get_running_loop().create_task(self._read(reader))
        return True

    async def _read(self, reader: asyncio.StreamReader) -> None:
        buffer = b""
        try:
            while chunk := await reader.read(65536):
                now = time.perf_counter()
                buffer += chunk
                last = 0
                for match in SEQ.finditer(buffer):
                    self.receipts.received.setdefault(int(match.group(1)), []).append(now)
                    last = match.end()
                buffer = buffer[last:][-256:]
        except (OSError, asyncio.CancelledError):
            pass

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.writer is not None:
            self.writer.close()


# A frame's event id, as a reconnecting client remembers it for Last-Event-ID.
FRAME_ID = re.compile(rb"^id: (\S+)$", re.M)


async def event_source_connect(
    port: int, *, client_id: str, token: str, last_id: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """Open notifyhub's `newMessage` stream for `client_id` as an EventSource does (with
    `Last-Event-ID` once it has one); returns the reader, the writer and the status line (the
    caller checks it for 200 and closes the writer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    resume = f"Last-Event-ID: {last_id}\r\n" if last_id else ""
    writer.write(
        f"GET /api/push/subscribe?kinds=newMessage&clientId={client_id} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        f"Authorization: Bearer {token}\r\n{resume}\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    return reader, writer, head.split(b"\r\n", 1)[0].decode()


async def event_source_frames(
    reader: asyncio.StreamReader, stop: asyncio.Event | None = None
) -> AsyncIterator[tuple[bytes, float]]:
    """Each whole frame of an open stream, with the time its last chunk arrived, until the
    server closes it (or `stop` is set)."""
    buffer = b""
    while not (stop is not None and stop.is_set()) and (chunk := await reader.read(65536)):
        now = time.perf_counter()
        buffer += chunk
        *frames, buffer = buffer.split(b"\n\n")
        for frame in frames:
            yield frame, now


async def open_many(
    server: Server, count: int, receipts: Receipts, *, start: int = 0, timeout: float = 20
) -> list[StreamClient]:
    clients = [StreamClient(server, start + n, receipts) for n in range(count)]
    opened: list[StreamClient] = []
    for batch in range(0, count, 100):
        group = clients[batch : batch + 100]
        results = await asyncio.gather(*(c.open(timeout) for c in group))
        opened += [c for c, ok in zip(group, results, strict=True) if ok]
    return opened


async def wait_received(receipts: Receipts, seqs: list[int], expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(len(receipts.received.get(s, [])) >= expected for s in seqs):
            return
        await asyncio.sleep(0.02)


# --- Phases ---


async def measure(server: Server, pg: PrivatePostgres, seq0: int) -> dict[str, object]:
    out: dict[str, object] = {}
    receipts = Receipts()
    async with httpx.AsyncClient(timeout=30) as http:
        warm = await open_many(server, 1, receipts, start=10_000_000)
        await server.ingest(http, seq0)
        for c in warm:
            c.close()
        await asyncio.sleep(2)
        before = proc_stats(server.popen.pid)
        started = time.perf_counter()
        clients = await open_many(server, N, receipts)
        out["connect_all_s"] = round(time.perf_counter() - started, 1)
        out["opened"] = len(clients)
        await asyncio.sleep(3)
        idle = proc_stats(server.popen.pid)
        out["kib_per_stream"] = round(
            (idle["rss_kib"] - before["rss_kib"]) / max(1, len(clients)), 1
        )
        out["threads_idle"] = idle["threads"]
        out["threads_before"] = before["threads"]
        out["fds_idle"] = idle["fds"]
        out["db_connections_idle"] = pg.connections(server.db)

        fanout: list[float] = []
        missing = 0
        for rep in range(10):
            seq = seq0 + 1 + rep
            receipts.sent[seq] = time.perf_counter()
            await server.ingest(http, seq)
            await wait_received(receipts, [seq], len(clients), 30)
            got = receipts.latencies_ms([seq])
            missing += len(clients) - len(got)
            fanout += got
            await asyncio.sleep(0.5)
        out["fanout_p50_ms"] = round(pct(fanout, 0.5), 1)
        out["fanout_p99_ms"] = round(pct(fanout, 0.99), 1)
        out["fanout_missing"] = missing
        for c in clients:
            c.close()
        await asyncio.sleep(3)

        receipts = Receipts()
        clients = await open_many(server, 100, receipts, start=20_000)
        # Steady state, as for the fan-out: let the connect storm (each new stream's replay is a
        # database burst) settle first. Without this pause notifyhub's first ~8 events waited
        # up to 1.4 s behind 100 simultaneous replays (docs/benchmarks.md).
        await asyncio.sleep(3)
        seqs: list[int] = []
        base = seq0 + 100
        started = time.perf_counter()
        for k in range(200):  # 20 events/s for 10 s
            target = started + k / 20
            await asyncio.sleep(max(0.0, target - time.perf_counter()))
            receipts.sent[base + k] = time.perf_counter()
            await server.ingest(http, base + k)
            seqs.append(base + k)
        await wait_received(receipts, seqs, len(clients), 30)
        sustained = receipts.latencies_ms(seqs)
        out["sustained_p50_ms"] = round(pct(sustained, 0.5), 1)
        out["sustained_p99_ms"] = round(pct(sustained, 0.99), 1)
        out["sustained_missing"] = len(seqs) * len(clients) - len(sustained)
        for c in clients:
            c.close()
    return out


async def hold_many(
    server: Server, pg: PrivatePostgres, count: int, timeout: float
) -> dict[str, object]:
    receipts = Receipts()
    out: dict[str, object] = {"attempted": count}
    clients = await open_many(server, count, receipts, start=50_000, timeout=timeout)
    out["opened"] = len(clients)
    await asyncio.sleep(3)
    out["db_connections_idle"] = pg.connections(server.db)
    out.update({f"{k}_idle": v for k, v in proc_stats(server.popen.pid).items()})
    async with httpx.AsyncClient(timeout=10) as http:
        try:
            receipts.sent[1] = time.perf_counter()
            await server.ingest(http, 1)
            await wait_received(receipts, [1], len(clients), 30)
            out["ingest_while_held"] = "ok"
            out["delivered"] = len(receipts.received.get(1, []))
        except Exception as exc:
            out["ingest_while_held"] = f"failed: {type(exc).__name__}"
    for c in clients:
        c.close()
    return out


def redis_publish_rate(seconds: float = 2.0) -> float:
    """Raw PUBLISH/s from one client to a channel nobody reads: the fan-out floor of Redis."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        client.publish(f"nh-bench-{os.getpid()}-floor", b"x" * 200)
        count += 1
    return count / (time.perf_counter() - started)


def ratio(a: object, b: object) -> str:
    try:
        return f"{float(a) / float(b):.2f}"  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        return "-"


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="nh-bench-"))
    pg = PrivatePostgres()
    results: dict[str, dict[str, object]] = {}
    try:
        # Phase 1: enough connections for the stock view's one-per-stream, so both can hold N.
        pg.start(max_connections=N + 100)
        only = os.environ.get("BENCH_ONLY")
        starters = {"django-eventstream": start_stock, "notifyhub": start_notifyhub}
        for name, starter in starters.items():
            if only and name != only:
                continue
            server = starter(pg, workdir)
            try:
                results[server.name] = asyncio.run(measure(server, pg, 1000))
                print(server.name, json.dumps(results[server.name]), flush=True)
            finally:
                server.stop()
        if only:
            print(json.dumps(results, indent=1))
            return
        # Phase 2: a stock PostgreSQL (max_connections = 100).
        pg.stop()
        pg.start(max_connections=100)
        limits: dict[str, dict[str, object]] = {}
        server = start_notifyhub(pg, workdir)
        try:
            limits["notifyhub"] = asyncio.run(hold_many(server, pg, N_MANY, 60))
            print("notifyhub", json.dumps(limits["notifyhub"]), flush=True)
        finally:
            server.stop()
        server = start_stock(pg, workdir)
        try:
            limits["django-eventstream"] = asyncio.run(hold_many(server, pg, STOCK_LIMIT_N, 10))
            print("django-eventstream", json.dumps(limits["django-eventstream"]), flush=True)
        finally:
            server.stop()
    finally:
        try:
            pg.stop()
        finally:
            pg.cleanup()

    ours, stock = results["notifyhub"], results["django-eventstream"]
    publish_rate = redis_publish_rate()
    print(f"raw Redis PUBLISH (one client, same Redis): {publish_rate:,.0f}/s")
    sys.path.insert(0, str(ROOT))
    from bench.summary import record

    for key, label, target in (
        ("kib_per_stream", f"memory per idle stream (N = {N})", "< 32 KiB"),
        ("fanout_p99_ms", f"fan-out of one event to {N} streams, p99", "< 250 ms, ≤ stock"),
        ("sustained_p99_ms", "20 events/s to 100 streams, p99", "< 50 ms"),
    ):
        record(
            label,
            float(ours[key]),  # type: ignore[arg-type]
            "KiB" if key == "kib_per_stream" else "ms",
            baseline_name="stock django-eventstream",
            baseline=float(stock[key]),  # type: ignore[arg-type]
            target=target,
            higher_is_better=False,
        )
    record(
        f"fan-out to {N} streams, frames/s at p99",
        N / (float(ours["fanout_p99_ms"]) / 1000),  # type: ignore[arg-type]
        "frames/s",
        baseline_name="raw Redis PUBLISH",
        baseline=publish_rate,
    )
    print(f"\n## N = {N} idle streams, one daphne each, PostgreSQL max_connections = {N + 100}\n")
    print("| measure | notifyhub | django-eventstream | ratio |")
    print("|---|---|---|---|")
    for key in ours:
        print(f"| {key} | {ours[key]} | {stock[key]} | {ratio(ours[key], stock[key])} |")
    print("\n## PostgreSQL max_connections = 100\n")
    for name, figures in limits.items():
        print(f"- {name}: " + ", ".join(f"{k} = {v}" for k, v in figures.items()))
    print(f"\n(logs in {workdir})")


if __name__ == "__main__":
    main()
