"""The device push channel: matching events owe a push to each interested phone token."""

from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper

from devices.services import device_pushes_routing_statement
from devices.tasks import device_pushes_enqueue
from events.channels import RoutingStatement
from events.models import Event


class DevicePushChannel:
    """Writes DevicePush rows in the ingest transaction and sends them after commit."""

    name = "device_push"

    def routing_statement(
        self, *, event: Event, connection: BaseDatabaseWrapper
    ) -> RoutingStatement | None:
        return device_pushes_routing_statement(event=event, connection=connection)

    def routed(self, *, event: Event, row_ids: list[Any]) -> None:
        if row_ids:
            device_pushes_enqueue(push_ids=row_ids)
