"""The registry of delivery channels: how the routing step reaches every way of delivering.

Each channel app (subscriptions, devices, ...) registers its channel in its AppConfig.ready(), so
adding a channel never edits `events`. For each new event the routing step asks every channel
for the rows it owes, as one INSERT ... SELECT that reads the event from the relation
`new_event` (the event table's columns), and runs them with the event's own insert: on
PostgreSQL as a single statement (one round trip, one commit), elsewhere in one transaction.
So nothing is lost if the process dies after commit. Then each channel hears the ids of the
rows it wrote, and schedules any further work with `transaction.on_commit(..., robust=True)`.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from events.models import Event


@dataclass(frozen=True)
class RoutingStatement:
    """`INSERT INTO ... SELECT ... FROM new_event AS e ... RETURNING <the new rows' id>`.

    `new_event` holds the new event's row (no row when the event repeated an earlier one, so
    nothing is written); `params` fill the statement's own `%s` placeholders, in order. One
    plain INSERT (no WITH of its own): PostgreSQL runs it as a data-modifying CTE.
    """

    sql: str
    params: Sequence[Any] = ()


class DeliveryChannel(Protocol):
    """One way notifications leave the hub."""

    name: str

    def routing_statement(
        self, *, event: "Event", connection: "BaseDatabaseWrapper"
    ) -> RoutingStatement | None:
        """The rows this channel owes for `event`, or None when it owes none whatever the
        database holds (decided from the event alone). One statement, in the dialect of
        `connection` (where it will run), so the cost of routing never grows with the number of
        recipients."""

    def routed(self, *, event: "Event", row_ids: list[Any]) -> None:
        """The event is stored and the statement wrote `row_ids` (empty without a statement);
        runs in the ingest transaction: schedule further work with `transaction.on_commit`."""


_channels: dict[str, DeliveryChannel] = {}


def channel_register(channel: DeliveryChannel) -> None:
    """Add a delivery channel to the routing step (idempotent per channel name)."""
    _channels[channel.name] = channel


def channels_all() -> list[DeliveryChannel]:
    """Every registered channel, in registration order."""
    return list(_channels.values())
