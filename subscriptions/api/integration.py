"""The Integration API's FIFO pull: `GET /api/v3/integration/notifications` (keep this contract)."""

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from subscriptions.messages import IntegrationNotificationOutput, integration_message
from subscriptions.redelivery import deliveries_release
from subscriptions.services import notification_claim_next


class IntegrationReleaseOutput(serializers.Serializer):
    released = serializers.IntegerField(
        help_text="Deliveries re-dispatched (or, with dry_run=1, that would be)."
    )
    dry_run = serializers.BooleanField()


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
            integration_message(
                event_id=claimed.event_id,
                type_id=claimed.type_id,
                payload=claimed.payload,
                created_at=claimed.created_at,
                expires_at=claimed.expires_at,
            )
        )


class IntegrationReleaseApi(APIView):
    """Re-dispatch the caller's failed (and unknown) webhook deliveries; once per hour."""

    required_scopes = [settings.SCOPE_CONSUMER]

    @extend_schema(
        operation_id="integration_notifications_release",
        request=None,
        parameters=[OpenApiParameter("dry_run", OpenApiTypes.BOOL, OpenApiParameter.QUERY)],
        responses={
            200: OpenApiResponse(
                IntegrationReleaseOutput, description="dry_run: what would be released."
            ),
            202: IntegrationReleaseOutput,
            429: OpenApiResponse(description="Already released within the hour; see Retry-After."),
        },
    )
    def post(self, request: Request) -> Response:
        dry_run = request.query_params.get("dry_run", "0").lower() in ("1", "true")
        released = deliveries_release(client_id=request.auth.client_id, dry_run=dry_run)
        return Response(
            IntegrationReleaseOutput({"released": released, "dry_run": dry_run}).data,
            status=200 if dry_run else 202,
        )
