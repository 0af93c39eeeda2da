from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Event types, ingested events, idempotency and the routing step."""

    name = "events"

    def ready(self) -> None:
        from django.conf import settings

        from events.selectors import events_last_hour_count, events_per_minute
        from notifyhub.body_limits import body_limit_register
        from notifyhub.charts import Series
        from notifyhub.dashboard import chart_register, counter_register

        body_limit_register(
            prefix="/v1/notifications", max_bytes=lambda: settings.NOTIFYHUB_MAX_EVENT_BYTES
        )
        counter_register(
            label="Events in the last hour",
            compute=events_last_hour_count,
            url="/admin/events/event/",
        )
        chart_register(
            title="Events per minute, last hour",
            compute=events_per_minute,
            series=[Series(key="events", label="events")],
            empty_text="No events in the last hour.",
            url="/admin/events/event/",
        )
