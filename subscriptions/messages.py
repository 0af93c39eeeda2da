"""The Integration API's notification object, the same for its FIFO pull and its webhook push."""

from datetime import datetime
from typing import Any

from rest_framework import serializers

from notifyhub.types import JSONDict


class IntegrationNotificationOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    data = serializers.JSONField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


def integration_message(
    *,
    event_id: str,
    type_id: str,
    payload: JSONDict,
    created_at: datetime,
    expires_at: datetime,
) -> dict[str, Any]:
    """`{"id", "name", "data", "created_at", "expires_at"}`: a pulled or pushed notification."""
    return IntegrationNotificationOutput(
        {
            "id": event_id,
            "name": type_id,
            "data": payload,
            "created_at": created_at,
            "expires_at": expires_at,
        }
    ).data
