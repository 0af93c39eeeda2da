"""The hub's own events: what goes wrong inside it, ingested into its own catalogue.

An operator subscribes to these types like any consumer, with any channel the hub offers (the
paged or FIFO pull, a webhook, a stream), instead of a separate alerting mechanism. Each is
emitted after the transaction that recorded the failure commits, never raises into it, and is
never emitted about the delivery of another operational event (a failing operator webhook would
otherwise feed itself).
"""

import logging
from typing import TypedDict

from django.db import transaction

from events.services import event_ingest
from notifyhub.redis import redis_client, redis_key
from notifyhub.tenancy import HUB
from notifyhub.types import JSONDict

logger = logging.getLogger(__name__)

PRODUCER = "notifyhub"
PREFIX = "notifyhub."
DELIVERY_EXHAUSTED = "notifyhub.delivery.exhausted"
SUBSCRIPTION_PUSH_DISABLED = "notifyhub.subscription.push_disabled"
PROVIDER_FAILING = "notifyhub.provider.failing"
# Seeded into the catalogue by events/migrations/0006_seed_operational_types.py.
TYPES = (DELIVERY_EXHAUSTED, SUBSCRIPTION_PUSH_DISABLED, PROVIDER_FAILING)


class DeliveryExhausted(TypedDict):
    delivery_id: int
    subscription_id: str
    client_id: str
    notification_url: str
    event_id: str
    event_type: str
    attempts: int
    last_status_code: int | None
    reason: str


class SubscriptionPushDisabled(TypedDict):
    subscription_id: str
    client_id: str
    notification_url: str
    reason: str


class ProviderFailing(TypedDict):
    provider: str
    reason: str
    answer: str
    push_id: int
    event_id: str


def is_operational(type_id: str) -> bool:
    return type_id.startswith(PREFIX)


def operational_event_emit(
    *, type_id: str, payload: JSONDict, key: str, throttle_seconds: int = 0
) -> None:
    """Ingest one of the hub's own events once the current transaction commits (at once outside
    one). `key` is its idempotency key (a retried task emits nothing twice); with
    `throttle_seconds`, at most one event per key prefix in that time (a Redis SET NX)."""

    def emit() -> None:
        try:
            if throttle_seconds and not redis_client().set(
                redis_key("operational", type_id, key.split(":", 1)[0]),
                1,
                nx=True,
                ex=throttle_seconds,
            ):
                return
            event_ingest(
                producer=PRODUCER, reach=HUB, type_id=type_id, payload=payload, idempotency_key=key
            )
        except Exception as exc:
            # The failure it reports is recorded already (the ledger); only the alert is lost.
            logger.warning("could not emit the operational event %s (%s): %s", type_id, key, exc)

    transaction.on_commit(emit, robust=True)
