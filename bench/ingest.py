"""Ingest throughput: POST /v1/notifications with 10 matching subscriptions, idempotency and a
JSON Schema, beside a minimal authenticated DRF endpoint and a bare insert, all on one daphne.

    python bench/ingest.py [--duration 30] [--concurrency 16]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.summary import record

# `{n}` is unique per request, so every event is new to the idempotency check.
EVENT_BODY = '{"event": {"type": "bench.order", "payload": {"order_id": "H{n}", "amount": {n}}}}'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    harness.setup_django()
    objects = harness.prepare_objects(subscriptions=10)
    bearer = {"Authorization": f"Bearer {objects.token}"}
    json_headers = {**bearer, "Content-Type": "application/json", "Api-Version": "3.0"}
    common = {"duration": args.duration, "concurrency": args.concurrency}

    with harness.daphne() as url:
        harness.load(f"{url}/bench/minimal", headers=bearer, duration=3)  # warm-up
        minimal = harness.load(f"{url}/bench/minimal", headers=bearer, **common)
        bare = harness.load(
            f"{url}/bench/bare-insert",
            method="POST",
            headers=json_headers,
            body=EVENT_BODY,
            **common,
        )
        ingest = harness.load(
            f"{url}/v1/notifications",
            method="POST",
            headers=json_headers,
            body=EVENT_BODY,
            **common,
        )

    print(f"# ingest — {harness.machine()}")
    print(
        f"one daphne process, PostgreSQL, concurrency {args.concurrency}, "
        f"{args.duration:.0f} s each, load from {minimal.generator}\n"
    )
    print(harness.TABLE_HEADER)
    print(harness.row("minimal authenticated DRF GET (baseline)", minimal))
    print(harness.row("bare insert: 1 row + 10-row bulk insert", bare, baseline=minimal.rate))
    print(
        harness.row(
            "POST /v1/notifications (10 subs, schema, idempotency)", ingest, baseline=minimal.rate
        )
    )
    print(
        f"\ningest / bare insert: {ingest.rate / bare.rate:.2f}x  (target: ingest ≥ 0.60x minimal)"
    )
    record(
        "ingest, 10 subscriptions (1 daphne)",
        ingest.rate,
        "events/s",
        baseline_name="minimal DRF endpoint",
        baseline=minimal.rate,
        baseline_unit="req/s",
        target="≥ 0.60x",
    )
    record(
        "ingest vs the bare insert",
        ingest.rate,
        "events/s",
        baseline_name="bare insert",
        baseline=bare.rate,
        baseline_unit="req/s",
        target="≥ 1.00x",
    )


if __name__ == "__main__":
    main()
