"""Reads of the event catalogue."""

from django.db.models import QuerySet

from events.models import Event, EventType


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
