"""The Notification API's event-type catalogue: `GET /notification/v1/event-types`."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.selectors import event_type_list


class EventTypeOutput(serializers.Serializer):
    id = serializers.CharField(
        help_text="The event type id, as a subscription's event_type_ids name it."
    )
    description = serializers.CharField(help_text="What an event of this type announces.")
    enabled = serializers.BooleanField(help_text="Whether producers may post events of this type.")
    schema = serializers.JSONField(
        allow_null=True,
        help_text="The JSON Schema every payload of this type must meet (null: any).",
    )


class EventTypeListApi(APIView):
    openapi_tag = "Notification API"
    required_scopes = [settings.SCOPE_CONSUMER, settings.SCOPE_ADMINISTRATOR]

    @extend_schema(
        operation_id="event_types_list",
        summary="List the event types a subscription can name",
        description=(
            "The v2 events that are configured in the events list: the ids a subscription's "
            "`event_type_ids` may name, each with the schema of its payload."
        ),
        responses={200: EventTypeOutput(many=True)},
    )
    def get(self, request: Request) -> Response:
        return Response(EventTypeOutput(event_type_list(), many=True).data)
