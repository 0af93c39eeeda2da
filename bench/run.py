"""`make bench`: every benchmark in one go, each beside its same-run baseline.

    python bench/run.py [--quick]

Each script prints its own table (Markdown), then this prints one table of every headline figure
beside its same-run baseline; `docs/benchmarks.md` keeps the latest with the machine it ran on.
`--quick` shortens the load phases for a smoke run.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import machine
from bench.summary import table

BENCH = Path(__file__).resolve().parent

SCRIPTS = {
    "serving": (["--duration", "20"], ["--duration", "5"]),
    "ingest": (["--rounds", "4", "--duration", "10"], ["--rounds", "1", "--duration", "5"]),
    "pull": (["--duration", "120"], ["--duration", "10"]),
    "webhooks": ([], ["--events", "500", "--baseline-slow-events", "100"]),
    "push": ([], []),
    "streams": ([], []),
    "many": ([], ["--streams", "2000", "--events", "40"]),
    "storm": ([], ["--streams", "1000"]),
    "capacity": ([], ["--events", "300"]),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("only", nargs="*", help=f"some of: {', '.join(SCRIPTS)}")
    args = parser.parse_args()
    failed = []
    summary = Path(tempfile.mkdtemp(prefix="bench-summary-")) / "figures.jsonl"
    summary.touch()
    env = {**os.environ, "BENCH_SUMMARY": str(summary)}
    for name, (full, quick) in SCRIPTS.items():
        if args.only and name not in args.only:
            continue
        print(f"\n## {name}\n", flush=True)
        argv = [sys.executable, str(BENCH / f"{name}.py"), *(quick if args.quick else full)]
        if subprocess.run(argv, check=False, env=env).returncode != 0:
            failed.append(name)
    print(f"\n## All figures — {machine()}\n")
    print(table(str(summary)))
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
