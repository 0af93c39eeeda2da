"""Who a stream listens as, and whether the credential it was opened with still stands."""

import time
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.base import SessionBase
from django.db.models import QuerySet
from django.utils import timezone
from oauth2_provider.models import AccessToken, get_access_token_model

from notifyhub.auth import TokenInfo
from streams.models import StreamSession


@dataclass(frozen=True, slots=True)
class StreamPrincipal:
    """Who a stream listens as, and what would log it out (a token, or a browser session)."""

    kind: str
    name: str
    user_id: int | None
    application_id: int | None
    token_id: int | None = None
    session_key: str | None = None
    # When the token expires (a POSIX timestamp): its streams end then with `loggedOut`.
    expires_at: float | None = None


def principal_for_token(*, token: TokenInfo) -> StreamPrincipal | None:
    """A user token listens as its user; an application token as its client id. None: the
    token's user is inactive (read only when the token's facts, from before the username was
    cached with them, do not carry it: a deactivation evicts them, notifyhub/auth.py)."""
    if token.user_id is not None:
        username = token.username
        if username is None:
            username = (
                get_user_model()
                .objects.filter(pk=token.user_id, is_active=True)
                .values_list("username", flat=True)
                .first()
            )
        if username is None:
            return None
        return StreamPrincipal(
            kind=StreamSession.PrincipalKind.USER,
            name=username,
            user_id=token.user_id,
            application_id=None,
            token_id=token.token_id,
            expires_at=token.expires.timestamp(),
        )
    return StreamPrincipal(
        kind=StreamSession.PrincipalKind.CLIENT,
        name=token.client_id,
        user_id=None,
        application_id=token.application_id,
        token_id=token.token_id,
        expires_at=token.expires.timestamp(),
    )


def principal_for_user(*, user: Any, session: SessionBase | None) -> StreamPrincipal:
    """A logged-in browser session listens as its user, until the session expires (None: a
    user acting with no session, such as the hub's own code)."""
    return StreamPrincipal(
        kind=StreamSession.PrincipalKind.USER,
        name=user.get_username(),
        user_id=user.pk,
        application_id=None,
        session_key=session.session_key if session is not None else None,
        expires_at=session_expires_at(session=session) if session is not None else None,
    )


def session_expires_at(*, session: SessionBase) -> float:
    """When a browser session ends (a POSIX timestamp): the expiry its store holds, which is
    when the session stops authenticating. `get_expiry_date()` alone counts the cookie age from
    now, later than the stored date of a session last saved a while ago; a database-backed
    store is asked for its row instead."""
    model = getattr(session, "model", None)
    if model is not None and session.session_key:
        stored = (
            model.objects.filter(session_key=session.session_key)
            .values_list("expire_date", flat=True)
            .first()
        )
        if stored is not None:
            return float(stored.timestamp())
    return float(session.get_expiry_date().timestamp())


def browser_session_expires_at(*, session_key: str) -> float | None:
    """When a browser session ends, as its store holds it now (a POSIX timestamp); None if it
    has ended (logged out, expired, deleted)."""
    store: SessionBase = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if not store.exists(session_key):
        return None
    expires_at = session_expires_at(session=store)
    return expires_at if expires_at > time.time() else None


def stream_principal_active(*, principal: StreamPrincipal) -> bool:
    """Whether the credential behind a ticket still stands: its token neither revoked nor
    expired, its browser session not logged out, its user active. Deleting tickets on
    revocation makes them unusable at once; this makes a revocation whose Redis half failed,
    or a deactivated user, count too."""
    users = get_user_model().objects.filter(is_active=True)
    if principal.user_id is not None and not users.filter(pk=principal.user_id).exists():
        return False
    if principal.token_id is not None:
        # DOT's models are untyped, so their managers are Any to mypy.
        tokens: QuerySet[AccessToken] = get_access_token_model().objects.all()
        return tokens.filter(pk=principal.token_id, expires__gt=timezone.now()).exists()
    if principal.session_key:
        store: SessionBase = import_module(settings.SESSION_ENGINE).SessionStore()
        return bool(store.exists(principal.session_key))
    return False
