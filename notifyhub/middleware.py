"""Request ids (every response carries `X-Request-ID`, every log line names it), and the API's
error body, never an HTML page, for a bad request or a view's exception whatever DEBUG says."""

import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.middleware.common import CommonMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.deprecation import MiddlewareMixin

from notifyhub import errors
from notifyhub.logs import request_id as _request_id

# A caller's id is echoed only if it is short and plain, so it cannot forge log lines.
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def current_request_id() -> str:
    return _request_id.get()


def _request_id_for(request: HttpRequest) -> str:
    incoming = request.META.get("HTTP_X_REQUEST_ID", "")
    return incoming if _ACCEPTABLE_ID.match(incoming) else uuid.uuid4().hex


class RequestIdMiddleware:
    """Takes the caller's X-Request-ID (or makes one) and echoes it on the response."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.is_async:
            return self.__acall__(request)  # type: ignore[return-value]  # Django awaits it
        request_id = _request_id_for(request)
        request.request_id = request_id  # type: ignore[attr-defined]  # ours, on Django's request
        token = _request_id.set(request_id)
        try:
            response: HttpResponse = self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        request_id = _request_id_for(request)
        request.request_id = request_id  # type: ignore[attr-defined]  # ours, on Django's request
        token = _request_id.set(request_id)
        try:
            response: HttpResponse = await self.get_response(request)
        finally:
            _request_id.reset(token)
        response["X-Request-ID"] = request_id
        return response


class InlineHooks(MiddlewareMixin):
    """For a middleware whose `process_request` and `process_response` do no I/O: in an async
    chain (the streams', notifyhub/asgi.py) they run on the event loop. Django's MiddlewareMixin
    cannot know that, so it runs each hook on the one shared sync thread, a hop there and back
    per hook per request, which a reconnect storm's opens queue for. Database access on the
    event loop raises (SynchronousOnlyOperation), so a hook that did I/O would fail loudly."""

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        if response is None:
            response = await cast(Awaitable[HttpResponseBase], self.get_response(request))
        if hasattr(self, "process_response"):
            response = self.process_response(request, response)
        return cast(HttpResponseBase, response)


class InlineSecurityMiddleware(InlineHooks, SecurityMiddleware):
    """Django's SecurityMiddleware (a redirect decision and response headers) for the streams'
    async chain: MIDDLEWARE keeps Django's own, which `check --deploy` looks for by name."""


class InlineCommonMiddleware(InlineHooks, CommonMiddleware):
    """Django's CommonMiddleware (APPEND_SLASH, and the Content-Length of an answer that is not
    a stream, such as a refused open's error) for the streams' async chain."""


class InlineAuthenticationMiddleware(InlineHooks, AuthenticationMiddleware):
    """Django's AuthenticationMiddleware (it sets the lazy `request.user` and `request.auser`,
    loading nothing) for the streams' async chain."""


class ApiErrorMiddleware(MiddlewareMixin):
    """A view's exception on an API path gets the platform's JSON error body with DEBUG on too
    (`make run` runs with it on), not Django's HTML debug page; other paths keep Django's."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not errors.is_api_path(request.path):
            return None
        return errors.api_exception_response(request, exception)


class ApiRequestCheckMiddleware(InlineHooks):
    """On API paths, what the middleware below would trip over is answered here in JSON: a
    `Host` outside ALLOWED_HOSTS, a query string past DATA_UPLOAD_MAX_NUMBER_FIELDS.

    Django raises both (DisallowedHost, TooManyFieldsSent) from inside the middleware chain,
    where, with DEBUG on, they become its HTML debug page (listing settings), and the stream
    view took the second for a backing service's failure (503). Placed right after
    RequestIdMiddleware, before anything reads the host or the query. And an error page some
    other view or library renders as HTML on an API path (DOT's OAuth views) becomes the
    platform's JSON error of the same status.
    """

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if not errors.is_api_path(request.path):
            return None
        try:
            request.get_host()
            request.GET  # noqa: B018 - parsed now, so its limit is met here
        except SuspiciousOperation as exc:
            return errors.json_error(errors.ValidationFailed(f"Bad request: {exc}"))
        return None

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        if (
            response.status_code >= 400
            and errors.is_api_path(request.path)
            and response.get("Content-Type", "").startswith("text/html")
        ):
            return errors.json_error_for_status(response)
        return response
