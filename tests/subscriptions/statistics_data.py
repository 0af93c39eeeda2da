"""Ledger rows with chosen times and outcomes, written directly: the statistics read the
ledger, and only rows written by hand can hold a known past."""

from datetime import datetime, timedelta

from events.models import Event
from subscriptions.models import Delivery, Subscription


def push_subscription(client_id: str) -> Subscription:
    return Subscription.objects.create(
        client_id=client_id, subscribed_by="alice-admin", notification_url="https://example.com/h"
    )


def event_at(created_at: datetime, *, type_id: str = "chat") -> Event:
    return Event.objects.create(
        type_id=type_id, payload={}, producer="key:1", payload_hash="-", created_at=created_at
    )


def delivery(
    subscription: Subscription,
    created_at: datetime,
    status: str,
    *,
    took: timedelta | None = None,
) -> Delivery:
    """A delivery of a new event ingested at `created_at` (the routing statement gives the
    delivery its event's time), finished `took` later."""
    return Delivery.objects.create(
        subscription=subscription,
        event=event_at(created_at),
        status=status,
        created_at=created_at,
        expires_at=created_at + timedelta(days=7),
        finished_at=None if took is None else created_at + took,
    )
