"""The subscriptions app's delivery channels: pull queues and webhook push."""

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from events.channels import RoutingStatement
from events.models import Event
from subscriptions.services import notifications_routing_statement
from subscriptions.tasks import deliveries_enqueue
from subscriptions.webhooks import deliveries_routing_statement


class PullChannel:
    """Queues notifications for the paged and FIFO pull surfaces (in the ingest transaction)."""

    name = "pull"

    def routing_statement(
        self, *, event: Event, connection: BaseDatabaseWrapper
    ) -> RoutingStatement:
        return notifications_routing_statement(connection=connection)

    def routed(self, *, event: Event, row_ids: list[Any]) -> None:
        """Nothing more to do: readers take the rows."""


class WebhookChannel:
    """Writes a delivery row per pushing subscription (the outbox) in the ingest transaction; a
    worker POSTs it to the subscription's URL after commit."""

    name = "webhook"

    def routing_statement(
        self, *, event: Event, connection: BaseDatabaseWrapper
    ) -> RoutingStatement:
        return deliveries_routing_statement(connection=connection)

    def routed(self, *, event: Event, row_ids: list[Any]) -> None:
        if row_ids:
            deliveries_enqueue(row_ids)
