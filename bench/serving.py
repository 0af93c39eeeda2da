"""Serving on every core: the minimal authenticated DRF endpoint on one daphne process, on
`manage.py serve` (one daphne process per core on one socket, SSE on the same port), and on
gunicorn with 2 sync workers (WSGI, no streams), in one run.

    python bench/serving.py [--duration 20] [--concurrency 32]
"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.summary import record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    harness.setup_django()
    objects = harness.prepare_objects(subscriptions=1)
    bearer = {"Authorization": f"Bearer {objects.token}"}
    cores = os.cpu_count() or 1
    python = str(harness.BIN / "python")
    servers = {
        "one daphne process": lambda port: [
            str(harness.BIN / "daphne"),
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "--verbosity",
            "0",
            "bench.asgi:application",
        ],
        f"manage.py serve ({cores} daphne processes, SO_REUSEPORT)": lambda port: [
            python,
            "manage.py",
            "serve",
            "--port",
            str(port),
            "--processes",
            str(cores),
            "--application",
            "bench.asgi:application",
        ],
        "gunicorn, 2 sync workers (WSGI)": lambda port: [
            str(harness.BIN / "gunicorn"),
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "bench.wsgi:application",
        ],
    }
    results = {}
    for name, argv in servers.items():
        with harness.server(argv) as url:
            harness.load(f"{url}/bench/minimal", headers=bearer, duration=3)  # warm-up
            results[name] = harness.load(
                f"{url}/bench/minimal",
                headers=bearer,
                duration=args.duration,
                concurrency=args.concurrency,
            )

    baseline = results["one daphne process"].rate
    print(f"# serving — {harness.machine()}")
    print(
        f"GET /bench/minimal (bearer token, scope check), concurrency {args.concurrency}, "
        f"load from {next(iter(results.values())).generator}\n"
    )
    print(harness.TABLE_HEADER)
    for name, result in results.items():
        print(harness.row(name, result, baseline=None if result.rate == baseline else baseline))
    served = results[next(name for name in results if name.startswith("manage.py serve"))].rate
    gunicorn = results["gunicorn, 2 sync workers (WSGI)"].rate
    record(
        "minimal endpoint, manage.py serve (all cores)",
        served,
        "req/s",
        baseline_name="one daphne process",
        baseline=baseline,
    )
    record(
        "minimal endpoint, manage.py serve (all cores)",
        served,
        "req/s",
        baseline_name="gunicorn, 2 sync workers",
        baseline=gunicorn,
        target="≈ 1.00x",
    )


if __name__ == "__main__":
    main()
