"""The Integration API: `GET /api/v3/integration/notifications` (FIFO pull) and
`POST /api/v3/integration/notifications/release` (keep this contract).

Its clients are generated from the Docplanner documentation and send, on every call,
`Accept: application/vnd.docplanner+json; charset=UTF-8, application/vnd.error+docplanner+json`
(release: only the error type). Both vendor types are served here beside `application/json`:
success bodies in the vendor type when asked for, errors in the vendor error type when asked for
(a vnd.error body that also carries the platform's `code` and `description`).
"""

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions as drf
from rest_framework import serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifyhub import errors
from notifyhub.auth import request_token
from notifyhub.middleware import current_request_id
from notifyhub.openapi import ErrorOutput
from subscriptions.messages import IntegrationNotificationOutput, integration_message
from subscriptions.redelivery import deliveries_release
from subscriptions.services import notification_claim_next

VENDOR_JSON = "application/vnd.docplanner+json"
VENDOR_ERROR = "application/vnd.error+docplanner+json"


class VendorJSONRenderer(JSONRenderer):
    """Success bodies as `application/vnd.docplanner+json; charset=UTF-8` (what clients ask)."""

    media_type = VENDOR_JSON
    charset = "UTF-8"


class VendorErrorRenderer(JSONRenderer):
    """Error bodies as `application/vnd.error+docplanner+json; charset=UTF-8`."""

    media_type = VENDOR_ERROR
    charset = "UTF-8"


def _accepts(request: Request, media_type: str) -> bool:
    """Whether the request's Accept header names `media_type` itself (not through a wildcard),
    with a quality above zero."""
    for item in request.META.get("HTTP_ACCEPT", "").split(","):
        name, *params = (part.strip() for part in item.split(";"))
        if name.lower() != media_type:
            continue
        quality = next((p.partition("=")[2] for p in params if p.lower().startswith("q=")), "1")
        try:
            return float(quality) > 0
        except ValueError:
            return True  # an unreadable quality is the default one
    return False


class IntegrationNegotiation(DefaultContentNegotiation):
    """DRF's negotiation over JSON and the vendor type. A client that accepts only the vendor
    error type (the release operation's documented Accept, for a call whose success has no
    meaningful body) gets its success answer in the vendor type rather than a 406."""

    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, str]:
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except drf.NotAcceptable:
            if _accepts(request, VENDOR_ERROR):
                return VendorJSONRenderer(), VENDOR_JSON
            raise


class VendorErrorOutput(serializers.Serializer):
    """An error in `application/vnd.error+docplanner+json` (vnd.error, with the platform's code)."""

    message = serializers.CharField(help_text="What went wrong.")
    logref = serializers.CharField(help_text="The request id, as the hub's log lines show it.")
    path = serializers.CharField(required=False, help_text="JSON Pointer to the field at fault.")
    code = serializers.CharField(help_text="The platform's stable code (docs/errors.md).")
    description = serializers.CharField(help_text="The same text as `message`.")


def vendor_error_body(body: dict[str, str]) -> dict[str, str]:
    """The platform's error body (`errors.HubError.body`) as a vnd.error document."""
    error = {"message": body["description"], "logref": current_request_id()}
    if "field" in body:
        error["path"] = "/" + body["field"].replace(".", "/")
    return {**error, "code": body["code"], "description": body["description"]}


def integration_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The platform's errors; in the vendor error type to a client that asks for it."""
    response = errors.exception_handler(exc, context)
    request = context["request"]
    if response is not None and _accepts(request, VENDOR_ERROR):
        request.accepted_renderer = VendorErrorRenderer()
        request.accepted_media_type = VENDOR_ERROR
        response.data = vendor_error_body(response.data)
    return response


class IntegrationApi(APIView):
    """What every Integration API operation shares: its media types and its errors."""

    renderer_classes = [JSONRenderer, VendorJSONRenderer]
    content_negotiation_class = IntegrationNegotiation
    openapi_tag = "Integration API"
    error_bodies = {"application/json": ErrorOutput, VENDOR_ERROR: VendorErrorOutput}

    def get_exception_handler(self) -> Any:
        return integration_exception_handler


class IntegrationReleaseOutput(serializers.Serializer):
    released = serializers.IntegerField(
        help_text="Deliveries re-dispatched (or, with dry_run=1, that would be)."
    )
    dry_run = serializers.BooleanField(
        help_text="Whether this was a dry run (nothing re-dispatched, the hour not used up)."
    )


NOTIFICATION_EXAMPLE = OpenApiExample(
    "A notification",
    value={
        "id": "01HZX3K1Q9V7N2D4T6B8C0EFGH",
        "name": "order.accepted",
        "data": {"order_id": "H1234567890", "orderUUID": "265cb601-a78a-4862-9e9d-d6b48d6a0a3f"},
        "created_at": "2018-01-23T04:56:22Z",
        "expires_at": "2018-01-26T04:56:22Z",
    },
    response_only=True,
)


class IntegrationNotificationNextApi(IntegrationApi):
    """The earliest unread notification of the caller's subscriptions, one per request."""

    required_scopes = [settings.SCOPE_CONSUMER]

    @extend_schema(
        operation_id="pullNotification",
        summary="Pull the earliest notification not pulled yet (FIFO)",
        description=(
            "Responds with the earliest notification the client has not pulled yet, one per "
            "request, until there are none left (then 204). First In First Out. An event "
            "reaches a client once, however many of its subscriptions match it. Notifications "
            "not pulled within 72 hours (NOTIFYHUB_INTEGRATION_RETENTION, or the "
            "subscription's retention if longer) expire: `expires_at` says when."
        ),
        responses={
            200: IntegrationNotificationOutput,
            204: OpenApiResponse(description="Nothing left to pull."),
        },
        examples=[NOTIFICATION_EXAMPLE],
    )
    def get(self, request: Request) -> Response:
        claimed = notification_claim_next(client_id=request_token(request).client_id)
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


class IntegrationReleaseApi(IntegrationApi):
    """Re-dispatch the caller's failed (and unknown) webhook deliveries; once per hour."""

    required_scopes = [settings.SCOPE_CONSUMER]

    @extend_schema(
        operation_id="releaseNotifications",
        summary="Re-dispatch the notifications that were not pushed correctly",
        description=(
            "Triggers re-dispatching every notification whose push to the client's endpoint "
            "failed (or whose outcome is unknown) and that has not expired. Allowed once per "
            "hour (429 with Retry-After otherwise); `dry_run=1` only counts and spends "
            "nothing. Only for clients the hub pushes to (a subscription with an active "
            "`notification_url`): 409 otherwise."
        ),
        request=None,
        parameters=[OpenApiParameter("dry_run", OpenApiTypes.BOOL, OpenApiParameter.QUERY)],
        responses={
            200: OpenApiResponse(
                IntegrationReleaseOutput, description="dry_run: what would be released."
            ),
            202: IntegrationReleaseOutput,
            409: OpenApiResponse(description="The hub pushes nothing to this client."),
            429: OpenApiResponse(description="Already released within the hour; see Retry-After."),
        },
    )
    def post(self, request: Request) -> Response:
        dry_run = request.query_params.get("dry_run", "0").lower() in ("1", "true")
        released = deliveries_release(client_id=request_token(request).client_id, dry_run=dry_run)
        return Response(
            IntegrationReleaseOutput({"released": released, "dry_run": dry_run}).data,
            status=200 if dry_run else 202,
        )
