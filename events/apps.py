from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Event types, ingested events, idempotency and the routing step."""

    name = "events"
