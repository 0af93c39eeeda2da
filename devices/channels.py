"""The device push channel: matching events owe a push to each interested phone token."""

from devices.services import device_pushes_route
from devices.tasks import device_pushes_enqueue
from events.models import Event


class DevicePushChannel:
    """Writes DevicePush rows in the ingest transaction and sends them after commit."""

    name = "device_push"

    def route(self, *, event: Event) -> None:
        device_pushes_enqueue(push_ids=device_pushes_route(event=event))
