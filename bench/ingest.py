"""Ingest throughput: POST /v1/notifications with 10 matching subscriptions, idempotency and a
JSON Schema, beside a minimal authenticated DRF endpoint and a bare insert, all on one daphne.

    python bench/ingest.py [--rounds 3] [--duration 10] [--concurrency 16]

The three endpoints take turns, `--rounds` times, so a machine whose speed drifts during the
run (a shared VM's does) weighs on each alike: the ratios are of the pooled rounds, and the
spread of the per-round ratios is printed beside them.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.summary import record

# `{n}` is unique per request of a load run, and `{round}` per run, so every event is new to
# the idempotency check.
EVENT_BODY = (
    '{"event": {"type": "bench.order", "payload": {"order_id": "H{round}-{n}", "amount": {n}}}}'
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10, help="seconds per endpoint per round")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    harness.setup_django()
    objects = harness.prepare_objects(subscriptions=10)
    bearer = {"Authorization": f"Bearer {objects.token}"}
    json_headers = {**bearer, "Content-Type": "application/json", "Api-Version": "3.0"}
    common = {"duration": args.duration, "concurrency": args.concurrency}
    rounds: dict[str, list[harness.LoadResult]] = {"minimal": [], "bare": [], "ingest": []}

    with harness.daphne() as url:
        harness.load(f"{url}/bench/minimal", headers=bearer, duration=3)  # warm-up
        for index in range(args.rounds):
            body = EVENT_BODY.replace("{round}", str(index))
            rounds["minimal"].append(harness.load(f"{url}/bench/minimal", headers=bearer, **common))
            for name, path in (("bare", "/bench/bare-insert"), ("ingest", "/v1/notifications")):
                rounds[name].append(
                    harness.load(
                        f"{url}{path}", method="POST", headers=json_headers, body=body, **common
                    )
                )
    minimal, bare, ingest = (harness.combined(rounds[name]) for name in rounds)

    def spread(name: str, baseline: str) -> str:
        ratios = sorted(
            part.rate / base.rate for part, base in zip(rounds[name], rounds[baseline], strict=True)
        )
        return f"per round {ratios[0]:.2f}-{ratios[-1]:.2f}x"

    print(f"# ingest — {harness.machine()}")
    print(
        f"one daphne process, PostgreSQL, concurrency {args.concurrency}, {args.rounds} rounds "
        f"of {args.duration:.0f} s per endpoint, load from {minimal.generator}\n"
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
        f"\ningest / minimal: {ingest.rate / minimal.rate:.2f}x ({spread('ingest', 'minimal')}; "
        "target ≥ 0.60x)"
    )
    print(f"ingest / bare insert: {ingest.rate / bare.rate:.2f}x ({spread('ingest', 'bare')})")
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
