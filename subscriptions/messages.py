"""The notification objects that leave the hub, in the shape of each surface that carries them.

- The Integration API's object, the same for its FIFO pull and its webhook push.
  The webhook body is this object too (`WebhookBody`).
- The Notification API's page item, written twice: in Python, and as a PostgreSQL expression so
  the paged pull's claim statement can render a whole page (tests/subscriptions/
  test_page_rendering.py checks that both agree with the documented serializer).
"""

from datetime import datetime
from typing import TypeAlias, TypedDict, cast

from rest_framework import serializers

from events.models import Event
from notifyhub.formats import iso_utc, iso_utc_sql
from notifyhub.serializer_fields import UtcDateTimeField
from notifyhub.sql import sql_names
from notifyhub.types import JSONDict
from subscriptions.models import Notification


class IntegrationMessage(TypedDict):
    """The Integration API's notification object, as its FIFO pull and its webhooks send it."""

    id: str  # the event's id
    name: str  # the event's type
    data: JSONDict  # the producer's payload, untouched
    created_at: str  # RFC 3339, as DRF's DateTimeField writes it
    expires_at: str


WebhookBody: TypeAlias = IntegrationMessage
"""The JSON body of a webhook POST: the Integration API's object, the same as a pull answers."""


class NotificationPageItem(TypedDict):
    """One item of the Notification API's page (documented by its NotificationItemOutput)."""

    id: str  # the event's id
    event_type_id: str
    created_at: str  # notifyhub.formats.iso_utc
    expires_at: str
    payload: JSONDict


class IntegrationNotificationOutput(serializers.Serializer):
    id = serializers.CharField(help_text="The event's id.")
    name = serializers.CharField(help_text="The event's name (its type).")
    # DRF's metaclass moves declared fields off the class, so the serializer's own `.data`
    # property is untouched by this field; only the stubs see a clash.
    data = serializers.JSONField(  # type: ignore[assignment]  # see above
        help_text="The event data, as its producer sent it; its schema depends on `name`."
    )
    created_at = UtcDateTimeField(help_text="When the notification was created.")
    expires_at = UtcDateTimeField(
        help_text="When the notification, if not pulled by then, is marked as expired and "
        "deleted (72 hours after it was created, by default)."
    )


def integration_message(
    *,
    event_id: str,
    type_id: str,
    payload: JSONDict,
    created_at: datetime,
    expires_at: datetime,
) -> IntegrationMessage:
    """`{"id", "name", "data", "created_at", "expires_at"}`: a pulled or pushed notification."""
    # The serializer writes the documented formats; its `.data` is typed as a plain dict.
    return cast(
        IntegrationMessage,
        IntegrationNotificationOutput(
            {
                "id": event_id,
                "name": type_id,
                "data": payload,
                "created_at": created_at,
                "expires_at": expires_at,
            }
        ).data,
    )


def notification_page_item(
    *,
    event_id: str,
    type_id: str,
    payload: JSONDict,
    created_at: datetime,
    expires_at: datetime,
) -> NotificationPageItem:
    """`{"id", "event_type_id", "created_at", "expires_at", "payload"}`: one item of a page.

    Built by hand, not by the Notification API's NotificationItemOutput that documents it: the
    serializer's cost per item was a measurable share of a page read (docs/benchmarks.md).
    """
    return {
        "id": event_id,
        "event_type_id": type_id,
        "created_at": iso_utc(created_at),
        "expires_at": iso_utc(expires_at),
        "payload": payload,
    }


def notification_page_item_sql(*, event: str, queued: str, expires_at: str) -> str:
    """`notification_page_item` as a PostgreSQL `json` expression over an events_event row and
    its subscriptions_notification row (the aliases `event` and `queued`) and the SQL of the
    item's paged-pull expiry: the same keys in the same order, the same value formats, and the
    payload as jsonb writes it."""
    e = sql_names(Event)
    q = sql_names(Notification)
    return (
        f"json_build_object('id', {event}.{e.id}, 'event_type_id', {event}.{e.type},"
        f" 'created_at', {iso_utc_sql(f'{queued}.{q.created_at}')},"
        f" 'expires_at', {iso_utc_sql(expires_at)},"
        f" 'payload', {event}.{e.payload})"
    )
