"""The console's SVG bar charts, the percentiles' Python twin and the index's chart registry."""

from datetime import UTC, datetime, timedelta

import pytest

from notifyhub import dashboard
from notifyhub.charts import Series, bar_chart
from notifyhub.statistics import Bucket, buckets_fill, percentile_cont, window_start

START = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
OUTCOMES = [Series(key="delivered", label="delivered"), Series(key="failed", label="failed")]


def hours(*counts: dict[str, int]) -> list[Bucket]:
    return [Bucket(start=START + n * HOUR, counts=c) for n, c in enumerate(counts)]


def test_each_non_zero_part_of_a_bar_is_a_rect_with_its_value_in_a_tooltip():
    svg = bar_chart(
        title="Deliveries",
        buckets=hours({"delivered": 5, "failed": 1}, {}, {"delivered": 2}),
        series=OUTCOMES,
        empty_text="Nothing.",
    )

    assert svg.count("<rect ") == 3
    assert "<title>10:00: 5 delivered</title>" in svg
    assert "<title>10:00: 1 failed</title>" in svg
    assert "<title>12:00: 2 delivered</title>" in svg
    assert '<rect class="hub-chart-failed"' in svg
    # A text alternative: the title and a description naming the totals.
    assert 'role="img"' in svg
    assert '<title id="chart-deliveries-title">Deliveries</title>' in svg
    assert "delivered: 7; failed: 1" in svg
    assert "Nothing." not in svg


def test_the_tallest_bar_fills_the_plot_and_the_others_scale_to_it():
    svg = bar_chart(
        title="Events",
        buckets=hours({"events": 4}, {"events": 2}),
        series=[Series(key="events", label="events")],
        empty_text="-",
    )
    assert 'x="0" y="0" width="149" height="80"' in svg
    assert 'x="150" y="40" width="149" height="40"' in svg


def test_labels_and_titles_are_escaped():
    svg = bar_chart(
        title="<script>alert(1)</script>",
        buckets=hours({"x": 1}),
        series=[Series(key="x", label='a "quoted" & <b>bold</b> label')],
        empty_text="-",
    )
    assert "<script>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert "<b>" not in svg
    assert "a &quot;quoted&quot; &amp; &lt;b&gt;bold&lt;/b&gt; label" in svg


def test_a_series_key_must_be_a_class_name():
    with pytest.raises(ValueError, match="CSS class"):
        Series(key='x" onload="alert(1)', label="x")


def test_no_data_draws_the_empty_text_instead_of_a_chart():
    svg = bar_chart(
        title="Deliveries", buckets=hours({}, {}), series=OUTCOMES, empty_text="No <deliveries>."
    )
    assert "<svg" not in svg
    assert "<rect" not in svg
    assert "No &lt;deliveries&gt;." in svg


def test_percentile_cont_interpolates_as_postgresql_does():
    seconds = [timedelta(seconds=s) for s in (10, 1, 3, 2)]
    assert percentile_cont(seconds, 0.5) == timedelta(seconds=2.5)
    assert percentile_cont(seconds, 0.0) == timedelta(seconds=1)
    assert percentile_cont(seconds, 1.0) == timedelta(seconds=10)
    assert percentile_cont([timedelta(seconds=4)], 0.99) == timedelta(seconds=4)
    assert percentile_cont([], 0.5) is None


def test_buckets_are_aligned_and_filled_with_zeros():
    start = window_start(now=START + 2 * HOUR + timedelta(minutes=17), step=HOUR, buckets=3)
    assert start == START
    filled = buckets_fill(
        rows=[(START, "a", 2), (START + 2 * HOUR, "a", 1), (START - HOUR, "a", 9)],
        start=start,
        step=HOUR,
        buckets=3,
    )
    assert [(b.start, b.count("a")) for b in filled] == [
        (START, 2),
        (START + HOUR, 0),
        (START + 2 * HOUR, 1),
    ]


def test_a_failing_chart_shows_as_unavailable(monkeypatch):
    def broken() -> list[Bucket]:
        raise RuntimeError("boom")

    monkeypatch.setattr(dashboard, "_charts", [])
    dashboard.chart_register(title="Broken", compute=broken, series=OUTCOMES, empty_text="-")
    dashboard.chart_register(title="Broken", compute=broken, series=OUTCOMES, empty_text="-")

    [drawn] = dashboard.charts_read()
    assert drawn["title"] == "Broken"
    assert "Broken: unavailable" in str(drawn["svg"])
