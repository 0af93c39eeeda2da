"""Time series and percentiles for the console's pictures: buckets of counts, and percentiles
computed by PostgreSQL (`PercentileCont`) or, on SQLite, by `percentile_cont` in Python, which
interpolates the same way so both databases answer the same figures."""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Aggregate, DurationField, Expression
from django.db.models.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class Bucket:
    """One interval of a time series: when it starts (UTC) and a count per series key."""

    start: datetime
    counts: Mapping[str, int]

    def count(self, key: str) -> int:
        return self.counts.get(key, 0)


def window_start(*, now: datetime, step: timedelta, buckets: int) -> datetime:
    """The start of the first of `buckets` intervals of `step` ending with the one holding
    `now` (aligned on UTC multiples of `step`, as Trunc aligns them: minutes, hours)."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    current = epoch + ((now - epoch) // step) * step
    return current - (buckets - 1) * step


def buckets_fill(
    *,
    rows: Iterable[tuple[datetime, str, int]],
    start: datetime,
    step: timedelta,
    buckets: int,
) -> list[Bucket]:
    """Every interval from `start`, in order, with the counts of `rows` (bucket start, key,
    count) added in; an interval with no row counts zero, a row outside the window is dropped."""
    counts: list[dict[str, int]] = [{} for _ in range(buckets)]
    for bucket_start, key, count in rows:
        index = (bucket_start - start) // step
        if 0 <= index < buckets:
            counts[index][key] = counts[index].get(key, 0) + count
    return [Bucket(start=start + n * step, counts=counts[n]) for n in range(buckets)]


def percentile_cont(values: Sequence[timedelta], fraction: float) -> timedelta | None:
    """PostgreSQL's percentile_cont in Python: the value at `fraction` of the sorted values,
    interpolated linearly between the two nearest (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = math.floor(position)
    upper = math.ceil(position)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


class PercentileCont(Aggregate):
    """`percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)` over durations: an exact
    percentile computed by PostgreSQL, one row back however many rows it reads."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()

    def __init__(self, expression: Expression, *, fraction: float) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"a percentile's fraction is within [0, 1], not {fraction!r}")
        # A float we validated, written as a literal: PostgreSQL wants the fraction constant.
        super().__init__(expression, fraction=repr(float(fraction)))

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra_context: Any
    ) -> tuple[str, tuple[str | int, ...]]:
        raise NotImplementedError("percentile_cont is PostgreSQL's; use percentile_cont()")
