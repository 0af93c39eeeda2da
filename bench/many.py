"""Many processes: `manage.py serve` (one daphne per core on one port) holding 20,000 idle streams.

    python bench/many.py [--streams 20000] [--processes 2] [--clients 2]

On a private PostgreSQL cluster with the stock `max_connections = 100` and the REDIS_URL Redis:

1. ingest alone: `--events` posts at 20/s, each for a user no stream belongs to; p50/p99 of the
   POST's answer (the baseline, same run);
2. `--streams` Push API streams opened across the processes (the kernel spreads them,
   SO_REUSEPORT), read by `--clients` client processes so that reading them is not one core's
   job; memory and file descriptors per web process, database connections once idle;
3. fan-out: 10 events for the streams' user, each to every stream; p50/p99 from the POST to each
   stream's receipt (one clock: CLOCK_MONOTONIC is shared by the processes of a machine);
4. ingest again, as in 1, while the streams are held: its p99 beside the baseline's.

The client processes share the machine's cores with the hub, PostgreSQL and Redis, so the fan-out
figures include the time the clients take to read 20,000 sockets.
"""

import argparse
import asyncio
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.streams import (
    ROOT,
    PrivatePostgres,
    Receipts,
    Server,
    free_port,
    notifyhub_ingest,
    notifyhub_setup,
    open_many,
    pct,
    proc_stats,
)
from bench.summary import record

FANOUT_EVENTS = 10
OPEN_TIMEOUT = 60.0
RATE = 20.0  # ingest events/s


def more_files() -> None:
    """Open files up to the hard limit (20,000 here, which an unprivileged container cannot
    raise): each web and client process holds its share of the streams, one socket each."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_serve(
    env: dict[str, str], processes: int, log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """`manage.py serve` on a free port (its daphnes inherit this process's open-file limit)."""
    port = free_port()
    argv = ["manage.py", "serve", "--port", str(port), "--processes", str(processes)]
    with log.open("wb") as handle:
        popen = subprocess.Popen(
            [sys.executable, *argv],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if len(web_processes(popen.pid)) == processes:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                return popen, port
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    raise RuntimeError(f"manage.py serve did not start: {log.read_text()}")


def web_processes(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in children]


# --- Client processes: each opens and reads its share of the streams ---


def client_main(conn: Connection, port: int, token: str, start: int, count: int) -> None:
    """Open `count` streams, say how many opened, then for each ("await", seq, timeout) answer
    with the receipt times of `seq` once every open stream has it (or the timeout passed)."""
    more_files()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def run() -> None:
        server = Server(
            name="notifyhub",
            popen=None,  # type: ignore[arg-type]  # this process does not own the server
            port=port,
            db="",
            stream_path="/api/push/subscribe?kinds=newMessage&clientId=",
            headers={"Authorization": f"Bearer {token}"},
            ingest=None,
            per_stream_query=True,
        )
        receipts = Receipts()
        clients = await open_many(server, count, receipts, start=start, timeout=OPEN_TIMEOUT)
        conn.send(len(clients))
        loop = asyncio.get_running_loop()
        while True:
            message = await loop.run_in_executor(None, conn.recv)
            if message[0] == "stop":
                break
            _, seq, timeout = message
            deadline = time.monotonic() + timeout
            while len(receipts.received.get(seq, [])) < len(clients):
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.01)
            conn.send(receipts.received.get(seq, []))
        for client in clients:
            client.close()

    asyncio.run(run())
    conn.close()


class Clients:
    def __init__(self, port: int, token: str, streams: int, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        share = streams // processes
        self.pipes: list[Connection] = []
        self.processes = []
        for index in range(processes):
            parent, child = context.Pipe()
            count = share if index < processes - 1 else streams - share * (processes - 1)
            process = context.Process(
                target=client_main, args=(child, port, token, index * share, count)
            )
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def opened(self) -> int:
        return sum(pipe.recv() for pipe in self.pipes)

    def receipts(self, seq: int, timeout: float) -> list[float]:
        for pipe in self.pipes:
            pipe.send(("await", seq, timeout))
        return [at for pipe in self.pipes for at in pipe.recv()]

    def stop(self) -> None:
        for pipe in self.pipes:
            pipe.send(("stop",))
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


async def ingest_latencies(port: int, token: str, events: int) -> list[float]:
    """`events` posts at RATE/s for a user with no stream: each answer's time in ms."""
    latencies = []
    async with httpx.AsyncClient(timeout=30) as http:
        started = time.perf_counter()
        for k in range(events):
            await asyncio.sleep(max(0.0, started + k / RATE - time.perf_counter()))
            sent = time.perf_counter()
            await notifyhub_ingest(http, port, token, 900_000 + k, user="nobody")
            latencies.append((time.perf_counter() - sent) * 1000)
    return latencies


async def fanout(port: int, token: str, clients: Clients, opened: int) -> dict[str, object]:
    latencies: list[float] = []
    missing = 0
    async with httpx.AsyncClient(timeout=30) as http:
        for rep in range(FANOUT_EVENTS):
            seq = 1 + rep
            sent = time.perf_counter()
            await notifyhub_ingest(http, port, token, seq)
            got = await asyncio.get_running_loop().run_in_executor(
                None, clients.receipts, seq, 30.0
            )
            missing += opened - len(got)
            latencies += [(at - sent) * 1000 for at in got]
            await asyncio.sleep(1)
    return {
        "fanout_p50_ms": round(pct(latencies, 0.5), 1),
        "fanout_p99_ms": round(pct(latencies, 0.99), 1),
        "fanout_missing": missing,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--streams", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=2, help="daphne processes")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--events", type=int, default=200, help="ingest posts per phase")
    args = parser.parse_args()
    more_files()

    workdir = Path(tempfile.mkdtemp(prefix="nh-bench-many-"))
    pg = PrivatePostgres()
    out: dict[str, object] = {"streams": args.streams, "processes": args.processes}
    try:
        pg.start(max_connections=100)
        db, env, tokens = notifyhub_setup(pg, streams=args.streams)
        serve, port = start_serve(env, args.processes, workdir / "serve.log")
        try:
            asyncio.run(ingest_latencies(port, tokens["producer"], 40))  # warm-up
            alone = asyncio.run(ingest_latencies(port, tokens["producer"], args.events))
            before = {pid: proc_stats(pid) for pid in web_processes(serve.pid)}

            started = time.perf_counter()
            clients = Clients(port, tokens["consumer"], args.streams, args.clients)
            opened = clients.opened()
            out["opened"] = opened
            out["open_all_s"] = round(time.perf_counter() - started, 1)
            out["opens_per_s"] = round(opened / (time.perf_counter() - started))
            try:
                # Idle: past NOTIFYHUB_WEB_DB_IDLE (5 s), when a thread closes its connection.
                time.sleep(8)
                idle = {pid: proc_stats(pid) for pid in web_processes(serve.pid)}
                out["db_connections_idle"] = pg.connections(db)
                out["kib_per_stream"] = round(
                    sum(idle[p]["rss_kib"] - before[p]["rss_kib"] for p in idle) / max(1, opened),
                    1,
                )
                out["per_process"] = {
                    pid: {"rss_mib": round(s["rss_kib"] / 1024), "fds": s["fds"]}
                    for pid, s in idle.items()
                }
                out.update(asyncio.run(fanout(port, tokens["producer"], clients, opened)))
                time.sleep(2)
                held = asyncio.run(ingest_latencies(port, tokens["producer"], args.events))
            finally:
                clients.stop()
        finally:
            serve.terminate()
            serve.wait(timeout=30)
    finally:
        try:
            pg.stop()
        finally:
            pg.cleanup()

    out["ingest_alone_p50_ms"] = round(pct(alone, 0.5), 1)
    out["ingest_alone_p99_ms"] = round(pct(alone, 0.99), 1)
    out["ingest_held_p50_ms"] = round(pct(held, 0.5), 1)
    out["ingest_held_p99_ms"] = round(pct(held, 0.99), 1)
    ratio = float(out["ingest_held_p99_ms"]) / float(out["ingest_alone_p99_ms"])  # type: ignore[arg-type]
    print(json.dumps(out, indent=1))
    print(
        f"\n## {args.streams} idle streams over `manage.py serve --processes {args.processes}`, "
        f"PostgreSQL max_connections = 100\n"
    )
    print("| measure | figure | target |")
    print("|---|---|---|")
    print(f"| streams open | {opened} of {args.streams} in {out['open_all_s']} s | all |")
    print(f"| database connections once idle | {out['db_connections_idle']} | 0 |")
    print(f"| memory per idle stream (all processes) | {out['kib_per_stream']} KiB | < 32 KiB |")
    print(
        f"| fan-out of one event to all, p50 / p99 | {out['fanout_p50_ms']} / "
        f"{out['fanout_p99_ms']} ms ({out['fanout_missing']} missing) | p99 < 1,000 ms |"
    )
    print(
        f"| ingest p99 alone / while held | {out['ingest_alone_p99_ms']} / "
        f"{out['ingest_held_p99_ms']} ms ({ratio:.2f}x) | ≤ 1.5x |"
    )
    record(
        f"fan-out of one event to {args.streams} streams over {args.processes} processes, p99",
        float(out["fanout_p99_ms"]),  # type: ignore[arg-type]
        "ms",
        baseline_name="(no baseline: an absolute target)",
        baseline=None,
        target="< 1,000 ms",
        higher_is_better=False,
    )
    record(
        f"ingest p99 while {args.streams} streams are held",
        float(out["ingest_held_p99_ms"]),  # type: ignore[arg-type]
        "ms",
        baseline_name="ingest p99 with no stream",
        baseline=float(out["ingest_alone_p99_ms"]),  # type: ignore[arg-type]
        target="≤ 1.5x",
        higher_is_better=False,
    )
    print(f"\n(logs in {workdir})")


if __name__ == "__main__":
    main()
