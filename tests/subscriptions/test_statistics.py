"""A subscription's last 24 hours and the hub's deliveries by outcome, from known ledger rows."""

from datetime import UTC, datetime, timedelta

import pytest

from subscriptions.models import Delivery
from subscriptions.selectors import (
    _latency_percentiles_portable,
    _latency_percentiles_postgresql,
    deliveries_by_outcome_per_hour,
    subscription_statistics,
)
from tests.subscriptions.statistics_data import delivery, push_subscription

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 4, 12, 30, tzinfo=UTC)
S = Delivery.Status


def at(hour: int, minute: int, *, day: int = 4) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def ledger():
    """Alice's deliveries of the last day (and one older), and one of Bob's."""
    alice, bob = push_subscription("alice"), push_subscription("bob")
    delivery(alice, at(12, 10), S.DELIVERED, took=timedelta(seconds=1))
    delivery(alice, at(12, 20), S.PENDING)
    delivery(alice, at(11, 20), S.DELIVERED, took=timedelta(seconds=3))
    delivery(alice, at(11, 40), S.DELIVERED, took=timedelta(seconds=2))
    delivery(alice, at(11, 50), S.DELIVERED, took=timedelta(seconds=10))
    delivery(alice, at(11, 5), S.FAILED, took=timedelta(seconds=30))
    delivery(alice, at(10, 0), S.UNKNOWN)
    delivery(alice, at(13, 0, day=3), S.PAUSED)  # the window's first minute
    delivery(alice, at(12, 59, day=3), S.DELIVERED, took=timedelta(hours=1))  # before it
    delivery(bob, at(12, 15), S.FAILED, took=timedelta(seconds=1))
    return alice, bob


def test_the_last_24_hours_count_each_outcome_of_this_subscription_only(ledger):
    alice, _ = ledger
    statistics = subscription_statistics(subscription=alice, now=NOW)

    assert statistics.since == at(13, 0, day=3)
    assert (statistics.delivered, statistics.failed, statistics.waiting) == (4, 2, 2)
    assert statistics.success_rate == pytest.approx(4 / 6)


def test_latency_percentiles_run_from_the_event_ingested_to_the_delivery_finished(ledger):
    alice, _ = ledger
    statistics = subscription_statistics(subscription=alice, now=NOW)

    # Delivered ones only, within the window: 1, 2, 3 and 10 seconds. percentile_cont
    # interpolates: p50 halfway between 2 and 3; p99 at 0.99 * 3 = 2.97, between 3 and 10.
    assert statistics.latency_p50 == timedelta(seconds=2.5)
    assert statistics.latency_p99 == timedelta(seconds=3 + 7 * 0.97)


def test_the_hourly_series_has_one_bucket_per_hour_with_the_outcomes_of_that_hour(ledger):
    alice, _ = ledger
    hours = subscription_statistics(subscription=alice, now=NOW).hours

    assert len(hours) == 24
    assert hours[0].start == at(13, 0, day=3)
    assert hours[-1].start == at(12, 0)
    by_hour = {bucket.start: dict(bucket.counts) for bucket in hours if bucket.counts}
    assert by_hour == {
        at(13, 0, day=3): {"waiting": 1},
        at(10, 0): {"failed": 1},
        at(11, 0): {"delivered": 3, "failed": 1},
        at(12, 0): {"delivered": 1, "waiting": 1},
    }


def test_a_subscription_without_deliveries_has_no_rate_and_no_latency():
    quiet = push_subscription("quiet")
    statistics = subscription_statistics(subscription=quiet, now=NOW)

    assert (statistics.delivered, statistics.failed, statistics.waiting) == (0, 0, 0)
    assert statistics.success_rate is None
    assert (statistics.latency_p50, statistics.latency_p99) == (None, None)
    assert len(statistics.hours) == 24
    assert not any(bucket.counts for bucket in statistics.hours)


def test_deliveries_by_outcome_per_hour_count_every_subscription(ledger):
    hours = deliveries_by_outcome_per_hour(now=NOW, hours=12)

    assert [bucket.start for bucket in hours] == [at(h, 0) for h in range(1, 13)]
    by_hour = {bucket.start: dict(bucket.counts) for bucket in hours if bucket.counts}
    assert by_hour == {
        at(10, 0): {"failed": 1},
        at(11, 0): {"delivered": 3, "failed": 1},
        at(12, 0): {"delivered": 1, "waiting": 1, "failed": 1},  # Bob's failure too
    }


@pytest.mark.postgres
def test_percentile_twins_agree_on_postgresql():
    """PostgreSQL's percentile_cont and the Python twin SQLite runs, over the same rows."""
    alice = push_subscription("alice")
    # 37 latencies with microseconds, not in order: interpolation between uneven neighbours.
    for n in range(37):
        took = timedelta(seconds=(n * 7919) % 97, microseconds=(n * 104729) % 1_000_000)
        delivery(alice, at(11, n), S.DELIVERED, took=took)
    delivered = Delivery.objects.filter(subscription=alice, status=S.DELIVERED)

    database = _latency_percentiles_postgresql(delivered)
    python = _latency_percentiles_portable(delivered)

    assert None not in database
    for exact, twin in zip(database, python, strict=True):
        # Both interpolate in microseconds; they may round the last one differently.
        assert abs(exact - twin) <= timedelta(microseconds=1)


def test_each_figure_is_a_fixed_number_of_queries_however_many_rows(
    ledger, django_assert_num_queries
):
    alice, _ = ledger
    # The counts grouped by hour and status, then the percentiles.
    with django_assert_num_queries(2):
        subscription_statistics(subscription=alice, now=NOW)
    with django_assert_num_queries(1):
        deliveries_by_outcome_per_hour(now=NOW)
