"""The streams' delivery channel: one bus message per event, after commit."""

from typing import Any

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from events.models import Event
from streams.messages import bus_publish, event_message


class StreamChannel:
    """After commit, publishes each event once on the bus; every web process hands it to the
    streams it holds whose filters match (and to the admin's live page). Routing reads and
    writes nothing for streams: the event row is the replay, and the match runs in memory."""

    name = "stream"

    def routing_statement(self, *, event: Event, connection: BaseDatabaseWrapper) -> None:
        return None

    def routed(self, *, event: Event, row_ids: list[Any]) -> None:
        message = event_message(event)
        transaction.on_commit(lambda: bus_publish(message), robust=True)
