"""Webhook push throughput and latency, against a bare Celery task measured in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/nh_bench REDIS_URL=redis://127.0.0.1:6379/9 \
        .venv/bin/python bench/webhooks.py

It migrates DATABASE_URL (creating the PostgreSQL database if missing; the bench owns it and
deletes its events between runs), starts one receiver process (answering at once, or after 50 ms)
and one Celery worker with 2 processes, then measures:
- deliveries/s from the first receipt to the last, for events ingested through the real
  `event_ingest` (routing, the outbox row) before the worker starts, so the figure is the send
  path (claim, signing, the guarded client, the ledger), not the ingest rate, printed apart;
- the baseline: a bare task per body POSTing it with a pooled client, queued the same way, same
  worker, same receiver;
- p50/p99 ingest→receipt latency at a steady 100 events/s, worker running.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifyhub.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/nh_bench_webhooks")
os.environ.setdefault("NOTIFYHUB_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
os.environ.setdefault("NOTIFYHUB_LOG_LEVEL", "WARNING")
os.environ.setdefault("NOTIFYHUB_REDIS_PREFIX", f"bench-webhooks-{os.getpid()}")


# --- The receiver (its own process, so it never competes with the bench for the GIL) ---


def serve_receiver(port: int, delay: float) -> None:
    received: list[tuple[str, float]] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            at = time.time()
            ident = self.headers.get("webhook-id") or self.headers.get("x-bench-id") or ""
            if delay:
                time.sleep(delay)
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()
            with lock:
                received.append((ident, at))

        def do_GET(self) -> None:
            with lock:
                if self.path == "/reset":
                    received.clear()
                    body = b"{}"
                elif self.path == "/count":
                    body = json.dumps({"count": len(received)}).encode()
                else:
                    body = json.dumps(received).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            return  # A worker shutting down resets its kept-alive connections: not news.

    server = Server(("127.0.0.1", port), Handler)
    server.request_queue_size = 256
    server.serve_forever()


class ReceiverProcess:
    def __init__(self, delay: float) -> None:
        from tests.servers import free_port

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/hook"
        self.popen = subprocess.Popen(
            [sys.executable, __file__, "--receiver", str(self.port), str(delay)]
        )
        for _ in range(100):
            try:
                self.get("/count")
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("receiver did not start")

    def get(self, path: str) -> object:
        with urlopen(self.base + path, timeout=10) as response:  # noqa: S310 - loopback
            return json.loads(response.read())

    def count(self) -> int:
        return int(self.get("/count")["count"])  # type: ignore[index]

    def wait_for(self, count: int, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.count() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.count()} of {count} received")
            time.sleep(0.02)

    def stop(self) -> None:
        self.popen.terminate()
        self.popen.wait(10)


# --- The hub side ---


def setup_django() -> None:
    url = os.environ["DATABASE_URL"]
    if url.startswith("postgres"):
        import psycopg

        name = url.rsplit("/", 1)[1]
        admin_url = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def start_worker(queue: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "NOTIFYHUB_DB_CONN_MAX_AGE": "600", "PYTHONPATH": str(ROOT)}
    handle = log.open("wb")
    popen = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "--app",
            "notifyhub",
            "worker",
            "--loglevel",
            "WARNING",
            "--concurrency",
            "2",
            "--queues",
            queue,
            "--include",
            "bench.webhooks_baseline",
            "--hostname",
            f"bench-{uuid.uuid4().hex[:8]}@127.0.0.1",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    from notifyhub.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=0.5)
        if replies:
            return popen
    raise RuntimeError(f"worker did not start; see {log}")


def reset_database() -> None:
    from events.models import Event
    from subscriptions.models import Delivery, Notification, Subscription

    Delivery.objects.all().delete()
    Notification.objects.all().delete()
    Event.objects.all().delete()
    Subscription.objects.all().delete()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def latencies_ms(received: list[tuple[str, float]]) -> list[float]:
    from events.models import Event

    created = dict(
        Event.objects.filter(id__in=[ident for ident, _ in received]).values_list(
            "id", "created_at"
        )
    )
    return [(at - created[ident].timestamp()) * 1000 for ident, at in received if ident in created]


class Worker:
    """One Celery worker with 2 processes, started only once its work is queued."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.popen: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> "Worker":
        log = ROOT / "var" / "bench-webhooks-worker.log"
        log.parent.mkdir(exist_ok=True)
        self.popen = start_worker(self.queue, log)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.popen is not None
        # Warm shutdown: SIGTERM to the main process only, which lets running tasks finish
        # (a SIGTERM to the pool children too would cut their sends short).
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(90)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)


def drain_rate(receiver: ReceiverProcess, n: int) -> float:
    """Deliveries/s from the first receipt to the last (worker start-up excluded)."""
    receiver.wait_for(n)
    times = sorted(at for _, at in receiver.get("/received"))  # type: ignore[union-attr]
    return (n - 1) / (times[-1] - times[0])


def run_baseline(receiver: ReceiverProcess, queue: str, n: int) -> float:
    """A bare task per body, all queued before the worker starts."""
    from bench.webhooks_baseline import post

    body = json.dumps(
        {
            "id": "0" * 26,
            "name": "newMessage",
            "data": {"n": 1},
            "created_at": "x",
            "expires_at": "y",
        }
    )
    receiver.get("/reset")
    for i in range(n):
        post.delay(receiver.url, body, str(i))
    with Worker(queue):
        return drain_rate(receiver, n)


def subscribe(receiver: ReceiverProcess) -> None:
    from events.models import EventType
    from notifyhub.tenancy import HUB
    from subscriptions.services import subscription_create

    reset_database()
    EventType.objects.get_or_create(id="newMessage")
    subscription_create(
        reach=HUB,
        client_id="bench",
        event_type_ids=["newMessage"],
        subscribed_by="bench",
        notification_url=receiver.url,
    )
    receiver.get("/reset")


def ingest(i: int) -> None:
    from events.services import event_ingest
    from notifyhub.tenancy import HUB

    event_ingest(
        producer="bench", reach=HUB, type_id="newMessage", payload={"n": i}, idempotency_key=f"k{i}"
    )


def run_webhooks(receiver: ReceiverProcess, queue: str, n: int) -> tuple[float, float]:
    """`n` events ingested through the real path (8 threads) before the worker starts; returns
    the ingest rate and the delivery rate."""
    subscribe(receiver)
    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda part: [ingest(i) for i in range(part, n, 8)], range(8)))
    ingest_rate = n / (time.monotonic() - start)
    with Worker(queue):
        return ingest_rate, drain_rate(receiver, n)


def run_steady(receiver: ReceiverProcess, queue: str, n: int, rate: float) -> list[float]:
    """Events ingested at a steady `rate`/s with the worker running; ingest→receipt latencies."""
    subscribe(receiver)
    with Worker(queue):
        start = time.time()
        for i in range(n):
            delay = start + i / rate - time.time()
            if delay > 0:
                time.sleep(delay)
            ingest(i)
        receiver.wait_for(n)
        return latencies_ms(receiver.get("/received"))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--baseline-slow-events", type=int, default=400)
    args = parser.parse_args()

    setup_django()
    from notifyhub.celery import app

    queue = f"bench-webhooks-{os.getpid()}"
    app.conf.task_default_queue = queue
    instant = ReceiverProcess(0.0)
    slow = ReceiverProcess(0.05)
    try:
        base_instant = run_baseline(instant, queue, args.events)
        ingest_rate, hook_instant = run_webhooks(instant, queue, args.events)
        base_slow = run_baseline(slow, queue, args.baseline_slow_events)
        _, hook_slow = run_webhooks(slow, queue, args.events)
        lat_steady = run_steady(instant, queue, 1000, 100)
        lat_steady_slow = run_steady(slow, queue, 1000, 100)
    finally:
        instant.stop()
        slow.stop()

    print(f"ingest (8 threads, routing + outbox + pull queue): {ingest_rate:.0f} events/s")
    print("| receiver | webhooks deliveries/s | bare task /s | ratio |")
    print("|---|---|---|---|")
    ratio = hook_instant / base_instant
    print(f"| instant | {hook_instant:.0f} | {base_instant:.0f} | {ratio:.2f}x |")
    print(f"| 50 ms | {hook_slow:.0f} | {base_slow:.0f} | {hook_slow / base_slow:.2f}x |")
    for name, lat in (("instant", lat_steady), ("50 ms", lat_steady_slow)):
        print(
            f"steady 100 events/s for 10 s, {name} receiver: ingest→receipt "
            f"p50 {statistics.median(lat):.0f} ms, p99 {percentile(lat, 0.99):.0f} ms"
        )
    from bench.summary import record

    for name, hooks, base in (
        ("instant", hook_instant, base_instant),
        ("50 ms", hook_slow, base_slow),
    ):
        record(
            f"webhook deliveries, {name} receiver (2 worker processes)",
            hooks,
            "deliveries/s",
            baseline_name="bare task POST",
            baseline=base,
            target="≥ 0.70x",
        )
    record(
        "webhook ingest→receipt p99, 100 events/s, 50 ms receiver",
        percentile(lat_steady_slow, 0.99),
        "ms",
        baseline_name="target",
        baseline=None,
        target="< 500 ms",
        higher_is_better=False,
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--receiver":
        serve_receiver(int(sys.argv[2]), float(sys.argv[3]))
    else:
        main()
