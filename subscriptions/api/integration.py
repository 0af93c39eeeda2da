"""The Integration API's FIFO pull: `GET /api/v3/integration/notifications` (keep this contract)."""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from subscriptions.services import notification_claim_next


class IntegrationNotificationOutput(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    data = serializers.JSONField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()


class IntegrationNotificationNextApi(APIView):
    """The earliest unread notification of the caller's subscriptions, one per request."""

    required_scopes = [settings.SCOPE_CONSUMER]

    @extend_schema(
        operation_id="integration_notifications_next",
        responses={
            200: IntegrationNotificationOutput,
            204: OpenApiResponse(description="Nothing left to read."),
        },
    )
    def get(self, request: Request) -> Response:
        claimed = notification_claim_next(client_id=request.auth.client_id)
        if claimed is None:
            return Response(status=204)
        return Response(
            IntegrationNotificationOutput(
                {
                    "id": claimed.event_id,
                    "name": claimed.type_id,
                    "data": claimed.payload,
                    "created_at": claimed.created_at,
                    "expires_at": claimed.expires_at,
                }
            ).data
        )
