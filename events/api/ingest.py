"""The Events API: `POST /v1/notifications` (keep this wire contract).

The contract knows four answers: 200 processed, 202 already processed, 401 unauthorized and 422
invalid data. Its producers retry anything that is not a 422, so every refusal of the request's
data (its JSON, its media type, its headers, its event) is a 422 here, in the platform's error
body; only a body over the size limit keeps its 413 (docs/errors.md).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any, cast

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
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
from notifyhub.json_bodies import HubJSONParser, JsonUnprocessable
from notifyhub.serializer_fields import UtcDateTimeField
from notifyhub.types import JSONDict

SUPPORTED_API_VERSIONS = ("3.0",)
# The statuses the platform gives a refusal of what the request says (its body, its media type,
# the media type it accepts), answered 422 on this surface: a retry cannot fix any of them.
CLIENT_DATA_STATUSES = (400, 406, 415)
# The contract's own example (events-ingestion.md), shown in the OpenAPI schema.
CONTRACT_EXAMPLE = {
    "event": {
        "type": "order.accepted",
        "payload": {"order_id": "H1234567890", "orderUUID": "265cb601-a78a-4862-9e9d-d6b48d6a0a3f"},
    }
}


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
    id = serializers.CharField(
        required=False,
        max_length=255,
        allow_blank=False,
        help_text="The producer's id of the event; the duplicate key when no Idempotency-Key "
        "header is sent.",
    )
    type = serializers.CharField(
        max_length=128,
        help_text="An enabled event type of the catalogue, such as `order.accepted`.",
    )
    payload = serializers.DictField(
        help_text="The event's data, checked against its type's JSON Schema when it has one. "
        "Top-level `account_id`, `user_id` and `ticket_number` route it."
    )


class EventIngestInput(serializers.Serializer):
    """The body's documented shape (OpenAPI); `parse_event_body` applies it."""

    event = EventInput(help_text="The event to send.")


class EventJSONParser(HubJSONParser):
    """The platform's JSON parser, its refusals of storable data as this surface's 422
    (NOT000013, IngestRefused) with the same words."""

    def parse(
        self,
        stream: IO[bytes] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        try:
            return super().parse(stream, media_type, parser_context)
        except JsonUnprocessable as refused:
            raise IngestRefused(refused.description) from None


def ingest_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The platform's error body with the contract's statuses: a refusal of the request's data
    (malformed JSON, another media type, an Accept without JSON) keeps its code and answers 422."""
    error = errors.hub_error_from(exc)
    if error is None:
        return None  # A bug: Django's handler500 renders it.
    if error.status in CLIENT_DATA_STATUSES:
        error.status = 422
    return errors.error_response(error)


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
    id = serializers.CharField(help_text="The event's ULID, kept on every channel.")
    status = serializers.CharField(
        help_text="`processed` (200), or `duplicate` (202) for a repeat of an earlier event.",
    )
    created_at = UtcDateTimeField(
        required=False,
        help_text="When the original was stored (RFC 3339, UTC); on a duplicate only.",
    )


class EventIngestApi(APIView):
    """Store and route one event; a repeat of an earlier one answers 202 with the original."""

    openapi_tag = "Events API"
    authentication_classes = [ClientTokenAuthentication, BearerTokenAuthentication]
    permission_classes = [IsProducer]
    parser_classes = [EventJSONParser]
    # The schema seam (notifyhub.openapi): refusals are documented as this surface's 422.
    client_errors_are_422 = True

    def get_exception_handler(self) -> Any:
        return ingest_exception_handler

    @extend_schema(
        operation_id="events_ingest",
        summary="Отправка события",
        description="Send an event (the contract's `notifications` operation). The event is "
        "validated, deduplicated and routed to every consumer that asked for its type.",
        request=EventIngestInput,
        examples=[
            OpenApiExample(
                "order.accepted",
                summary="The contract's example",
                value=CONTRACT_EXAMPLE,
                request_only=True,
            ),
            OpenApiExample(
                "processed",
                value={"id": "01JE8Z3V9K2M4N6P8Q0R2S4T6V", "status": "processed"},
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "duplicate",
                value={
                    "id": "01JE8Z3V9K2M4N6P8Q0R2S4T6V",
                    "status": "duplicate",
                    "created_at": "2018-01-23T04:56:22Z",
                },
                response_only=True,
                status_codes=["202"],
            ),
        ],
        parameters=[
            OpenApiParameter(
                "Api-Version",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                enum=list(SUPPORTED_API_VERSIONS),
                description="Версия API (API version).",
            ),
            OpenApiParameter(
                "Client-Token",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="Токен клиента: the producer's API key (or send a bearer token "
                "with `events:publish`).",
            ),
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="The duplicate key (else `event.id`, else the type and payload).",
            ),
        ],
        responses={
            200: OpenApiResponse(EventIngestOutput, description="Событие обработано (processed)."),
            202: OpenApiResponse(
                EventIngestOutput,
                description="Событие уже было обработано (already processed; nothing stored "
                "again).",
            ),
            401: OpenApiResponse(description="unauthorized: missing, unknown or revoked token."),
            413: OpenApiResponse(description="Body over NOTIFYHUB_MAX_EVENT_BYTES."),
            422: OpenApiResponse(
                description="Требуемые данные отсутствуют или некорректны (missing or invalid "
                "data: malformed JSON, another media type, an unsupported Api-Version, an "
                "invalid event); `code` says which, `field` names the culprit."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > settings.NOTIFYHUB_MAX_EVENT_BYTES:
            raise errors.PayloadTooLarge(
                f"Events are limited to {settings.NOTIFYHUB_MAX_EVENT_BYTES} bytes."
            )
        if not request.content_type and int(length):
            # DRF reads a body without a Content-Type as no body at all.
            raise errors.UnsupportedMediaType()
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
        producer = cast(ApiKey | TokenInfo, request.auth)  # IsProducer let only these through
        result = event_ingest(
            producer=producer_of(producer),
            reach=producer.reach,
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
