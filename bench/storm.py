"""Reconnect storm: N streams on one web process, which is restarted while events keep flowing.

N streams (BENCH_STORM_N, 10,000) of U users (BENCH_STORM_USERS, 100; a browser per stream, as
after a deploy) are held by one daphne; a second daphne takes the producer's 20 events/s, each
for one user (so each reaches N / U streams). The streams' process is stopped (SIGTERM) and a
new one started on the same port; every client reconnects as EventSource does: after the
`retry:` it was given (2 s), with `Last-Event-ID`, again after each failed attempt.

Measured: how long until every client is back (a 200 from the new process, and every event
ingested before its reconnect received: the replay done), events lost and repeated per client
over the whole run, open rate during the storm and for a fresh open of N, database connections
and memory per stream once idle. Baselines in the same run: django-eventstream's stock view
opening BENCH_STORM_STOCK_N (1000) streams the same way (100 at a time), and the ceiling of an
open on this process: the stream endpoint's own 422 (authenticated, no `clientId`) on a new
connection each, which does everything an open does before its session (`refusals_per_s`).

Run: `.venv/bin/python bench/storm.py` (as root it runs PostgreSQL as the `postgres` user).
"""

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.streams import (  # noqa: E402  (the path above first)
    BIN,
    FRAME_ID,
    REDIS_URL,
    SETUP_PRELUDE,
    PrivatePostgres,
    Receipts,
    event_source_connect,
    event_source_frames,
    free_port,
    open_many,
    pct,
    proc_stats,
    run_python,
    start_stock,
)
from notifyhub.serving import LISTEN_BACKLOG  # noqa: E402  (the path above first)

N = int(os.environ.get("BENCH_STORM_N", "10000"))
USERS = int(os.environ.get("BENCH_STORM_USERS", "100"))
STOCK_N = int(os.environ.get("BENCH_STORM_STOCK_N", "1000"))
CEILING_N = 2000  # refused requests timed for the ceiling of an open
RATE = 20  # events/s
RETRY = 2.0  # the `retry:` the hub sends, in seconds
OPEN_BATCH = 100
SEQ = re.compile(rb'"seq": (\d+)[,}]')

SETUP = (
    SETUP_PRELUDE
    + """
consumer = client_create(name="storm-consumer", scopes=["notification:consent:consumer"])
producer = client_create(name="storm-producer", scopes=["events:publish"], hub_operator=True)
users = [get_user_model().objects.create_user(f"storm-{u}") for u in range(USERS)]
print(json.dumps({
    "consumers": [token(consumer.application, ["notification:consent:consumer"], u)
                  for u in users],
    "producer": token(producer.application, ["events:publish"]),
}))
"""
)


@dataclass
class Web:
    """A daphne of notifyhub on a fixed port (so a restart can take the same one)."""

    env: dict[str, str]
    port: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as handle:
            self.popen = subprocess.Popen(
                [
                    str(BIN / "daphne"),
                    "--endpoint",
                    # The listen backlog `manage.py serve` gives (notifyhub/serving.py), not
                    # Twisted's 50: with 50, most of a storm's connections were dropped at the
                    # handshake and retried on TCP's backoff (1, 3, 7, 15, 31 s...).
                    f"tcp:port={self.port}:interface=127.0.0.1:backlog={LISTEN_BACKLOG}",
                    "notifyhub.asgi:application",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
            )

    def wait_listening(self, timeout: float = 30) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"daphne did not start: {self.log.read_text()[-2000:]}")

    def stop(self, timeout: float = 30) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


@dataclass
class Client:
    """One EventSource: reconnects after `retry:` with Last-Event-ID, as a browser does."""

    n: int
    user: int
    token: str
    port: int
    seqs: list[int] = field(default_factory=list)
    received_at: dict[int, float] = field(default_factory=dict)
    last_id: str = ""
    opens: list[float] = field(default_factory=list)  # when each 200 arrived
    lost_at: list[float] = field(default_factory=list)  # when each stream ended
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
                await self._stream(stop)
            if stop.is_set():
                return
            self.lost_at.append(time.perf_counter())
            await asyncio.sleep(RETRY)

    async def _stream(self, stop: asyncio.Event) -> None:
        reader, writer, status = await event_source_connect(
            self.port, client_id=f"storm-{self.n}", token=self.token, last_id=self.last_id
        )
        try:
            if " 200 " not in status:
                raise ValueError(status)
            self.opens.append(time.perf_counter())
            self.opened.set()
            async for frame, now in event_source_frames(reader):
                event_id = FRAME_ID.search(frame)
                seq = SEQ.search(frame)
                if event_id is None or seq is None:
                    continue
                self.last_id = event_id.group(1).decode()
                number = int(seq.group(1))
                self.seqs.append(number)
                self.received_at.setdefault(number, now)
        finally:
            writer.close()


async def produce(
    url: str, token: str, stop: asyncio.Event, sent: dict[int, tuple[int, float]]
) -> None:
    """20 events/s, each for one user in turn; `sent[seq] = (user, time)` once stored."""
    async with httpx.AsyncClient(timeout=30) as http:
        started = time.perf_counter()
        seq = 0
        while not stop.is_set():
            await asyncio.sleep(max(0.0, started + seq / RATE - time.perf_counter()))
            user = seq % USERS
            response = await http.post(
                f"{url}/v1/notifications",
                json={
                    "event": {
                        "type": "newMessage",
                        "payload": {"user_id": f"storm-{user}", "seq": seq},
                    }
                },
                headers={"Authorization": f"Bearer {token}", "Api-Version": "3.0"},
            )
            response.raise_for_status()
            sent[seq] = (user, time.perf_counter())
            seq += 1


async def refusals_per_s(port: int, token: str, count: int) -> float:
    """The ceiling of an open, same process, same run: how fast the stream endpoint answers a
    request refused only for its parameters (no `clientId`: 422), each on a new connection, 100
    at a time. That answer costs all an open does up to and including authentication (the
    connection, the middleware, the token) and none of what follows (the session, the replay,
    the stream)."""

    async def one() -> bool:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(
                b"GET /api/push/subscribe?kinds=newMessage HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Accept: text/event-stream\r\nConnection: close\r\n"
                + f"Authorization: Bearer {token}\r\n\r\n".encode()
            )
            answer = await reader.read()
            return answer.startswith(b"HTTP/1.1 422 ")
        finally:
            writer.close()

    started = time.perf_counter()
    refused = 0
    for _ in range(0, count, OPEN_BATCH):
        refused += sum(await asyncio.gather(*(one() for _ in range(OPEN_BATCH))))
    if refused != count:
        raise RuntimeError(f"{count - refused} of {count} were not refused with 422")
    return count / (time.perf_counter() - started)


def web_connections(pg: PrivatePostgres, db: str, app: str) -> int:
    sql = (
        "select count(*) from pg_stat_activity"  # noqa: S608  (bench-only names)
        f" where datname = '{db}' and application_name = '{app}'"
    )
    return int(pg.psql(sql))


async def storm(pg: PrivatePostgres, workdir: Path) -> dict[str, object]:
    db = f"nh_storm_{os.getpid()}"
    pg.psql(f"drop database if exists {db}")
    pg.psql(f"create database {db}")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "notifyhub.settings",
        "DATABASE_URL": pg.url(db),
        "REDIS_URL": REDIS_URL,
        "NOTIFYHUB_REDIS_PREFIX": f"nh-storm-{os.getpid()}",
        "SECRET_KEY": "bench-only-not-secret",
        "ALLOWED_HOSTS": "127.0.0.1",
        "NOTIFYHUB_SECURE_SSL_REDIRECT": "0",
        "NOTIFYHUB_HSTS_SECONDS": "0",
        "NOTIFYHUB_LOG_LEVEL": "WARNING",
        "DEBUG": "0",
        "NOTIFYHUB_STREAM_MAX_PER_PRINCIPAL": str(N),
        "NOTIFYHUB_STREAM_MAX_SESSIONS_PER_PRINCIPAL": str(N),
    }
    tokens = json.loads(run_python(f"USERS = {USERS}\n" + SETUP, env).strip().splitlines()[-1])
    streams = Web({**env, "PGAPPNAME": "storm-streams"}, free_port(), workdir / "streams.log")
    ingest = Web({**env, "PGAPPNAME": "storm-ingest"}, free_port(), workdir / "ingest.log")
    out: dict[str, object] = {"streams": N, "users": USERS}
    streams.start()
    ingest.start()
    streams.wait_listening()
    ingest.wait_listening()
    assert streams.popen is not None
    fresh = proc_stats(streams.popen.pid)

    stop = asyncio.Event()
    clients = [Client(n, n % USERS, tokens["consumers"][n % USERS], streams.port) for n in range(N)]
    started = time.perf_counter()
    for batch in range(0, N, OPEN_BATCH):
        group = clients[batch : batch + OPEN_BATCH]
        for client in group:
            client.task = asyncio.get_running_loop().create_task(client.run(stop))
        await asyncio.wait_for(asyncio.gather(*(c.opened.wait() for c in group)), 120)
    opened_s = time.perf_counter() - started
    out["fresh_opens_per_s"] = round(N / opened_s, 1)
    await asyncio.sleep(5)
    out["kib_per_stream_before"] = round(
        (proc_stats(streams.popen.pid)["rss_kib"] - fresh["rss_kib"]) / N, 1
    )

    sent: dict[int, tuple[int, float]] = {}
    producing = asyncio.Event()
    producer = asyncio.get_running_loop().create_task(
        produce(f"http://127.0.0.1:{ingest.port}", tokens["producer"], producing, sent)
    )
    await asyncio.sleep(5)

    # The deploy: SIGTERM, and a new process on the same port as soon as the old one is gone.
    restart_at = time.perf_counter()
    opens_before = [len(c.opens) for c in clients]
    await asyncio.to_thread(streams.stop)
    out["old_process_exit_s"] = round(time.perf_counter() - restart_at, 2)
    streams.start()
    profile = None
    if os.environ.get("BENCH_STORM_PROFILE"):  # py-spy's flame graph of the new process
        assert streams.popen is not None
        profile = subprocess.Popen(
            [
                str(BIN / "py-spy"),
                "record",
                "--duration",
                "20",
                "--pid",
                str(streams.popen.pid),
                "--output",
                os.environ["BENCH_STORM_PROFILE"],
                "--format",
                "speedscope",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    await asyncio.to_thread(streams.wait_listening)
    out["new_process_listening_s"] = round(time.perf_counter() - restart_at, 2)
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline:
        if all(len(c.opens) > b for c, b in zip(clients, opens_before, strict=True)):
            break
        await asyncio.sleep(0.1)
    reopened = [c.opens[b] for c, b in zip(clients, opens_before, strict=True) if len(c.opens) > b]
    out["reconnected"] = len(reopened)
    first_attempt = min(c.lost_at[-1] for c in clients if c.lost_at) + RETRY
    if reopened:
        out["storm_opens_per_s"] = round(len(reopened) / (max(reopened) - first_attempt), 1)
    if profile is not None:
        await asyncio.to_thread(profile.wait)
    await asyncio.sleep(10)  # events keep flowing after the storm
    producing.set()
    await producer
    # The last events reach every stream, and every replay finishes (queued behind the opens
    # of a large storm), up to a minute: what is still missing then counts as lost.
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        owed: dict[int, set[int]] = {}
        for seq, (user, _) in sent.items():
            owed.setdefault(user, set()).add(seq)
        if all(owed.get(c.user, set()) <= set(c.seqs) for c in clients):
            break
        await asyncio.sleep(1)
    await asyncio.sleep(2)  # a repeat, if any, still counts
    stop.set()

    # Back = the 200 from the new process, and every event of the client's user ingested
    # before that received (the replay done).
    back: list[float] = []
    lost = repeated = expected_total = 0
    lossy: list[dict[str, object]] = []
    for client, before in zip(clients, opens_before, strict=True):
        mine = [seq for seq, (user, _) in sent.items() if user == client.user]
        expected_total += len(mine)
        missing = sorted(set(mine) - set(client.seqs))
        lost += len(missing)
        if missing and len(lossy) < 5:
            lossy.append(
                {
                    "client": client.n,
                    "missing": missing[:10],
                    "missing_sent_s": [round(sent[m][1] - restart_at, 2) for m in missing[:10]],
                    "opens_s": [round(t - restart_at, 2) for t in client.opens],
                    "lost_s": [round(t - restart_at, 2) for t in client.lost_at],
                }
            )
        repeated += len(client.seqs) - len(set(client.seqs))
        if len(client.opens) > before:
            reopened_at = client.opens[before]
            owed = [
                client.received_at.get(seq, float("inf"))
                for seq in mine
                if sent[seq][1] < reopened_at
            ]
            back.append(max([reopened_at, *owed]) - restart_at)
    out["all_back_s"] = round(max(back), 2) if back else None
    out["back_p50_s"] = round(pct(back, 0.5), 2)
    out["events_sent"] = len(sent)
    out["deliveries_expected"] = expected_total
    out["lost"] = lost
    out["repeated"] = repeated
    if lossy:
        out["lossy_clients"] = lossy

    await asyncio.sleep(8)  # idle: past NOTIFYHUB_WEB_DB_IDLE (5 s)
    out["db_connections_idle"] = web_connections(pg, db, "storm-streams")
    out["kib_per_stream_after"] = round(
        (proc_stats(streams.popen.pid)["rss_kib"] - fresh["rss_kib"]) / N, 1
    )
    out["ceiling_refusals_per_s"] = round(
        await refusals_per_s(streams.port, tokens["consumers"][0], CEILING_N), 1
    )
    for client in clients:
        if client.task is not None:
            client.task.cancel()
    await asyncio.gather(*(c.task for c in clients if c.task), return_exceptions=True)
    streams.stop()
    ingest.stop()
    return out


async def stock_opens(pg: PrivatePostgres, workdir: Path) -> dict[str, object]:
    server = start_stock(pg, workdir)
    try:
        started = time.perf_counter()
        clients = await open_many(server, STOCK_N, Receipts())
        elapsed = time.perf_counter() - started
        for client in clients:
            client.close()
        return {"opened": len(clients), "opens_per_s": round(len(clients) / elapsed, 1)}
    finally:
        server.stop()


def main() -> None:
    global N
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=N, help="N (BENCH_STORM_N)")
    N = parser.parse_args().streams
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < N + 1000:
        sys.exit(f"needs {N + 1000} file descriptors; the hard limit is {hard}")
    workdir = Path(tempfile.mkdtemp(prefix="nh-storm-"))
    pg = PrivatePostgres()
    try:
        pg.start(max_connections=STOCK_N + 100)
        stock = asyncio.run(stock_opens(pg, workdir))
        print("django-eventstream", json.dumps(stock), flush=True)
        ours = asyncio.run(storm(pg, workdir))
        print("notifyhub", json.dumps(ours), flush=True)
    finally:
        try:
            pg.stop()
        finally:
            pg.cleanup()

    from bench.summary import record

    record(
        f"reconnect storm of {N} streams: stream opens/s",
        float(ours["storm_opens_per_s"]),  # type: ignore[arg-type]
        "opens/s",
        baseline_name="stock django-eventstream opens/s",
        baseline=float(stock["opens_per_s"]),  # type: ignore[arg-type]
        target="≥ 5x stock",
    )
    record(
        f"reconnect storm of {N} streams: stream opens/s",
        float(ours["storm_opens_per_s"]),  # type: ignore[arg-type]
        "opens/s",
        baseline_name="the stream endpoint's 422 on a new connection (ceiling)",
        baseline=float(ours["ceiling_refusals_per_s"]),  # type: ignore[arg-type]
        baseline_unit="answers/s",
    )
    print(f"\n## Reconnect storm: {N} streams of {USERS} users, {RATE} events/s\n")
    print("| measure | value |")
    print("|---|---|")
    for key, value in ours.items():
        print(f"| {key} | {value} |")
    print(f"| stock django-eventstream opens/s ({STOCK_N}) | {stock['opens_per_s']} |")
    print(f"\n(logs in {workdir})")


if __name__ == "__main__":
    main()
