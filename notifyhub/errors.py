"""One error hierarchy and the platform's error body: `{"code": "NOT000001", "description": ...}`.

Services raise `HubError` subclasses; the DRF exception handler and the Django handlers for API
paths render them. Every code is listed in docs/errors.md; codes never change meaning.
"""

import logging
import sys
from typing import Any

import redis
from django import db
from django.conf import settings
from django.core import signals
from django.core.exceptions import (
    BadRequest,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
)
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.log import log_response
from django.views import csrf, defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework.response import Response

logger = logging.getLogger(__name__)


class HubError(Exception):
    """A failure a client can act on: a stable code, an HTTP status and a sentence."""

    code = "NOT000010"
    status = 500
    description = "Internal error."

    def __init__(self, description: str | None = None, *, field: str | None = None) -> None:
        self.description = description or self.description
        self.field = field
        super().__init__(self.description)

    def body(self) -> dict[str, str]:
        body = {"code": self.code, "description": self.description}
        if self.field:
            body["field"] = self.field
        return body


class NotAuthenticated(HubError):
    code, status, description = "NOT000001", 401, "A valid access token is required."


class ScopeMissing(HubError):
    code, status, description = "NOT000002", 403, "The access token lacks the required scope."


class NotFound(HubError):
    code, status, description = "NOT000003", 404, "Not found."


class MethodNotAllowed(HubError):
    code, status, description = "NOT000004", 405, "Method not allowed."


class UnsupportedMediaType(HubError):
    code, status, description = "NOT000005", 415, "Unsupported media type; send application/json."


class PayloadTooLarge(HubError):
    code, status, description = "NOT000006", 413, "Request body too large."


class ValidationFailed(HubError):
    code, status, description = "NOT000007", 400, "Invalid request."


class MalformedJson(HubError):
    code, status, description = "NOT000008", 400, "The request body is not valid JSON."


class Throttled(HubError):
    code, status, description = "NOT000009", 429, "Too many requests."

    def __init__(self, description: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class NotAcceptable(HubError):
    code, status, description = "NOT000011", 406, "Cannot produce the requested media type."


class Forbidden(HubError):
    code, status, description = "NOT000012", 403, "Not allowed."


class Unprocessable(HubError):
    code, status, description = "NOT000013", 422, "The request could not be processed."


class ServiceUnavailable(HubError):
    code, status, description = "NOT000014", 503, "A backing service is unavailable; retry later."


class Conflict(HubError):
    code, status = "NOT000015", 409
    description = "The request does not apply to the resource in its current state."


WWW_AUTHENTICATE = 'Bearer realm="notifyhub"'


def first_message(detail: Any) -> tuple[str | None, str]:
    """The first field name and message of a DRF ValidationError detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner_field, message = first_message(value)
            field = key if key != "non_field_errors" else None
            if inner_field and field:
                field = f"{field}.{inner_field}"
            return field or inner_field, message
    if isinstance(detail, list) and detail:
        return first_message(detail[0])
    return None, str(detail)


def hub_error_from(exc: Exception) -> HubError | None:
    """Translate a framework exception into the platform's error, or None if it is a bug."""
    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, db.OperationalError | db.InterfaceError | redis.ConnectionError):
        # A backing service went away mid-request (a dropped PostgreSQL connection, Redis
        # restarting): the client may retry; the next request gets a fresh, checked connection.
        logger.warning("backing service unavailable: %s", exc)
        return ServiceUnavailable()
    if isinstance(exc, drf.NotAuthenticated | drf.AuthenticationFailed):
        return NotAuthenticated(
            str(exc.detail) if isinstance(exc, drf.AuthenticationFailed) else None
        )
    if isinstance(exc, drf.PermissionDenied | PermissionDenied):
        return Forbidden()
    if isinstance(exc, drf.NotFound | Http404):
        return NotFound()
    if isinstance(exc, drf.MethodNotAllowed):
        return MethodNotAllowed(str(exc.detail))
    if isinstance(exc, drf.UnsupportedMediaType):
        return UnsupportedMediaType()
    if isinstance(exc, drf.NotAcceptable):
        return NotAcceptable()
    if isinstance(exc, drf.ParseError):
        return MalformedJson()
    if isinstance(exc, drf.Throttled):
        wait = getattr(exc, "wait", None)  # DRF sets it; its stubs do not say so
        return Throttled(retry_after=int(wait) if wait else None)
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge()
    if isinstance(exc, drf.ValidationError):
        field, message = first_message(exc.detail)
        return ValidationFailed(f"{field}: {message}" if field else message, field=field)
    if isinstance(exc, drf.APIException):
        error = HubError(str(exc.detail))
        error.status = exc.status_code
        return error
    return None


def error_headers(error: HubError) -> dict[str, str]:
    """The headers an error's status calls for, whichever renderer sends it."""
    headers: dict[str, str] = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    if isinstance(error, ScopeMissing):
        headers["WWW-Authenticate"] = f'{WWW_AUTHENTICATE}, error="insufficient_scope"'
    if isinstance(error, Throttled) and error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return headers


def error_response(error: HubError) -> Response:
    """The DRF response carrying one platform error, with the headers its status calls for."""
    return Response(error.body(), status=error.status, headers=error_headers(error))


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's exception handler: every API error becomes the platform's error body."""
    error = hub_error_from(exc)
    if error is None:
        return None  # A bug: Django's handler500 renders it (as JSON on API paths).
    return error_response(error)


# --- Django-level handlers: JSON on API paths, the usual pages elsewhere ---


def is_api_path(path: str) -> bool:
    return path.startswith(settings.NOTIFYHUB_API_PREFIXES)


def json_error(error: HubError) -> JsonResponse:
    """The same error as a plain Django response (handlers, middleware, async views)."""
    return JsonResponse(error.body(), status=error.status, headers=error_headers(error))


_BY_STATUS: dict[int, type[HubError]] = {
    error.status: error
    for error in (
        ValidationFailed,
        NotAuthenticated,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        PayloadTooLarge,
        UnsupportedMediaType,
        NotAcceptable,
        Unprocessable,
        Throttled,
        ServiceUnavailable,
        Conflict,
    )
}


def json_error_for_status(response: HttpResponse) -> JsonResponse:
    """The platform's error for a response some view rendered as an HTML page on an API path,
    keeping its status and the headers a client acts on (Allow, Retry-After, WWW-Authenticate)."""
    error_class = _BY_STATUS.get(response.status_code)
    if error_class is None:
        error = HubError() if response.status_code >= 500 else ValidationFailed()
        error.status = response.status_code
    else:
        error = error_class()
    replacement = json_error(error)
    for header in ("Allow", "Retry-After", "WWW-Authenticate", "X-Request-ID"):
        if header in response:
            replacement[header] = response[header]
    return replacement


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        if isinstance(exception, RequestDataTooBig):
            return json_error(PayloadTooLarge())
        return json_error(ValidationFailed("Bad request."))
    return defaults.bad_request(request, exception or BadRequest())


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        return json_error(Forbidden())
    return defaults.permission_denied(request, exception or PermissionDenied())


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if is_api_path(request.path):
        return json_error(NotFound())
    return defaults.page_not_found(request, exception)


def handler500(request: HttpRequest) -> HttpResponse:
    return _server_error(request, sys.exc_info()[1])


def _server_error(request: HttpRequest, exception: BaseException | None) -> HttpResponse:
    if is_api_path(request.path):
        if isinstance(exception, db.OperationalError | db.InterfaceError | redis.ConnectionError):
            return json_error(ServiceUnavailable())
        return json_error(HubError())
    return defaults.server_error(request)


@csrf_exempt  # It changes nothing; a POST without a CSRF token gets the same 404.
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """The URLconf's last pattern: an API path that nothing else matched."""
    return json_error(NotFound())


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a JSON 403 on API paths, Django's page elsewhere."""
    if is_api_path(request.path):
        return json_error(Forbidden())
    return csrf.csrf_failure(request, reason)


def api_exception_response(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A view's exception on an API path, answered by the handlers above whatever DEBUG says:
    what Django does with DEBUG off, where with it on it renders its HTML debug pages. An
    unexpected exception is signalled and logged with its traceback, as Django does."""
    if isinstance(exception, Http404):
        return handler404(request, exception)
    if isinstance(exception, PermissionDenied):
        return handler403(request, exception)
    if isinstance(exception, BadRequest | SuspiciousOperation | MultiPartParserError):
        return handler400(request, exception)
    signals.got_request_exception.send(sender=None, request=request)
    response = _server_error(request, exception)
    log_response(
        "%s: %s",
        response.reason_phrase,
        request.path,
        response=response,
        request=request,
        exception=exception,
    )
    return response
