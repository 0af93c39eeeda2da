from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Event types, ingested events, idempotency and the routing step."""

    name = "events"

    def ready(self) -> None:
        from events.selectors import events_last_hour_count
        from notifyhub.dashboard import counter_register

        counter_register(
            label="Events in the last hour",
            compute=events_last_hour_count,
            url="/admin/events/event/",
        )
