"""Reads of the event catalogue."""

import time
from datetime import UTC, datetime, timedelta

from django.db.models import Count, QuerySet
from django.db.models.functions import Trunc
from django.utils import timezone

from events.models import Event, EventType
from notifyhub.statistics import Bucket, buckets_fill, window_start


def event_type_list() -> QuerySet[EventType]:
    """Every event type in the catalogue, enabled or not, by id."""
    return EventType.objects.order_by("id")


def event_types_missing(*, type_ids: list[str]) -> list[str]:
    """The ids among `type_ids` that are not in the catalogue, in the order given."""
    known = set(EventType.objects.filter(pk__in=type_ids).values_list("pk", flat=True))
    return [type_id for type_id in type_ids if type_id not in known]


def events_last_hour_count() -> int:
    """Events ingested in the last hour (admin index)."""
    from datetime import timedelta

    from django.utils import timezone

    return Event.objects.filter(created_at__gte=timezone.now() - timedelta(hours=1)).count()


def events_per_minute(*, now: datetime | None = None, minutes: int = 60) -> list[Bucket]:
    """Events ingested in each of the last `minutes` minutes (the current one included), under
    the key "events" (admin index chart): one grouped query on the created_at index."""
    step = timedelta(minutes=1)
    start = window_start(now=now or timezone.now(), step=step, buckets=minutes)
    rows = (
        Event.objects.filter(created_at__gte=start)
        .annotate(minute=Trunc("created_at", "minute", tzinfo=UTC))
        .values("minute")
        .annotate(total=Count("pk"))
        .order_by()
        .values_list("minute", "total")
    )
    return buckets_fill(
        rows=((minute, "events", total) for minute, total in rows),
        start=start,
        step=step,
        buckets=minutes,
    )


# type id -> (read at, row or None). The catalogue changes rarely and every ingest reads it, so
# each process keeps rows for a few seconds: enabling, disabling or re-schematising a type
# takes effect within EVENT_TYPE_CACHE_SECONDS everywhere.
EVENT_TYPE_CACHE_SECONDS = 5.0
_event_types: dict[str, tuple[float, EventType | None]] = {}


def event_type_get_cached(*, type_id: str) -> EventType | None:
    """The catalogue row for `type_id` as of at most a few seconds ago."""
    now = time.monotonic()
    hit = _event_types.get(type_id)
    if hit is not None and now - hit[0] < EVENT_TYPE_CACHE_SECONDS:
        return hit[1]
    row = EventType.objects.filter(pk=type_id).first()
    if len(_event_types) > 10_000:  # Unknown ids are cached too; keep the map bounded.
        _event_types.clear()
    _event_types[type_id] = (now, row)
    return row


def event_type_cache_clear() -> None:
    """Forget cached catalogue rows (after an edit in this process, and between tests)."""
    _event_types.clear()
