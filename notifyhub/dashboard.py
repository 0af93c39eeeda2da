"""The admin index's at-a-glance figures and charts: each app registers its own in ready()."""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils.html import format_html
from django.utils.safestring import SafeString

from notifyhub.charts import Series, bar_chart
from notifyhub.statistics import Bucket

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Counter:
    """One figure on the admin index: a label, a function computing it, and where to look."""

    label: str
    compute: Callable[[], int | str]
    url: str = ""


_counters: list[Counter] = []


def counter_register(*, label: str, compute: Callable[[], int | str], url: str = "") -> None:
    """Add a figure to the admin index (called from an AppConfig.ready())."""
    if any(counter.label == label for counter in _counters):
        return
    _counters.append(Counter(label=label, compute=compute, url=url))


def counters_read() -> list[dict[str, object]]:
    """Every registered figure, computed now; a failing one shows as unavailable."""
    figures: list[dict[str, object]] = []
    for counter in _counters:
        try:
            value: object = counter.compute()
        except Exception:
            logger.exception("admin counter %r failed", counter.label)
            value = "unavailable"
        figures.append({"label": counter.label, "value": value, "url": counter.url})
    return figures


@dataclass(frozen=True)
class Chart:
    """One chart on the admin index: a time series, the parts of each bar, and where to look."""

    title: str
    compute: Callable[[], Sequence[Bucket]]
    series: tuple[Series, ...]
    empty_text: str
    label_format: str = "%H:%M"
    url: str = ""


_charts: list[Chart] = []


def chart_register(
    *,
    title: str,
    compute: Callable[[], Sequence[Bucket]],
    series: Sequence[Series],
    empty_text: str,
    label_format: str = "%H:%M",
    url: str = "",
) -> None:
    """Add a bar chart of `compute()`'s buckets to the admin index (from an AppConfig.ready())."""
    if any(chart.title == title for chart in _charts):
        return
    _charts.append(
        Chart(
            title=title,
            compute=compute,
            series=tuple(series),
            empty_text=empty_text,
            label_format=label_format,
            url=url,
        )
    )


def charts_read() -> list[dict[str, object]]:
    """Every registered chart, computed and drawn now; a failing one shows as unavailable."""
    drawn: list[dict[str, object]] = []
    for chart in _charts:
        svg: SafeString
        try:
            svg = bar_chart(
                title=chart.title,
                buckets=chart.compute(),
                series=chart.series,
                empty_text=chart.empty_text,
                label_format=chart.label_format,
            )
        except Exception:
            logger.exception("admin chart %r failed", chart.title)
            svg = format_html('<p class="hub-chart-nothing">{}: unavailable</p>', chart.title)
        drawn.append({"title": chart.title, "svg": svg, "url": chart.url})
    return drawn
