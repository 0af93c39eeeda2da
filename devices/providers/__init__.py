"""Push providers (APNs, FCM) and the per-process HTTP/2 connections they share.

A Celery worker process keeps one asyncio loop in a background thread and one HTTP/2 client per
provider on it: every push task of the process submits its batch there, so all pushes in flight
share one connection per provider as concurrent streams, instead of one request (or one
connection) at a time.
"""

import asyncio
import logging
import os
import ssl
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from devices.providers.apns import ApnsProvider
from devices.providers.base import (
    Outcome,
    ProviderAnswer,
    PushMessage,
    retry_after_seconds,
    transport_error_answer,
)
from devices.providers.configuration import NOT_CONFIGURED, provider_unusable
from devices.providers.fcm import FcmProvider

__all__ = [
    "Outcome",
    "ProviderAnswer",
    "PushClients",
    "PushMessage",
    "push_clients",
    "retry_after_seconds",
    "transport_error_answer",
]

T = TypeVar("T")

logger = logging.getLogger(__name__)
# Providers whose configuration was found broken in this process (warned about once).
_unreadable: set[str] = set()


class _LoopThread:
    """An asyncio loop running forever in a daemon thread of this process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="push-loop")
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


class PushClients:
    """This process's HTTP/2 clients and provider objects, built from the settings."""

    def __init__(self) -> None:

        self.runner = _LoopThread()
        verify: ssl.SSLContext | bool = True
        if settings.NOTIFYHUB_PUSH_CA_FILE:
            verify = ssl.create_default_context(cafile=settings.NOTIFYHUB_PUSH_CA_FILE)
        timeout = settings.NOTIFYHUB_PUSH_TIMEOUT

        async def make_client() -> httpx.AsyncClient:
            # Clients are created on the loop that will use them; each keeps its HTTP/2
            # connection open between batches (keepalive_expiry) so a worker reuses it.
            return httpx.AsyncClient(
                http1=False,
                http2=True,
                verify=verify,
                timeout=httpx.Timeout(timeout),
                follow_redirects=False,
                limits=httpx.Limits(max_connections=4, keepalive_expiry=300),
                trust_env=False,
            )

        self.apns = ApnsProvider(client=self.runner.run(make_client(), timeout))
        self.fcm = FcmProvider(client=self.runner.run(make_client(), timeout))

    def close(self) -> None:
        """Close both connections and stop the loop (settings changed, or shutting down)."""

        async def close_clients() -> None:
            await self.apns.client.aclose()
            await self.fcm.client.aclose()

        self.runner.run(close_clients(), settings.NOTIFYHUB_PUSH_TIMEOUT)
        self.runner.loop.call_soon_threadsafe(self.runner.loop.stop)
        self.runner.thread.join(timeout=5)
        self.runner.loop.close()

    def send_all(self, messages: list[PushMessage]) -> list[ProviderAnswer]:
        """Send every message concurrently; answers come back in the same order."""

        async def send(message: PushMessage) -> ProviderAnswer:
            missing = provider_unusable(message.provider)
            if missing:
                return ProviderAnswer(
                    outcome=Outcome.FAILED, status_code=None, reason=NOT_CONFIGURED, answer=missing
                )
            provider = self.apns if message.provider == "apns" else self.fcm
            try:
                return await provider.send(message)
            except httpx.HTTPError as exc:
                return transport_error_answer(exc)
            except (ImproperlyConfigured, OSError) as exc:
                # A key file named but missing or unreadable: the same for every push.
                reason = f"{type(exc).__name__}: {exc}"[:500]
                if message.provider not in _unreadable:
                    _unreadable.add(message.provider)
                    logger.warning(
                        "push provider %s is misconfigured: %s", message.provider, reason
                    )
                return ProviderAnswer(
                    outcome=Outcome.FAILED, status_code=None, reason=NOT_CONFIGURED, answer=reason
                )

        async def batch() -> list[ProviderAnswer]:
            return list(await asyncio.gather(*(send(message) for message in messages)))

        budget = settings.NOTIFYHUB_PUSH_TIMEOUT * 3 + 30
        return self.runner.run(batch(), budget)


_clients: tuple[int, tuple[Any, ...], PushClients] | None = None
_clients_lock = threading.Lock()


def _settings_key() -> tuple[Any, ...]:
    return tuple(
        getattr(settings, name)
        for name in (
            "NOTIFYHUB_APNS_URL",
            "NOTIFYHUB_APNS_KEY_ID",
            "NOTIFYHUB_APNS_TEAM_ID",
            "NOTIFYHUB_APNS_KEY_FILE",
            "NOTIFYHUB_APNS_TOPIC",
            "NOTIFYHUB_FCM_URL",
            "NOTIFYHUB_FCM_TOKEN_URI",
            "NOTIFYHUB_FCM_CREDENTIALS_FILE",
            "NOTIFYHUB_FCM_PROJECT_ID",
            "NOTIFYHUB_PUSH_CA_FILE",
            "NOTIFYHUB_PUSH_TIMEOUT",
        )
    )


def push_clients() -> PushClients:
    """This process's clients: built once per process (after a fork) and per settings."""
    global _clients
    key = _settings_key()
    with _clients_lock:
        if _clients is None or _clients[0] != os.getpid() or _clients[1] != key:
            if _clients is not None and _clients[0] == os.getpid():
                _clients[2].close()
            # After a fork the parent's loop thread does not exist in this process: start anew.
            _clients = (os.getpid(), key, PushClients())
        return _clients[2]
