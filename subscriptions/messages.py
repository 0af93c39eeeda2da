"""The Integration API's notification object, the same for its FIFO pull and its webhook push."""

from datetime import datetime
from typing import Any

from rest_framework import serializers

from events.models import Event


class IntegrationNotificationOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    data = serializers.JSONField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


def integration_message(
    *, event: Event, created_at: datetime, expires_at: datetime
) -> dict[str, Any]:
    """`{"id", "name", "data", "created_at", "expires_at"}`: a pulled or pushed notification."""
    return IntegrationNotificationOutput(
        {
            "id": event.id,
            "name": event.type_id,
            "data": event.payload,
            "created_at": created_at,
            "expires_at": expires_at,
        }
    ).data
