"""One line per headline figure, gathered by `bench/run.py` into the single table of the report.

A bench script calls `record(...)` for each figure it prints; when run on its own (no
BENCH_SUMMARY in the environment) this does nothing.
"""

import json
import os


def record(
    measure: str,
    value: float,
    unit: str,
    *,
    baseline_name: str,
    baseline: float | None,
    target: str = "",
    higher_is_better: bool = True,
    baseline_unit: str | None = None,
) -> None:
    path = os.environ.get("BENCH_SUMMARY")
    if not path:
        return
    ratio = value / baseline if baseline else None
    line = {
        "measure": measure,
        "value": value,
        "unit": unit,
        "baseline_name": baseline_name,
        "baseline": baseline,
        "baseline_unit": baseline_unit or unit,
        "ratio": ratio,
        "target": target,
        "higher_is_better": higher_is_better,
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def table(path: str) -> str:
    """The recorded figures as one Markdown table."""
    rows = [
        "| measure | notifyhub | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|",
    ]
    with open(path, encoding="utf-8") as lines:
        for raw in lines:
            item = json.loads(raw)
            baseline = (
                f"{item['baseline_name']}: {item['baseline']:,.1f} {item['baseline_unit']}"
                if item["baseline"] is not None
                else item["baseline_name"]
            )
            ratio = f"{item['ratio']:.2f}x" if item["ratio"] is not None else "—"
            rows.append(
                f"| {item['measure']} | {item['value']:,.1f} {item['unit']} | {baseline} | "
                f"{ratio} | {item['target']} |"
            )
    return "\n".join(rows)
