"""Paged pull throughput, sustained: GET .../notifications?size=100 beside a bare
`FOR UPDATE SKIP LOCKED` claim of 100 rows, on one daphne, while a refiller keeps the queue full
(the queue is a hot insert-and-delete table, so the sustained figure is the one that matters).

    python bench/pull.py [--duration 120] [--concurrency 8]
"""

import argparse
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.summary import record

LOW_WATER = 30_000
BATCH = 5_000


VACUUM_EVERY = 10.0


def refill_forever(subscription_id: str, stop: threading.Event) -> None:
    """Keep at least LOW_WATER rows queued, in 5,000-row inserts (like producers would).

    This machine's PostgreSQL runs with autovacuum off; production's runs it, and the queue
    table's migration tunes it to vacuum and analyze the queue often. The refiller stands in
    for it with a VACUUM (ANALYZE) of the queue and of the subscriptions every 10 s, for the
    baseline and the real pull alike.
    """
    import psycopg

    with psycopg.connect(harness.BENCH_DB, autocommit=True) as conn:
        event_ids = [row[0] for row in conn.execute("SELECT id FROM events_event LIMIT 1000")]
        last_vacuum = 0.0
        while not stop.is_set():
            if time.monotonic() - last_vacuum > VACUUM_EVERY:
                conn.execute("VACUUM (ANALYZE) subscriptions_notification")
                # The paged pull updates its subscription's row on every page (page counter,
                # last request date): autovacuum would visit that one-row table constantly.
                conn.execute("VACUUM (ANALYZE) subscriptions_subscription")
                last_vacuum = time.monotonic()
            queued = conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM subscriptions_notification"
                " WHERE subscription_id = %s LIMIT %s) t",
                [subscription_id, LOW_WATER],
            ).fetchone()[0]
            if queued >= LOW_WATER:
                time.sleep(0.02)
                continue
            conn.execute(
                "INSERT INTO subscriptions_notification (subscription_id, event_id, created_at,"
                " expires_at) SELECT %s, (%s::varchar[])[1 + i %% %s], now(),"
                " now() + interval '6 hours' FROM generate_series(1, %s) i",
                [subscription_id, event_ids, len(event_ids), BATCH],
            )


def seed_events() -> None:
    from django.utils import timezone

    from events.models import Event, new_event_id

    now = timezone.now()
    Event.objects.bulk_create(
        Event(
            id=new_event_id(),
            type_id="bench.order",
            payload={"order_id": f"H{n}", "n": n},
            producer="bench",
            payload_hash=str(n),
            created_at=now,
        )
        for n in range(1000)
    )


def measure(
    url: str, path: str, headers: dict[str, str], args: argparse.Namespace, subscription_id: str
) -> harness.LoadResult:
    import psycopg

    with psycopg.connect(harness.BENCH_DB, autocommit=True) as conn:
        conn.execute("DELETE FROM subscriptions_notification")
    stop = threading.Event()
    refiller = threading.Thread(target=refill_forever, args=(subscription_id, stop), daemon=True)
    refiller.start()
    time.sleep(2)
    try:
        return harness.load(
            f"{url}{path}",
            headers=headers,
            duration=args.duration,
            concurrency=args.concurrency,
            items_marker='"id"',  # Once per result, on both endpoints.
            segments=3,
        )
    finally:
        stop.set()
        refiller.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=120)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    harness.setup_django()
    objects = harness.prepare_objects(subscriptions=1)
    seed_events()
    subscription_id = objects.subscription_ids[0]
    bearer = {"Authorization": f"Bearer {objects.token}"}

    with harness.daphne() as url:
        harness.load(f"{url}/bench/minimal", headers=bearer, duration=3)  # warm-up
        bare = measure(url, f"/bench/bare-claim/{subscription_id}", bearer, args, subscription_id)
        pull = measure(
            url,
            f"/notification/v1/subscriptions/{subscription_id}/notifications?size=100",
            bearer,
            args,
            subscription_id,
        )

    print(f"# pull — {harness.machine()}")
    print(
        f"one daphne process, PostgreSQL, concurrency {args.concurrency}, {args.duration:.0f} s "
        f"each, queue refilled to >= 30,000 rows, load from {pull.generator}\n"
    )
    print(harness.TABLE_HEADER)
    print(
        harness.row(
            "bare claim of 100, FOR UPDATE SKIP LOCKED (baseline)",
            bare,
            unit="notifications/s",
            by_items=True,
        )
    )
    print(
        harness.row(
            "GET .../notifications?size=100",
            pull,
            unit="notifications/s",
            by_items=True,
            baseline=bare.item_rate,
        )
    )
    print("\n| phase | bare claim notifications/s | paged pull notifications/s | ratio |")
    print("|---|---|---|---|")
    for name, index in (("first third", 0), ("last third", 2)):
        b, p = bare.segment_item_rates[index], pull.segment_item_rates[index]
        print(f"| {name} | {b:,.0f} | {p:,.0f} | {p / b:.2f}x |")
    print("\ntarget: paged pull >= 0.8x the bare claim, sustained")
    record(
        "paged pull, last third (1 daphne)",
        pull.segment_item_rates[2],
        "notifications/s",
        baseline_name="bare claim",
        baseline=bare.segment_item_rates[2],
        target="≥ 0.80x",
    )


if __name__ == "__main__":
    main()
