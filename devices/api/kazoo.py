"""The Device API, Kazoo style (keep this wire contract):
`/v2/accounts/{ACCOUNT_ID}/push_notification_subscriptions/{APP}/{DEVICE_ID}`.

Kazoo answers every request, errors included, in its own envelope; this module renders it, so
the services below stay unaware of the wire format.
"""

import hashlib
import logging
import re
import socket
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devices.api.kazoo_document import (
    DeviceInvalid,
    device_document_validate,
    kazoo_device_document,
    kazoo_seconds,
)
from devices.models import Device, Preference, Registration
from devices.selectors import device_get
from devices.services import DeviceNotFound, device_create, device_delete, device_update
from notifyhub import errors
from notifyhub.auth import BearerTokenAuthentication, TokenInfo, request_token
from notifyhub.body_limits import TooLarge
from notifyhub.json_bodies import JsonUnprocessable, json_body_loads
from notifyhub.middleware import current_request_id
from notifyhub.selectors import account_may_act

logger = logging.getLogger(__name__)

KAZOO_VERSION = "4.3.0"
# Kazoo names the answering node; a digest of the host name says which without exposing it.
NODE = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:32]
MAX_BODY_BYTES = 64 * 1024
PATH_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
# Kazoo 4.x's error `message` per status: crossbar's system error names (cb_context's
# add_system_error), and response_invalid_data's "invalid data" for a document it refuses.
KAZOO_MESSAGES = {
    400: "invalid data",
    401: "invalid_credentials",
    403: "forbidden",
    404: "bad_identifier",
    405: "invalid_method",
    409: "conflicting_documents",
    413: "request_entity_too_large",
    415: "unsupported_media_type",
    500: "internal_server_error",
    503: "datastore_fault",
}
# The fixed `data.message` Kazoo gives these system errors, whatever the cause: a client reads
# one text per status (our own descriptions would differ between causes).
KAZOO_DATA_MESSAGES = {
    401: "invalid credentials",
    403: "forbidden",
    404: "bad identifier",
    405: "method not allowed",
}
# The contract's example tokens (its {APNS_TOKEN} and {FCM_TOKEN}, filled with real-looking ones).
EXAMPLE_APNS_ID = "5bd2e3f1c0a94d1b8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"
EXAMPLE_FCM_ID = "fcm-token:APA91bExample_1"
EXAMPLE_DOCUMENT = {
    "mobile_device_id": "5D3A1B2C-7E8F-4A9B-8C1D-2E3F4A5B6C7D",
    "notification_registration_ids": {
        EXAMPLE_APNS_ID: {
            "notification_preferences": ["incoming_call"],
            "notification_type": "apns",
        },
        EXAMPLE_FCM_ID: {
            "notification_preferences": ["chat", "new_voicemail"],
            "notification_type": "fcm",
        },
    },
    "platform": "ios",
    "sip_proxy_server": "10.0.0.10",
}


class KazooTokenAuthentication(BaseAuthentication):
    """`X-Auth-Token: <access token>` as Kazoo clients send it; `Authorization: Bearer` too."""

    def authenticate(self, request: Request) -> tuple[Any, TokenInfo] | None:
        raw = request.META.get("HTTP_X_AUTH_TOKEN")
        if raw is None:
            return BearerTokenAuthentication().authenticate(request)
        if not raw.strip():
            raise errors.NotAuthenticated("The X-Auth-Token header is empty.")
        return BearerTokenAuthentication.authenticate_token(raw.strip())

    def authenticate_header(self, request: Request) -> str:
        return errors.WWW_AUTHENTICATE


class KazooTokenScheme(OpenApiAuthenticationExtension):
    """How KazooTokenAuthentication appears in the OpenAPI schema."""

    target_class = KazooTokenAuthentication
    name = "kazooAuthToken"

    def get_security_definition(self, auto_schema: object) -> dict[str, object]:
        return {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}


def kazoo_paths_as_the_contract_writes_them(
    result: dict[str, Any], **kwargs: Any
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the Kazoo path published without a trailing slash.

    The URL pattern takes the path with or without one (`/?$`), which drf-spectacular renders
    as `/`; the contract, and so a client generated from the schema, writes it without.
    """
    result["paths"] = {
        (path.removesuffix("/") if path.startswith("/v2/") else path): item
        for path, item in result["paths"].items()
    }
    return result


# --- Wire shapes: the document, and Kazoo's success and error envelopes ---


class RegistrationInput(serializers.Serializer):
    notification_preferences = serializers.ListField(
        child=serializers.ChoiceField(choices=Preference.Name.values),
        help_text="The types of notifications wanted; each may appear under one registration "
        "id only.",
    )
    notification_type = serializers.ChoiceField(
        choices=Registration.Provider.values, help_text="The push service: apns or fcm."
    )
    push_type = serializers.ChoiceField(
        choices=Registration.PushType.values,
        required=False,
        help_text="notifyhub's extension: an APNs `alert` (default) or `voip` push.",
    )


class DeviceDocumentInput(serializers.Serializer):
    """The Kazoo document; `device_document_validate` applies it, naming every broken rule."""

    app_name = serializers.CharField(
        required=False, help_text="The path's {APP}; when sent it must equal it."
    )
    mobile_device_id = serializers.CharField(
        max_length=255, help_text="An identifier provided by the mobile device."
    )
    notification_registration_ids = serializers.DictField(
        child=RegistrationInput(),
        help_text="Notification configuration per push notification registration id (token).",
    )
    platform = serializers.ChoiceField(
        choices=Device.Platform.values,
        help_text="The platform that the push notification subscriptions are for.",
    )
    sip_proxy_server = serializers.CharField(
        max_length=255,
        help_text="The hostname or IP address of the SIP registrar the app will register to "
        "upon waking from a push notification.",
    )
    revision = serializers.CharField(
        required=False, help_text="The revision the caller read (or send If-Match)."
    )


class DeviceRequestInput(serializers.Serializer):
    data = DeviceDocumentInput(  # type: ignore[assignment]  # a field, moved off the class by DRF's metaclass
        help_text="The push notification subscription document."
    )


class RegistrationOutput(serializers.Serializer):
    notification_preferences = serializers.ListField(
        child=serializers.CharField(),
        help_text="The types of notifications that the user wants to receive. The values must "
        "be unique amongst all notification registration ids in the subscription.",
    )
    notification_type = serializers.CharField(
        help_text="The type of notification service to use: apns or fcm."
    )
    push_type = serializers.CharField(
        help_text="notifyhub's extension: an APNs `alert` (default) or `voip` push."
    )


class DeactivationOutput(serializers.Serializer):
    reason = serializers.CharField(help_text="Why the push service refused the token.")


class DeviceReadOnlyOutput(serializers.Serializer):
    created = serializers.CharField(help_text="RFC 3339, UTC, whole seconds.")
    modified = serializers.CharField(help_text="RFC 3339, UTC, whole seconds.")
    deactivated_registration_ids = serializers.DictField(
        child=DeactivationOutput(),
        help_text="The registration ids the push service refused, each with why; no pushes go "
        "to them.",
    )


class DeviceOutput(serializers.Serializer):
    """The stored document, from `_device_document`."""

    id = serializers.CharField(help_text="The path's {DEVICE_ID}.")
    app_name = serializers.CharField(
        help_text="The identifier for the app that will be sending push notifications."
    )
    mobile_device_id = serializers.CharField(
        help_text="An identifier provided by the mobile device."
    )
    notification_registration_ids = serializers.DictField(
        child=RegistrationOutput(),
        help_text="Notification configuration per push notification registration id.",
    )
    platform = serializers.CharField(
        help_text="The platform that the push notification subscriptions are for."
    )
    sip_proxy_server = serializers.CharField(
        help_text="The hostname or IP address of the SIP registrar the app will register to "
        "upon waking from a push notification."
    )
    _read_only = DeviceReadOnlyOutput(help_text="What the hub keeps about the document.")


class DeletedReadOnlyOutput(serializers.Serializer):
    deleted = serializers.BooleanField(help_text="Always true: the subscription is removed.")


class DeletedOutput(serializers.Serializer):
    id = serializers.CharField(help_text="The removed {DEVICE_ID}.")
    _read_only = DeletedReadOnlyOutput(help_text="`deleted`: the document is gone.")


class EnvelopeOutput(serializers.Serializer):
    """What every Kazoo answer carries."""

    auth_token = serializers.CharField(help_text="The token the request authenticated with.")
    node = serializers.CharField(help_text="The server that answered (a digest of its name).")
    request_id = serializers.CharField(help_text="The request's id (X-Request-ID).")
    status = serializers.CharField(help_text="`success`, or `error` with `error` and `message`.")
    timestamp = serializers.CharField(help_text="RFC 3339, UTC, whole seconds.")
    version = serializers.CharField(help_text="The Kazoo API version answering.")


class DeviceEnvelopeOutput(EnvelopeOutput):
    data = DeviceOutput(  # type: ignore[assignment]  # a field, moved off the class by DRF's metaclass
        help_text="The push notification subscription document, as stored."
    )
    revision = serializers.CharField(help_text="The document's revision; send it as If-Match.")


class DeletedEnvelopeOutput(EnvelopeOutput):
    data = DeletedOutput(  # type: ignore[assignment]  # a field, moved off the class by DRF's metaclass
        help_text="The removed subscription's id."
    )
    revision = serializers.CharField(help_text="The removed document's last revision.")


class ErrorEnvelopeOutput(EnvelopeOutput):
    data = serializers.DictField(  # type: ignore[assignment]  # as above
        help_text="`message` (and for a 404 the `cause`); for a 400, each field's broken rules."
    )
    error = serializers.CharField(help_text="The HTTP status, as a string.")
    message = serializers.CharField(help_text="Kazoo's error name, such as `bad_identifier`.")


def _raw_token(request: Request) -> str:
    raw = request.META.get("HTTP_X_AUTH_TOKEN")
    if raw is None:
        scheme, _, raw = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != "bearer":
            return ""
    return raw.strip()


def _envelope(request: Request, *, status: str, **fields: Any) -> dict[str, Any]:
    return {
        "auth_token": _raw_token(request),
        "node": NODE,
        "request_id": current_request_id(),
        "status": status,
        "timestamp": kazoo_seconds(timezone.now()),
        "version": KAZOO_VERSION,
        **fields,
    }


def _not_found_cause(request: Request, error: errors.HubError) -> str:
    if isinstance(error, DeviceNotFound):
        return error.identifier
    return request.path  # No endpoint: the path itself named nothing.


def kazoo_error_response(request: Request, error: errors.HubError) -> Response:
    """A HubError in Kazoo's error envelope, with Kazoo's texts for its system errors."""
    status = error.status
    if isinstance(error, DeviceInvalid):
        data: dict[str, Any] = error.problems
    else:
        data = {"message": KAZOO_DATA_MESSAGES.get(status, error.description)}
        if status == 404:
            data["cause"] = _not_found_cause(request, error)
    body = _envelope(
        request,
        status="error",
        data=data,
        error=str(status),
        message=KAZOO_MESSAGES.get(status, error.description),
    )
    headers = {"WWW-Authenticate": errors.WWW_AUTHENTICATE} if status == 401 else {}
    return Response(ErrorEnvelopeOutput(body).data, status=status, headers=headers)


def kazoo_too_large(refused: TooLarge) -> dict[str, Any]:
    """The 413 envelope for a body refused before the view (notifyhub/body_limits.py)."""
    raw = refused.headers.get("x-auth-token")
    if raw is None:
        scheme, _, raw = refused.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            raw = ""
    return {
        "auth_token": raw.strip(),
        "node": NODE,
        "request_id": refused.request_id,
        "status": "error",
        "timestamp": kazoo_seconds(timezone.now()),
        "version": KAZOO_VERSION,
        "data": {"message": f"Bodies are limited to {refused.limit} bytes."},
        "error": "413",
        "message": KAZOO_MESSAGES[413],
    }


def kazoo_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Every failure of this surface, expected or not, in Kazoo's envelope (never HTML)."""
    error = errors.hub_error_from(exc)
    if error is None:
        logger.exception("device API request failed", exc_info=exc)
        error = errors.HubError()
    return kazoo_error_response(context["request"], error)


def _example_envelope(data: dict[str, Any]) -> dict[str, Any]:
    """The contract's success envelope around `data`, its placeholders filled."""
    return {
        "auth_token": "{AUTH_TOKEN}",
        "data": data,
        "node": NODE,
        "request_id": "0f8e6d4c2b0a49e7a5c3b1d9f7e5c3a1",
        "revision": "2-6e0e21c1a7d44c8b9b8f2c3d4e5f6a7b",
        "status": "success",
        "timestamp": "2018-01-23T04:56:22Z",
        "version": KAZOO_VERSION,
    }


EXAMPLE_REQUEST = OpenApiExample(
    "The contract's document", value={"data": EXAMPLE_DOCUMENT}, request_only=True
)
EXAMPLE_ANSWER = OpenApiExample(
    "The contract's answer",
    value=_example_envelope({**EXAMPLE_DOCUMENT, "app_name": "{APP}"}),
    response_only=True,
    status_codes=["200", "201"],
)
PATH_PARAMETERS = [
    OpenApiParameter(name, OpenApiTypes.STR, OpenApiParameter.PATH, description=placeholder)
    for name, placeholder in [
        ("account_id", "The contract's {ACCOUNT_ID}."),
        ("app_name", "The contract's {APP}."),
        ("device_id", "The contract's {DEVICE_ID}."),
    ]
]
# The view reads its body raw (no DRF parser), so the schema names the media type itself.
DOCUMENT_REQUEST = {"application/json": DeviceRequestInput}
IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description="The revision the caller read; a stale one is a 409.",
)


class PushNotificationSubscriptionApi(APIView):
    """Fetch (GET), create (PUT), update (POST) and remove (DELETE) one device's subscription."""

    # Errors are answered in Kazoo's envelope, not the platform's body (see the schema seam).
    error_body_schema = ErrorEnvelopeOutput
    openapi_tag = "Device API"

    authentication_classes = [KazooTokenAuthentication]
    required_scopes = [settings.SCOPE_DEVICES, settings.SCOPE_ADMINISTRATOR]
    # Bodies are read raw: Kazoo clients send JSON with any content type, and a non-JSON body
    # must answer Kazoo's 400, not DRF's 415.
    parser_classes: list = []

    def get_exception_handler(self) -> Any:
        return kazoo_exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        for name in ("account_id", "app_name", "device_id"):
            if not PATH_ID.match(kwargs[name]):
                raise DeviceNotFound(kwargs[name])
        # No administrator bypass: a tenant's administrator registers devices only in accounts
        # it belongs to, like any member; only a hub operator acts in every account.
        if not account_may_act(token=request_token(request), account_id=kwargs["account_id"]):
            raise errors.Forbidden("The token may not act for this account.")

    def _body(self, request: Request) -> tuple[Any, str | None]:
        """The request's `data` and the revision it claims to have read."""
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            raise errors.PayloadTooLarge(f"Bodies are limited to {MAX_BODY_BYTES} bytes.")
        try:
            raw = request.body
        except RequestDataTooBig:
            raise errors.PayloadTooLarge() from None
        try:
            body = json_body_loads(raw) if raw.strip() else None
        except JsonUnprocessable as refused:
            raise DeviceInvalid({"data": {"json": {"message": refused.description}}}) from None
        except errors.MalformedJson:
            raise DeviceInvalid(
                {"data": {"json": {"message": "The request body is not valid JSON"}}}
            ) from None
        if not isinstance(body, dict) or "data" not in body:
            raise DeviceInvalid(
                {"data": {"required": {"message": 'The body must be {"data": {...}}'}}}
            )
        data = body["data"]
        revision = _if_match(request)
        if isinstance(data, dict) and "revision" in data:
            data = {key: value for key, value in data.items() if key != "revision"}
            if revision is None:
                revision = str(body["data"]["revision"])
        return data, revision

    def _success(self, request: Request, device: Device, status: int = 200) -> Response:
        body = _envelope(
            request, status="success", data=kazoo_device_document(device), revision=device.revision
        )
        return Response(DeviceEnvelopeOutput(body).data, status=status)

    @extend_schema(
        operation_id="push_notification_subscription_get",
        summary="Fetch a push notification subscription",
        description="Gets the push notification registration for the supplied device for the "
        "supplied app.",
        parameters=PATH_PARAMETERS,
        examples=[EXAMPLE_ANSWER],
        responses={
            200: DeviceEnvelopeOutput,
            404: OpenApiResponse(
                ErrorEnvelopeOutput, description="No such device (bad identifier)."
            ),
        },
    )
    def get(self, request: Request, account_id: str, app_name: str, device_id: str) -> Response:
        device = device_get(account_id=account_id, app_name=app_name, device_id=device_id)
        if device is None:
            raise DeviceNotFound(device_id)
        return self._success(request, device)

    @extend_schema(
        operation_id="push_notification_subscription_create",
        summary="Create a new push notification subscription",
        description="Creates a push notification registration for the supplied device for the "
        "supplied app.",
        parameters=PATH_PARAMETERS,
        request=DOCUMENT_REQUEST,
        examples=[EXAMPLE_REQUEST, EXAMPLE_ANSWER],
        responses={
            201: DeviceEnvelopeOutput,
            409: OpenApiResponse(ErrorEnvelopeOutput, description="The device exists already."),
        },
    )
    def put(self, request: Request, account_id: str, app_name: str, device_id: str) -> Response:
        data, _ = self._body(request)
        document = device_document_validate(app_name=app_name, data=data)
        device_create(
            account_id=account_id, app_name=app_name, device_id=device_id, document=document
        )
        return self._stored(request, account_id, app_name, device_id, status=201)

    @extend_schema(
        operation_id="push_notification_subscription_update",
        summary="Change a push notification subscription",
        description="Updates a push notification registration for the supplied device for the "
        "supplied app. Good for changing the notification preferences or updating the device "
        "token.",
        parameters=[*PATH_PARAMETERS, IF_MATCH],
        request=DOCUMENT_REQUEST,
        examples=[EXAMPLE_REQUEST, EXAMPLE_ANSWER],
        responses={
            200: DeviceEnvelopeOutput,
            409: OpenApiResponse(ErrorEnvelopeOutput, description="Stale revision."),
        },
    )
    def post(self, request: Request, account_id: str, app_name: str, device_id: str) -> Response:
        data, revision = self._body(request)
        document = device_document_validate(app_name=app_name, data=data)
        device_update(
            account_id=account_id,
            app_name=app_name,
            device_id=device_id,
            document=document,
            expected_revision=revision,
        )
        return self._stored(request, account_id, app_name, device_id)

    @extend_schema(
        operation_id="push_notification_subscription_delete",
        summary="Remove a push notification subscription",
        description="Deletes a push notification registration for the supplied device for the "
        "supplied app.",
        parameters=[*PATH_PARAMETERS, IF_MATCH],
        examples=[
            OpenApiExample(
                "The contract's answer",
                value=_example_envelope({"id": "{DEVICE_ID}", "_read_only": {"deleted": True}}),
                response_only=True,
                status_codes=["200"],
            )
        ],
        responses={
            200: DeletedEnvelopeOutput,
            404: OpenApiResponse(
                ErrorEnvelopeOutput, description="No such device (bad identifier)."
            ),
            409: OpenApiResponse(ErrorEnvelopeOutput, description="Stale revision."),
        },
    )
    def delete(self, request: Request, account_id: str, app_name: str, device_id: str) -> Response:
        device = device_delete(
            account_id=account_id,
            app_name=app_name,
            device_id=device_id,
            expected_revision=_if_match(request),
        )
        # The contract answers the revision: the one the document had when it was removed.
        body = _envelope(
            request,
            status="success",
            data={"id": device_id, "_read_only": {"deleted": True}},
            revision=device.revision,
        )
        return Response(DeletedEnvelopeOutput(body).data)

    def _stored(
        self, request: Request, account_id: str, app_name: str, device_id: str, status: int = 200
    ) -> Response:
        device = device_get(account_id=account_id, app_name=app_name, device_id=device_id)
        if device is None:  # Removed by a concurrent request between the write and this read.
            raise DeviceNotFound(device_id)
        return self._success(request, device, status)


def _if_match(request: Request) -> str | None:
    value = request.META.get("HTTP_IF_MATCH", "").strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


class KazooNotFoundApi(APIView):
    """Any other path under `/v2/`: Kazoo's 404, in its envelope, for every method."""

    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []
    schema = None  # Not an endpoint: left out of the OpenAPI schema.

    def get_exception_handler(self) -> Any:
        return kazoo_exception_handler

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        raise errors.NotFound("No such Kazoo API path.")
