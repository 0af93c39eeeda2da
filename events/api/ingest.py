"""The Events API: `POST /v1/notifications` (keep this wire contract)."""

from dataclasses import dataclass
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
from notifyhub.formats import iso_utc, unstorable_char
from notifyhub.types import JSONDict

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
    """The body's documented shape (OpenAPI); `parse_event_body` applies it."""

    event = EventInput()


@dataclass(frozen=True, slots=True)
class EventBody:
    type: str
    payload: JSONDict
    id: str | None


def _text(value: Any, field: str, *, max_length: int) -> str:
    """A DRF CharField's rules: strings and numbers, trimmed, not blank, not too long."""
    if value is None:
        raise IngestRefused(f"{field}: This field may not be null.", field=field)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise IngestRefused(f"{field}: Not a valid string.", field=field)
    text = str(value).strip()
    if not text:
        raise IngestRefused(f"{field}: This field may not be blank.", field=field)
    if len(text) > max_length:
        raise IngestRefused(
            f"{field}: Ensure this field has no more than {max_length} characters.", field=field
        )
    char = unstorable_char(text)
    if char == "U+0000":
        raise IngestRefused(f"{field}: Null characters are not allowed.", field=field)
    if char is not None:
        raise IngestRefused(f"{field}: Surrogate characters are not allowed: {char}.", field=field)
    return text


def _present(container: dict[str, Any], key: str, field: str) -> Any:
    """A required, non-null member, with DRF's messages for a missing or null field."""
    if key not in container:
        raise IngestRefused(f"{field}: This field is required.", field=field)
    value = container[key]
    if value is None:
        raise IngestRefused(f"{field}: This field may not be null.", field=field)
    return value


def parse_event_body(data: Any) -> EventBody:
    """The body as EventIngestInput documents it, with its messages, checked by hand: the
    serializer deep-copied its fields and their validators on every request, an eighth of an
    ingest's time (tests/events/test_ingest.py checks the messages and fields it names)."""
    if not isinstance(data, dict):
        raise IngestRefused("event: the body must be a JSON object", field="event")
    event = _present(data, "event", "event")
    if not isinstance(event, dict):
        kind = type(event).__name__
        raise IngestRefused(
            f"event: Invalid data. Expected a dictionary, but got {kind}.", field="event"
        )
    # In EventInput's field order, as the serializer reports the first of several errors.
    event_id = _text(event["id"], "event.id", max_length=255) if "id" in event else None
    if "type" not in event:
        raise IngestRefused("event.type: This field is required.", field="event.type")
    type_id = _text(event["type"], "event.type", max_length=128)
    payload = _present(event, "payload", "event.payload")
    if not isinstance(payload, dict):
        kind = type(payload).__name__
        raise IngestRefused(
            f'event.payload: Expected a dictionary of items but got type "{kind}".',
            field="event.payload",
        )
    return EventBody(type=type_id, payload=payload, id=event_id)


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
        event = parse_event_body(request.data)
        idempotency_key = request.META.get("HTTP_IDEMPOTENCY_KEY") or event.id
        if idempotency_key is not None and not 0 < len(idempotency_key) <= 255:
            raise IngestRefused("Idempotency-Key: at most 255 characters", field="Idempotency-Key")
        result = event_ingest(
            producer=producer_of(request.auth),
            type_id=event.type,
            payload=event.payload,
            idempotency_key=idempotency_key,
        )
        # Shaped as EventIngestOutput documents it, without building the serializer per request.
        if result.duplicate:
            output = {
                "id": result.event_id,
                "status": "duplicate",
                "created_at": iso_utc(result.created_at),
            }
            return Response(output, status=202, headers={"Idempotency-Replayed": "true"})
        return Response({"id": result.event_id, "status": "processed"})
