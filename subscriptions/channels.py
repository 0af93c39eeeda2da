"""The pull channel: every routed event lands in the queue of each matching subscription."""

from events.models import Event
from subscriptions.services import notifications_enqueue


class PullChannel:
    """Queues notifications for the paged and FIFO pull surfaces (in the ingest transaction)."""

    name = "pull"

    def route(self, *, event: Event) -> None:
        notifications_enqueue(event=event)
