"""The subscriptions app's delivery channels: pull queues and webhook push."""

from events.models import Event
from subscriptions.services import notifications_enqueue
from subscriptions.webhooks import deliveries_create


class PullChannel:
    """Queues notifications for the paged and FIFO pull surfaces (in the ingest transaction)."""

    name = "pull"

    def route(self, *, event: Event) -> None:
        notifications_enqueue(event=event)


class WebhookChannel:
    """Writes a delivery row per pushing subscription (the outbox) in the ingest transaction; a
    worker POSTs it to the subscription's URL after commit."""

    name = "webhook"

    def route(self, *, event: Event) -> None:
        deliveries_create(event=event)
