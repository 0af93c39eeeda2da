"""The registry of delivery channels: how the routing step reaches every way of delivering.

Each channel app (subscriptions, devices, ...) registers its channel in its AppConfig.ready(), so
adding a channel never edits `events`. The routing step calls every channel inside the transaction
that stores the event: a channel writes its own rows there (so nothing is lost if the process
dies after commit) and schedules any further work with `transaction.on_commit(..., robust=True)`.
"""

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from events.models import Event


class DeliveryChannel(Protocol):
    """One way notifications leave the hub."""

    name: str

    def route(self, *, event: "Event") -> None:
        """Record what this channel owes for `event`; called inside the ingest transaction.

        The number of queries must not grow with the number of recipients (bulk writes only).
        """


_channels: dict[str, DeliveryChannel] = {}


def channel_register(channel: DeliveryChannel) -> None:
    """Add a delivery channel to the routing step (idempotent per channel name)."""
    _channels[channel.name] = channel


def channels_all() -> list[DeliveryChannel]:
    """Every registered channel, in registration order."""
    return list(_channels.values())
