"""django-oauth-toolkit seams: per-application allowed scopes, client secrets checked with a
fast hash (re-hashing older ones on their next use), and a token endpoint with rate limits."""

import base64
import binascii
import hashlib
import json
import logging
import threading
from typing import Any
from urllib.parse import unquote_plus

from django.conf import settings
from django.contrib.auth.hashers import identify_hasher, make_password
from django.http import HttpRequest, HttpResponse
from oauth2_provider.models import get_application_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.scopes import SettingsScopes
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import TokenView

from notifyhub.rate_limits import RateLimit, rate_limits_hit

logger = logging.getLogger(__name__)


class ApplicationScopes(SettingsScopes):
    """DOT's scopes backend, narrowed to what each application was granted.

    DOT lets any application ask for any scope, and hands a token requested without `scope`
    its DEFAULT_SCOPES (`__all__`, every scope there is). Here both the available and the
    default scopes of an application are its own allowed scopes, so oauthlib refuses a wider
    request with `invalid_scope` and a request without `scope` gets exactly the allowed set.
    """

    def get_available_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        if application is None:
            return []
        return application.allowed_scope_list()

    def get_default_scopes(
        self, application: Any = None, request: Any = None, *args: Any, **kwargs: Any
    ) -> list[str]:
        return self.get_available_scopes(application=application, request=request)


class HubOAuth2Validator(OAuth2Validator):
    """Refuses a token request that would carry no scope at all (an application granted none),
    and moves a secret stored with another hasher to CLIENT_SECRET_HASHER once it is proven."""

    def _check_secret(self, provided_secret: str, stored_secret: str) -> bool:
        if not _is_stretched(stored_secret):
            return super()._check_secret(provided_secret, stored_secret)
        # An old stretched hash: one such check at a time per web process, so a flood of wrong
        # secrets for a client not yet re-hashed holds one web thread, not all of them.
        if not _stretched_checks.acquire(blocking=False):
            raise StretchedCheckBusy()
        try:
            matched = super()._check_secret(provided_secret, stored_secret)
        finally:
            _stretched_checks.release()
        if matched:
            _rehash_client_secret(provided=provided_secret, stored=stored_secret)
        return matched

    def validate_scopes(
        self,
        client_id: str,
        scopes: list[str],
        client: Any,
        request: Any,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        if not scopes:
            return False
        return super().validate_scopes(client_id, scopes, client, request, *args, **kwargs)


class StretchedCheckBusy(Exception):
    """Another check of an old stretched secret is running in this process."""


_stretched_checks = threading.Lock()


def _is_stretched(stored: str) -> bool:
    """Whether `stored` is a hash by another hasher than CLIENT_SECRET_HASHER (PBKDF2's, made
    before notifyhub.client_secrets), whose check costs what a password's does."""
    try:
        return identify_hasher(stored).algorithm != oauth2_settings.CLIENT_SECRET_HASHER
    except ValueError:
        return False  # Stored unhashed on purpose (hash_client_secret off).


def _rehash_client_secret(*, provided: str, stored: str) -> None:
    """Store a proven secret with CLIENT_SECRET_HASHER if it was stored with another hasher (the
    PBKDF2 hashes made before notifyhub.client_secrets): only the raw secret can be re-hashed,
    and only a client's successful request has it, as Django does for passwords at login. The
    update is conditional on the old hash, so two concurrent first uses write one new hash."""
    wanted = oauth2_settings.CLIENT_SECRET_HASHER
    try:
        rehashed = make_password(provided, hasher=wanted)
    except ValueError:
        return  # Too short for the fast hasher (a hand-made secret): it keeps its slow hash.
    updated = (
        get_application_model().objects.filter(client_secret=stored).update(client_secret=rehashed)
    )
    if updated:
        logger.info("a client secret was re-hashed with %s", wanted)


TOKEN_RATE_PER_CLIENT = RateLimit(
    name="token-client",
    limit=settings.NOTIFYHUB_TOKEN_RATE_PER_CLIENT,
    window=settings.NOTIFYHUB_TOKEN_RATE_WINDOW,
)
TOKEN_RATE_PER_ADDRESS = RateLimit(
    name="token-address",
    limit=settings.NOTIFYHUB_TOKEN_RATE_PER_ADDRESS,
    window=settings.NOTIFYHUB_TOKEN_RATE_WINDOW,
)


def token_request_client_id(request: HttpRequest) -> str:
    """The client id a token request names (HTTP Basic first, as DOT reads it, else the body)."""
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return unquote_plus(decoded.partition(":")[0])
    return request.POST.get("client_id", "")


def _key(value: str) -> str:
    """A Redis key part for a value the caller chose (any length, any bytes)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class RateLimitedTokenView(TokenView):
    """DOT's token endpoint, counted per client id and per remote address before any secret is
    checked: each check costs CPU, and an unlimited endpoint lets anyone who knows a client id
    spend the web process's. Over a limit: 429, `Retry-After`, and RFC 6749's error body."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        limits = [
            (TOKEN_RATE_PER_CLIENT, _key(token_request_client_id(request))),
            (TOKEN_RATE_PER_ADDRESS, _key(request.META.get("REMOTE_ADDR", ""))),
        ]
        wait = rate_limits_hit(counted=limits)
        if wait is not None:
            return _slow_down(f"Too many token requests; retry in {wait} s.", wait)
        try:
            return super().post(request, *args, **kwargs)
        except StretchedCheckBusy:
            return _slow_down("The server is busy checking another client secret; retry.", 1)


def _slow_down(description: str, retry_after: int) -> HttpResponse:
    """A 429 in RFC 6749's error format (`slow_down`, registered for the token endpoint)."""
    body = {"error": "slow_down", "error_description": description}
    response = HttpResponse(json.dumps(body), status=429, content_type="application/json")
    response["Retry-After"] = str(retry_after)
    response["Cache-Control"] = "no-store"
    return response
