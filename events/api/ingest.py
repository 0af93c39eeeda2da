"""The Events API: `POST /v1/notifications` (keep this wire contract)."""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from events.models import ApiKey
from events.services import IngestRefused, event_ingest
from notifyhub import errors
from notifyhub.auth import BearerTokenAuthentication, TokenInfo

SUPPORTED_API_VERSIONS = ("3.0",)


class ClientTokenAuthentication(BaseAuthentication):
    """A producer API key in the `Client-Token` header; request.auth becomes the ApiKey."""

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        raw = request.META.get("HTTP_CLIENT_TOKEN")
        if raw is None:
            return None
        api_key = ApiKey.objects.filter(key_hash=ApiKey.hash(raw.strip())).first()
        if api_key is None or not api_key.is_active:
            raise errors.NotAuthenticated("The Client-Token is unknown or revoked.")
        return AnonymousUser(), api_key

    def authenticate_header(self, request: Request) -> str:
        return errors.WWW_AUTHENTICATE


class ClientTokenScheme(OpenApiAuthenticationExtension):
    """How ClientTokenAuthentication appears in the OpenAPI schema."""

    target_class = ClientTokenAuthentication
    name = "clientToken"

    def get_security_definition(self, auto_schema: object) -> dict[str, object]:
        return {"type": "apiKey", "in": "header", "name": "Client-Token"}


class IsProducer(BasePermission):
    """An active API key, or a bearer token with `events:publish`."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, ApiKey):
            return True
        if isinstance(request.auth, TokenInfo):
            if request.auth.has_scope(settings.SCOPE_PUBLISH):
                return True
            raise errors.ScopeMissing(f"The access token needs the scope {settings.SCOPE_PUBLISH}.")
        raise errors.NotAuthenticated("Send a Client-Token or an Authorization: Bearer token.")


def producer_of(auth: ApiKey | TokenInfo) -> str:
    """The idempotency scope: one producer's keys never meet another's."""
    if isinstance(auth, ApiKey):
        return auth.producer
    return f"client:{auth.client_id}"


class EventInput(serializers.Serializer):
    id = serializers.CharField(required=False, max_length=255, allow_blank=False)
    type = serializers.CharField(max_length=128)
    payload = serializers.DictField()


class EventIngestInput(serializers.Serializer):
    event = EventInput()


class EventIngestOutput(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    created_at = serializers.DateTimeField(required=False)


class EventIngestApi(APIView):
    """Store and route one event; a repeat of an earlier one answers 202 with the original."""

    authentication_classes = [ClientTokenAuthentication, BearerTokenAuthentication]
    permission_classes = [IsProducer]

    @extend_schema(
        operation_id="events_ingest",
        request=EventIngestInput,
        parameters=[
            OpenApiParameter(
                "Api-Version",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                enum=list(SUPPORTED_API_VERSIONS),
            ),
            OpenApiParameter("Client-Token", OpenApiTypes.STR, OpenApiParameter.HEADER),
            OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER),
        ],
        responses={
            200: EventIngestOutput,
            202: OpenApiResponse(
                EventIngestOutput, description="Already processed; nothing stored again."
            ),
            401: OpenApiResponse(description="Missing, unknown or revoked token."),
            413: OpenApiResponse(description="Body over NOTIFYHUB_MAX_EVENT_BYTES."),
            422: OpenApiResponse(description="Invalid event; `field` names the culprit."),
        },
    )
    def post(self, request: Request) -> Response:
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > settings.NOTIFYHUB_MAX_EVENT_BYTES:
            raise errors.PayloadTooLarge(
                f"Events are limited to {settings.NOTIFYHUB_MAX_EVENT_BYTES} bytes."
            )
        version = request.META.get("HTTP_API_VERSION")
        if version not in SUPPORTED_API_VERSIONS:
            raise IngestRefused(
                f"Api-Version: supported versions are {', '.join(SUPPORTED_API_VERSIONS)}",
                field="Api-Version",
            )
        if not isinstance(request.data, dict):
            raise IngestRefused("event: the body must be a JSON object", field="event")
        body = EventIngestInput(data=request.data)
        if not body.is_valid():
            field, message = errors.first_message(body.errors)
            raise IngestRefused(f"{field}: {message}", field=field)
        event = body.validated_data["event"]
        idempotency_key = request.META.get("HTTP_IDEMPOTENCY_KEY") or event.get("id")
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
            raise IngestRefused("Idempotency-Key: at most 255 characters", field="Idempotency-Key")
        result = event_ingest(
            producer=producer_of(request.auth),
            type_id=event["type"],
            payload=event["payload"],
            idempotency_key=idempotency_key,
        )
        if result.duplicate:
            output = {"id": result.event_id, "status": "duplicate", "created_at": result.created_at}
            return Response(
                EventIngestOutput(output).data, status=202, headers={"Idempotency-Replayed": "true"}
            )
        return Response(EventIngestOutput({"id": result.event_id, "status": "processed"}).data)
