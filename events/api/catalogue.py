"""The Notification API's event-type catalogue: `GET /notification/v1/event-types`."""

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.selectors import event_type_list


class EventTypeOutput(serializers.Serializer):
    id = serializers.CharField()
    description = serializers.CharField()
    enabled = serializers.BooleanField()
    schema = serializers.JSONField(allow_null=True)


class EventTypeListApi(APIView):
    openapi_tag = "Notification API"
    required_scopes = [settings.SCOPE_CONSUMER, settings.SCOPE_ADMINISTRATOR]

    @extend_schema(operation_id="event_types_list", responses={200: EventTypeOutput(many=True)})
    def get(self, request: Request) -> Response:
        return Response(EventTypeOutput(event_type_list(), many=True).data)
