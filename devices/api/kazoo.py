"""The Device API, Kazoo style (keep this wire contract):
`/v2/accounts/{ACCOUNT_ID}/push_notification_subscriptions/{APP}/{DEVICE_ID}`.

Kazoo answers every request, errors included, in its own envelope; this module renders it, so
the services below stay unaware of the wire format.
"""

import hashlib
import json
import logging
import re
import socket
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devices.models import Device
from devices.selectors import device_get
from devices.services import (
    DeviceInvalid,
    DeviceNotFound,
    device_create,
    device_delete,
    device_document_validate,
    device_update,
)
from notifyhub import errors
from notifyhub.auth import BearerTokenAuthentication, TokenInfo
from notifyhub.middleware import current_request_id
from notifyhub.selectors import account_may_act

logger = logging.getLogger(__name__)

KAZOO_VERSION = "4.3.0"
# Kazoo names the answering node; a digest of the host name says which without exposing it.
NODE = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:32]
MAX_BODY_BYTES = 64 * 1024
PATH_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
KAZOO_MESSAGES = {
    400: "invalid data",
    401: "invalid_credentials",
    403: "forbidden",
    404: "bad_identifier",
    405: "method_not_allowed",
    409: "conflicting_documents",
    413: "request_entity_too_large",
    415: "unsupported_media_type",
    500: "internal_server_error",
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
        "timestamp": timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "version": KAZOO_VERSION,
        **fields,
    }


def kazoo_error_response(request: Request, error: errors.HubError) -> Response:
    """A HubError in Kazoo's error envelope."""
    if isinstance(error, DeviceInvalid):
        data: dict[str, Any] = error.problems
    else:
        data = {"message": error.description}
        if isinstance(error, DeviceNotFound):
            data["cause"] = request.parser_context["kwargs"].get("device_id", "")
    status = error.status
    body = _envelope(
        request,
        status="error",
        data=data,
        error=str(status),
        message=KAZOO_MESSAGES.get(status, error.description),
    )
    headers = {"WWW-Authenticate": errors.WWW_AUTHENTICATE} if status == 401 else {}
    return Response(body, status=status, headers=headers)


def kazoo_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Every failure of this surface, expected or not, in Kazoo's envelope (never HTML)."""
    error = errors.hub_error_from(exc)
    if error is None:
        logger.exception("device API request failed", exc_info=exc)
        error = errors.HubError()
    return kazoo_error_response(context["request"], error)


class RegistrationOutput(serializers.Serializer):
    notification_preferences = serializers.ListField(child=serializers.CharField())
    notification_type = serializers.CharField()
    push_type = serializers.CharField()


class DeviceOutput(serializers.Serializer):
    id = serializers.CharField(source="device_id")
    app_name = serializers.CharField()
    mobile_device_id = serializers.CharField()
    platform = serializers.CharField()
    sip_proxy_server = serializers.CharField()

    def to_representation(self, device: Device) -> dict[str, Any]:
        data = super().to_representation(device)
        registrations = list(device.registrations.all())
        data["notification_registration_ids"] = {
            registration.token: RegistrationOutput(
                {
                    "notification_preferences": [p.name for p in registration.preferences.all()],
                    "notification_type": registration.notification_type,
                    "push_type": registration.push_type,
                }
            ).data
            for registration in registrations
        }
        data["_read_only"] = {
            "created": device.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "modified": device.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "deactivated_registration_ids": {
                registration.token: {"reason": registration.deactivation_reason}
                for registration in registrations
                if not registration.active
            },
        }
        return data


class PushNotificationSubscriptionApi(APIView):
    """Fetch (GET), create (PUT), update (POST) and remove (DELETE) one device's subscription."""

    # Errors are answered in Kazoo's envelope, not the platform's body (see the schema seam).
    error_body_schema = OpenApiTypes.OBJECT

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
                raise DeviceNotFound(f"{name}: not a valid identifier")
        if request.auth.has_scope(settings.SCOPE_ADMINISTRATOR):
            return
        if not account_may_act(token=request.auth, account_id=kwargs["account_id"]):
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
            body = json.loads(raw) if raw.strip() else None
        except (ValueError, UnicodeDecodeError):
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

    def _success(self, request: Request, data: Any, revision: str, status: int = 200) -> Response:
        return Response(
            _envelope(request, status="success", data=data, revision=revision), status=status
        )

    @extend_schema(
        operation_id="push_notification_subscription_get",
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="No such device.")},
    )
    def get(self, request: Request, account_id: str, app_name: str, device_id: str) -> Response:
        device = device_get(account_id=account_id, app_name=app_name, device_id=device_id)
        if device is None:
            raise DeviceNotFound()
        return self._success(request, DeviceOutput(device).data, device.revision)

    @extend_schema(
        operation_id="push_notification_subscription_create",
        request=OpenApiTypes.OBJECT,
        responses={201: OpenApiTypes.OBJECT, 409: OpenApiResponse(description="Exists.")},
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
        request=OpenApiTypes.OBJECT,
        parameters=[OpenApiParameter("If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER)],
        responses={200: OpenApiTypes.OBJECT, 409: OpenApiResponse(description="Stale revision.")},
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
        parameters=[OpenApiParameter("If-Match", OpenApiTypes.STR, OpenApiParameter.HEADER)],
        responses={200: OpenApiTypes.OBJECT, 404: OpenApiResponse(description="No such device.")},
    )
    def delete(self, request: Request, account_id: str, app_name: str, device_id: str) -> Response:
        device_delete(
            account_id=account_id,
            app_name=app_name,
            device_id=device_id,
            expected_revision=_if_match(request),
        )
        data = {"id": device_id, "_read_only": {"deleted": True}}
        return self._success(request, data, revision="")

    def _stored(
        self, request: Request, account_id: str, app_name: str, device_id: str, status: int = 200
    ) -> Response:
        device = device_get(account_id=account_id, app_name=app_name, device_id=device_id)
        if device is None:  # Removed by a concurrent request between the write and this read.
            raise DeviceNotFound()
        return self._success(request, DeviceOutput(device).data, device.revision, status)


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
