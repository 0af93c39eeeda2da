"""Events ingested per minute, for the admin index's chart."""

from datetime import UTC, datetime

import pytest

from events.models import Event
from events.selectors import events_per_minute

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 4, 12, 30, 15, tzinfo=UTC)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(2026, 12, 4, hour, minute, second, tzinfo=UTC)


def event_at(created_at: datetime) -> None:
    Event.objects.create(
        type_id="chat", payload={}, producer="key:1", payload_hash="-", created_at=created_at
    )


def test_events_are_counted_in_the_minute_they_were_ingested():
    for moment in [at(12, 30, 1), at(12, 30, 14), at(12, 5, 59), at(11, 31), at(11, 30, 59)]:
        event_at(moment)

    minutes = events_per_minute(now=NOW)

    assert len(minutes) == 60
    assert (minutes[0].start, minutes[-1].start) == (at(11, 31), at(12, 30))
    counted = {bucket.start: bucket.count("events") for bucket in minutes if bucket.counts}
    # 11:30:59 is in the 61st minute back: outside the hour.
    assert counted == {at(11, 31): 1, at(12, 5): 1, at(12, 30): 2}


def test_a_quiet_hour_is_sixty_zeros():
    minutes = events_per_minute(now=NOW)
    assert [bucket.count("events") for bucket in minutes] == [0] * 60
