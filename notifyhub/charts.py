"""Bar charts drawn on the server as inline SVG: no script, nothing fetched from elsewhere.

Colours come from classes (`hub-chart-<series key>`) that `static/notifyhub/charts.css` maps to
the admin's CSS variables, so a chart follows the admin's light and dark themes. Every piece of
text goes through `format_html`, which escapes it.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.text import slugify

from notifyhub.statistics import Bucket

# The drawing's own units (the SVG scales to its box): the plot, and a strip below for labels.
WIDTH = 300
PLOT_HEIGHT = 80
LABEL_HEIGHT = 14
GAP = 1.0  # between two bars, when they are wide enough to afford it

_KEY = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class Series:
    """One stacked part of each bar: the `Bucket.counts` key it reads, and its name."""

    key: str  # also the CSS class suffix that colours it
    label: str

    def __post_init__(self) -> None:
        if not _KEY.match(self.key):
            raise ValueError(f"a series key is a CSS class suffix ([a-z0-9_-]), not {self.key!r}")


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def bar_chart(
    *,
    title: str,
    buckets: Sequence[Bucket],
    series: Sequence[Series],
    empty_text: str,
    label_format: str = "%H:%M",
    chart_id: str = "",
) -> SafeString:
    """A figure of stacked bars, one per bucket, with a tooltip (`<title>`) on each part and a
    text alternative (the SVG's title and description); `empty_text` when every count is 0."""
    chart_id = chart_id or f"chart-{slugify(title)}"
    totals = {s.key: sum(bucket.count(s.key) for bucket in buckets) for s in series}
    legend = format_html_join(
        " ",
        '<span class="hub-chart-key hub-chart-{}">{} {}</span>',
        ((s.key, s.label, totals[s.key]) for s in series),
    )
    if not buckets or not any(totals.values()):
        return format_html(
            '<figure class="hub-chart hub-chart-empty" id="{}">'
            '<figcaption>{}</figcaption><p class="hub-chart-nothing">{}</p></figure>',
            chart_id,
            title,
            empty_text,
        )

    tallest = max(sum(bucket.count(s.key) for s in series) for bucket in buckets)
    step = WIDTH / len(buckets)
    gap = GAP if step > 3 * GAP else 0.0
    parts: list[SafeString] = []
    for n, bucket in enumerate(buckets):
        when = bucket.start.strftime(label_format)
        bottom = float(PLOT_HEIGHT)
        for s in series:
            value = bucket.count(s.key)
            if value == 0:
                continue  # Nothing to draw; the bucket's tooltip would say 0 of nothing.
            height = PLOT_HEIGHT * value / tallest
            bottom -= height
            parts.append(
                format_html(
                    '<rect class="hub-chart-{}" x="{}" y="{}" width="{}" height="{}">'
                    "<title>{}: {} {}</title></rect>",
                    s.key,
                    _number(n * step),
                    _number(bottom),
                    _number(step - gap),
                    _number(height),
                    when,
                    value,
                    s.label,
                )
            )
    first, last = buckets[0].start.strftime(label_format), buckets[-1].start.strftime(label_format)
    description = "; ".join(f"{s.label}: {totals[s.key]}" for s in series)
    return format_html(
        '<figure class="hub-chart" id="{id}">'
        '<svg class="hub-chart-bars" role="img" aria-labelledby="{id}-title {id}-desc"'
        ' viewBox="0 0 {width} {height}"'
        ' xmlns="http://www.w3.org/2000/svg">'
        '<title id="{id}-title">{title}</title>'
        '<desc id="{id}-desc">{first} to {last} UTC, {count} bars; {description}; the tallest'
        " bar {tallest}.</desc>"
        '<line class="hub-chart-axis" x1="0" y1="{plot}" x2="{width}" y2="{plot}"/>'
        "{bars}"
        '<text class="hub-chart-label" x="0" y="{baseline}">{first}</text>'
        '<text class="hub-chart-label" x="{width}" y="{baseline}" text-anchor="end">{last}'
        "</text>"
        '<text class="hub-chart-label" x="{middle}" y="{baseline}" text-anchor="middle">'
        "peak {tallest}</text>"
        "</svg>"
        "<figcaption>{title}: {legend}</figcaption></figure>",
        id=chart_id,
        width=WIDTH,
        middle=WIDTH // 2,
        height=PLOT_HEIGHT + LABEL_HEIGHT,
        plot=PLOT_HEIGHT,
        baseline=PLOT_HEIGHT + LABEL_HEIGHT - 2,
        title=title,
        first=first,
        last=last,
        count=len(buckets),
        description=description,
        tallest=tallest,
        bars=format_html_join("", "{}", ((part,) for part in parts)),
        legend=legend,
    )
