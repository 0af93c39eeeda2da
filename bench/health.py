"""Probe latency: /healthz, /readyz and /metrics on one daphne with no Celery worker running.

Prints p50 and p99 of sequential requests to each (docs/benchmarks.md records the figures).
Run under `python -m notifyhub.devredis -- python bench/health.py` (a private Redis) with
BENCH_DATABASE_URL naming a PostgreSQL database it may recreate.
"""

import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import daphne, setup_django

REQUESTS = 300


def measure(client: httpx.Client, url: str) -> tuple[float, float]:
    timings = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.text
    quantiles = statistics.quantiles(timings, n=100)
    return statistics.median(timings), quantiles[98]


def main() -> None:
    setup_django()
    with daphne("notifyhub.asgi:application") as url, httpx.Client(timeout=10) as client:
        for path in ("/healthz", "/readyz", "/metrics"):
            measure(client, f"{url}{path}")  # warm up: connections, first imports
            p50, p99 = measure(client, f"{url}{path}")
            print(
                f"{path:10} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  ({REQUESTS} requests, no worker)"
            )


if __name__ == "__main__":
    main()
