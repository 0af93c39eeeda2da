"""Soak: a steady ingest rate for a long time, every channel reading; memory and connections flat.

One daphne process and one Celery worker (2 processes) against a fresh PostgreSQL database. A
producer posts `--rate` events/s over HTTP; a webhook subscription (loopback receiver), a paged
pull consumer (one GET per second) and a Push API stream all take every event. Every
`--every` seconds one row: events so far, what each channel got, daphne and worker memory (RSS),
PostgreSQL connections of the database, Redis clients and daphne's open files. At the end: the
first and last samples side by side, and lost/duplicated counts per channel (all must be 0).

    python bench/soak.py [--minutes 30] [--rate 20] [--every 60]

With `--faults` the hub runs as `make run` runs it (two web processes, a worker and beat, each
under notifyhub.respawn, a private Redis), every channel reads (paged and FIFO pull, webhooks,
1,000 streams, device pushes to fake providers), and a schedule kills processes, restarts Redis
and terminates PostgreSQL backends meanwhile (bench/soak_faults.py says what and when):

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/notifyhub_soak_faults \
        python bench/soak.py --faults [--minutes 30]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("NOTIFYHUB_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
# A database of its own: the other benches drop and recreate theirs while this one runs.
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/notifyhub_soak")

from bench import harness

EVENT_TYPE = "newMessage"


def rss_kib(pid: int) -> int:
    """Resident memory of a process and all its children (a Celery worker is several)."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            continue
        total += next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS:"))
        pids += [int(child) for child in children]
    return total


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Stream(threading.Thread):
    """A Push API client that counts the event ids it receives (and reconnects if dropped)."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.ids: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        from httpx_sse import connect_sse

        last = ""
        while not self.stop.is_set():
            headers = {"Authorization": f"Bearer {self.token}"}
            if last:
                headers["Last-Event-ID"] = last
            params = {"clientId": "soak", "kinds": EVENT_TYPE}
            try:
                with (
                    httpx.Client(timeout=httpx.Timeout(10, read=60)) as client,
                    connect_sse(client, "GET", self.url, params=params, headers=headers) as source,
                ):
                    for event in source.iter_sse():
                        if event.event == EVENT_TYPE:
                            self.ids[event.id] += 1
                            last = event.id
                        if self.stop.is_set():
                            return
            except httpx.HTTPError:
                time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--every", type=float, default=None, help="seconds between samples")
    parser.add_argument(
        "--faults", action="store_true", help="kill processes meanwhile (bench/soak_faults.py)"
    )
    args = parser.parse_args()
    if args.faults:
        from bench import soak_faults

        sys.exit(soak_faults.main(minutes=args.minutes, rate=args.rate, every=args.every or 15))
    args.every = args.every or 60

    harness.setup_django()
    import redis
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection

    from notifyhub.tenancy import HUB
    from subscriptions.models import Delivery
    from subscriptions.services import subscription_create
    from tests import servers
    from tests.receivers import receiving
    from tests.subscriptions.factories import push_subscription

    objects = harness.prepare_objects(subscriptions=0)
    # The stream's principal: events whose payload names it as `user_id` are its own.
    user = get_user_model().objects.create_user("soak")
    stream_token = harness.access_token(objects.application, [settings.SCOPE_CONSUMER], user=user)
    bearer = {"Authorization": f"Bearer {objects.token}"}
    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))

    with receiving() as receiver, harness.daphne() as url:
        hook = push_subscription(
            client_id=objects.application.client_id, url=receiver.url, type_id=EVENT_TYPE
        )
        pull = subscription_create(
            reach=HUB,
            client_id=objects.application.client_id,
            event_type_ids=[EVENT_TYPE],
            subscribed_by="soak",
        )
        # The bench's Redis prefix isolates its broker queue from any other worker's.
        worker = servers.start_worker(
            work, queue=settings.CELERY_TASK_DEFAULT_QUEUE, NOTIFYHUB_LOG_LEVEL="WARNING"
        )
        with servers.running(worker):
            port = url.rsplit(":", 1)[1]
            daphne_pid = int(
                subprocess.check_output(["pgrep", "-f", "--", f"-p {port} "]).split()[0]
            )
            stream = Stream(f"{url}/api/push/subscribe", stream_token)
            stream.start()
            time.sleep(2)

            ingested: list[str] = []
            pulled: Counter[str] = Counter()
            redis_client = redis.Redis.from_url(settings.REDIS_URL)
            samples = []
            started = time.monotonic()
            next_sample = started
            end = started + args.minutes * 60
            with httpx.Client(base_url=url, timeout=30) as http:
                n = 0
                while time.monotonic() < end:
                    target = started + n / args.rate
                    time.sleep(max(0.0, target - time.monotonic()))
                    response = http.post(
                        "/v1/notifications",
                        headers={**bearer, "Api-Version": "3.0"},
                        json={
                            "event": {"type": EVENT_TYPE, "payload": {"user_id": "soak", "n": n}}
                        },
                    )
                    response.raise_for_status()
                    ingested.append(response.json()["id"])
                    n += 1
                    if n % max(1, int(args.rate)) == 0:
                        page = http.get(
                            f"/notification/v1/subscriptions/{pull.id}/notifications?size=1000",
                            headers=bearer,
                        )
                        pulled.update(item["id"] for item in page.json()["results"])
                    if time.monotonic() >= next_sample:
                        next_sample += args.every
                        with connection.cursor() as cursor:
                            cursor.execute(
                                "select count(*) from pg_stat_activity"
                                " where datname = current_database() and pid <> pg_backend_pid()"
                            )
                            db_connections = cursor.fetchone()[0]
                        sample = {
                            "minute": round((time.monotonic() - started) / 60, 1),
                            "ingested": len(ingested),
                            "webhooks": len(receiver.requests),
                            "pulled": sum(pulled.values()),
                            "streamed": sum(stream.ids.values()),
                            "daphne_rss_mib": round(rss_kib(daphne_pid) / 1024, 1),
                            "worker_rss_mib": round(rss_kib(worker.popen.pid) / 1024, 1),
                            "db_connections": db_connections,
                            "redis_clients": redis_client.info("clients")["connected_clients"],
                            "daphne_fds": open_files(daphne_pid),
                        }
                        samples.append(sample)
                        print(json.dumps(sample), flush=True)
                # Let the last events arrive, then drain the pull queue.
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and (
                    len(receiver.requests) < len(ingested)
                    or sum(stream.ids.values()) < len(ingested)
                ):
                    time.sleep(0.5)
                while True:
                    page = http.get(
                        f"/notification/v1/subscriptions/{pull.id}/notifications?size=1000",
                        headers=bearer,
                    ).json()["results"]
                    if not page:
                        break
                    pulled.update(item["id"] for item in page)
            stream.stop.set()
        hooks = Counter(request.headers["webhook-id"] for request in receiver.requests)
        delivered = Delivery.objects.filter(subscription=hook, status="delivered").count()

    wanted = set(ingested)
    print(f"\n# soak — {harness.machine()}")
    print(f"{args.minutes:g} min at {args.rate:g} events/s, one daphne, one worker (2 processes)\n")
    print(
        "| sample | minute | daphne RSS MiB | worker RSS MiB | DB connections | Redis clients "
        "| daphne fds |"
    )
    print("|---|---|---|---|---|---|---|")
    middle = samples[len(samples) // 2]
    for name, sample in (("first", samples[0]), ("middle", middle), ("last", samples[-1])):
        print(
            f"| {name} | {sample['minute']} | {sample['daphne_rss_mib']} | "
            f"{sample['worker_rss_mib']} | {sample['db_connections']} | "
            f"{sample['redis_clients']} | {sample['daphne_fds']} |"
        )
    print("\n| channel | received | lost | duplicated |")
    print("|---|---|---|---|")
    for name, got in (("webhook", hooks), ("pull", pulled), ("stream", stream.ids)):
        lost = len(wanted - set(got))
        duplicated = sum(count - 1 for count in got.values() if count > 1)
        print(f"| {name} | {sum(got.values())} | {lost} | {duplicated} |")
    print(f"\nevents ingested: {len(ingested)}; webhook deliveries recorded delivered: {delivered}")


if __name__ == "__main__":
    main()
