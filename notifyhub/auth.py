"""Bearer-token authentication and scope permissions for every API surface.

The token check is the hot path of every API call. DOT's own DRF authentication builds an oauthlib
request and runs its whole validator for each call; here a token is hashed, looked up once by its
checksum and the validated facts are cached in Redis for a short time. Revocation stays immediate:
deleting an AccessToken (revoke, expiry clean-up, admin) deletes its cache entry, and the cache is
shared by every process.
"""

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from oauth2_provider.models import get_access_token_model
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from notifyhub import errors
from notifyhub.redis import redis_client, redis_key
from notifyhub.tenancy import Reach

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a validated access token says: who holds it, for which client, with which scopes."""

    token_id: int
    client_id: str
    application_id: int
    user_id: int | None
    scopes: frozenset[str]
    expires: datetime
    tenant_id: str | None = None
    hub_operator: bool = False
    # The user's username (None for an application's token): a stream listens as it.
    username: str | None = None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def reach(self) -> Reach:
        """The tenants the token acts for: its application's, or every one for an operator."""
        return Reach(tenant_id=self.tenant_id, everywhere=self.hub_operator)

    def to_cache(self) -> dict[str, Any]:
        return {
            "token_id": self.token_id,
            "client_id": self.client_id,
            "application_id": self.application_id,
            "user_id": self.user_id,
            "scopes": sorted(self.scopes),
            "expires": self.expires.timestamp(),
            "tenant_id": self.tenant_id,
            "hub_operator": self.hub_operator,
            "username": self.username,
        }

    @classmethod
    def from_cache(cls, data: dict[str, Any]) -> "TokenInfo":
        return cls(
            token_id=data["token_id"],
            client_id=data["client_id"],
            application_id=data["application_id"],
            user_id=data["user_id"],
            scopes=frozenset(data["scopes"]),
            expires=datetime.fromtimestamp(data["expires"], tz=UTC),
            tenant_id=data["tenant_id"],
            hub_operator=data["hub_operator"],
            username=data.get("username"),
        )


def token_checksum(raw_token: str) -> str:
    """The checksum DOT stores beside each access token (sha256 of the token)."""
    return hashlib.sha256(raw_token.encode("utf-8")).hexdigest()


def _cache_key(checksum: str) -> str:
    # v2: entries carry the tenant; a process still running the old code never reads them.
    return redis_key("token", "v2", checksum)


def _cache_get(checksum: str) -> dict[str, Any] | None:
    # The hub's own pooled client and a JSON string: about half the cost of Django's cache
    # framework (which builds a client and unpickles on every call) on this hot path.
    try:
        cached = redis_client().get(_cache_key(checksum))
    except redis.RedisError:  # Redis down: the database still answers, just slower.
        logger.warning("token cache unavailable; asking the database", exc_info=True)
        return None
    return json.loads(cached) if cached is not None else None


def _cache_set(checksum: str, info: TokenInfo) -> None:
    lifetime = int((info.expires - timezone.now()).total_seconds())
    ttl = min(settings.NOTIFYHUB_TOKEN_CACHE_TTL, lifetime)
    if ttl <= 0:
        return
    try:
        redis_client().set(_cache_key(checksum), json.dumps(info.to_cache()), ex=ttl)
    except redis.RedisError:
        logger.warning("token cache unavailable; not caching", exc_info=True)


def tokens_cache_forget(*, checksums: list[str]) -> None:
    """Drop tokens from the shared cache so a revocation or a change counts on the very next
    request (one round trip per 500 tokens)."""
    keys = [_cache_key(checksum) for checksum in checksums]
    try:
        for start in range(0, len(keys), 500):
            redis_client().delete(*keys[start : start + 500])
    except redis.RedisError:
        # The entries outlive the change by at most NOTIFYHUB_TOKEN_CACHE_TTL seconds.
        logger.error("could not evict changed tokens from the cache", exc_info=True)


def forget_changed_token(sender: type, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """post_save and post_delete receiver for DOT's AccessToken: a token that changed (its
    scope or expiry edited in the admin) or went leaves the cache with it. A token just issued
    has no entry yet, so issuing one costs no Redis call."""
    if not created:
        tokens_cache_forget(checksums=[instance.token_checksum])


def _tokens_of(**owner: int) -> list[str]:
    tokens = get_access_token_model().objects.filter(**owner)
    return list(tokens.values_list("token_checksum", flat=True))


def forget_changed_application(sender: type, instance: Any, **kwargs: Any) -> None:
    """post_save receiver for the Application model: its tokens are read again (its tenant or
    operator grant may have changed)."""
    tokens_cache_forget(checksums=_tokens_of(application_id=instance.pk))


def forget_changed_user(
    sender: type, instance: Any, update_fields: frozenset[str] | None = None, **kwargs: Any
) -> None:
    """post_save receiver for the user model: a deactivated user's tokens stop at once, and a
    renamed user's are read again (the cache holds the username). A login, which saves only
    `last_login`, changes neither."""
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    tokens_cache_forget(checksums=_tokens_of(user_id=instance.pk))


def token_validate(raw_token: str) -> TokenInfo | None:
    """The facts of a live access token, or None if it is unknown, revoked or expired, or if
    its user was deactivated."""
    checksum = token_checksum(raw_token)
    cached = _cache_get(checksum)
    if cached is not None:
        info = TokenInfo.from_cache(cached)
    else:
        row = (
            get_access_token_model()
            .objects.select_related("application", "user")
            .only(
                "id",
                "user_id",
                "scope",
                "expires",
                "application__id",
                "application__client_id",
                "application__tenant_id",
                "application__hub_operator",
                "user__is_active",
                "user__username",
            )
            .filter(token_checksum=checksum)
            .first()
        )
        if row is None or row.application is None:
            return None
        if row.user is not None and not row.user.is_active:
            return None
        info = TokenInfo(
            token_id=row.id,
            client_id=row.application.client_id,
            application_id=row.application.id,
            user_id=row.user_id,
            scopes=frozenset(row.scope.split()),
            expires=row.expires,
            tenant_id=row.application.tenant_id,
            hub_operator=row.application.hub_operator,
            username=row.user.get_username() if row.user is not None else None,
        )
        _cache_set(checksum, info)
    if info.expires <= timezone.now():
        return None
    return info


def _load_user(user_id: int) -> AbstractBaseUser | AnonymousUser:
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    return user or AnonymousUser()


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>`; request.auth becomes a TokenInfo."""

    keyword = "bearer"

    def authenticate(self, request: Request) -> tuple[Any, TokenInfo] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword:
            return None
        raw = raw.strip()
        if not raw:
            raise errors.NotAuthenticated("The bearer token is empty.")
        return self.authenticate_token(raw)

    @staticmethod
    def authenticate_token(raw: str) -> tuple[Any, TokenInfo]:
        info = token_validate(raw)
        if info is None:
            raise errors.NotAuthenticated("The access token is invalid, expired or revoked.")
        user: Any = AnonymousUser()
        if info.user_id is not None:
            user_id = info.user_id
            user = SimpleLazyObject(lambda: _load_user(user_id))
        return user, info

    def authenticate_header(self, request: Request) -> str:
        return errors.WWW_AUTHENTICATE


def request_token(request: Request) -> TokenInfo:
    """The validated token of a request that a view's permissions let through (typed, for
    views that read `request.auth`)."""
    info = request.auth
    if not isinstance(info, TokenInfo):
        raise errors.NotAuthenticated()
    return info


class HasRequiredScope(BasePermission):
    """Allows a request whose token carries at least one of the view's `required_scopes`.

    A view without `required_scopes` is closed: forgetting to declare a scope never opens an API.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        required: list[str] | None = getattr(view, "required_scopes", None)
        info = request.auth
        if not isinstance(info, TokenInfo):
            raise errors.NotAuthenticated()
        if not required or not any(info.has_scope(scope) for scope in required):
            raise errors.ScopeMissing(
                "The access token needs one of these scopes: " + " ".join(required or [])
            )
        return True
