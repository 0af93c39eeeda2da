"""Firebase Cloud Messaging, HTTP v1 API, with a service-account OAuth 2.0 access token."""

import asyncio
import json
import time
from functools import cached_property
from typing import Any, Literal, NotRequired, TypedDict

import httpx
import jwt
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from devices.providers.base import (
    MAX_PUSH_BYTES,
    Outcome,
    ProviderAnswer,
    PushMessage,
    retry_after_seconds,
)

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
INVALID_TOKEN_CODES = {"UNREGISTERED", "INVALID_ARGUMENT", "SENDER_ID_MISMATCH"}
RETRY_CODES = {"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"}


class FcmData(TypedDict):
    """FCM's `data`: string values only."""

    event_id: str
    event_type: str
    payload: NotRequired[str]  # the event's payload as compact JSON, unless too big
    truncated: NotRequired[Literal["1"]]  # instead of `payload`: the app fetches the event


class FcmAndroid(TypedDict):
    priority: Literal["HIGH", "NORMAL"]
    collapse_key: str
    ttl: str  # a duration in seconds, such as "86400s"


class FcmMessage(TypedDict):
    """The `message` of one HTTP v1 `messages:send` request."""

    token: str
    data: FcmData
    android: FcmAndroid


class FcmRequest(TypedDict):
    """The JSON body of one `messages:send` request."""

    message: FcmMessage


def fcm_request(message: PushMessage) -> FcmRequest:
    """The body: the event's id, type and payload (as a string), without the payload if too
    big; a high-priority push is delivered now or never (ttl 0)."""
    high = message.high_priority
    data: FcmData = {
        "event_id": message.event_id,
        "event_type": message.event_type,
        "payload": json.dumps(message.payload, separators=(",", ":")),
    }
    if len(json.dumps(data).encode()) > MAX_PUSH_BYTES:
        data = {"event_id": message.event_id, "event_type": message.event_type, "truncated": "1"}
    return {
        "message": {
            "token": message.token,
            "data": data,
            "android": {
                "priority": "HIGH" if high else "NORMAL",
                "collapse_key": message.event_id,
                "ttl": "0s" if high else "86400s",
            },
        }
    }


class FcmProvider:
    """Sends one push per request (HTTP/2 stream) on the shared client."""

    def __init__(self, *, client: httpx.AsyncClient) -> None:
        self.client = client
        self._access: tuple[float, str] | None = None
        self._lock: asyncio.Lock | None = None

    @cached_property
    def credentials(self) -> dict[str, Any]:
        path = settings.NOTIFYHUB_FCM_CREDENTIALS_FILE
        if not path:
            raise ImproperlyConfigured(
                "NOTIFYHUB_FCM_CREDENTIALS_FILE is not set; cannot push to FCM"
            )
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    @property
    def project_id(self) -> str:
        return settings.NOTIFYHUB_FCM_PROJECT_ID or str(self.credentials["project_id"])

    async def access_token(self, *, refresh: bool = False) -> str:
        """A Google OAuth access token from the JWT bearer grant, cached until near expiry."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # One token request at a time, however many pushes wait.
            now = time.time()
            if not refresh and self._access is not None and self._access[0] > now + 60:
                return self._access[1]
            token_uri = settings.NOTIFYHUB_FCM_TOKEN_URI
            assertion = jwt.encode(
                {
                    "iss": self.credentials["client_email"],
                    "scope": SCOPE,
                    "aud": token_uri,
                    "iat": int(now),
                    "exp": int(now) + 3600,
                },
                self.credentials["private_key"],
                algorithm="RS256",
                headers={"kid": self.credentials.get("private_key_id", "")},
            )
            response = await self.client.post(
                token_uri,
                data={
                    "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                    "assertion": assertion,
                },
            )
            response.raise_for_status()
            body = response.json()
            self._access = (now + float(body.get("expires_in", 3600)), body["access_token"])
            return self._access[1]

    async def send(self, message: PushMessage) -> ProviderAnswer:
        url = (
            f"{settings.NOTIFYHUB_FCM_URL.rstrip('/')}/v1/projects/{self.project_id}/messages:send"
        )
        try:
            token = await self.access_token()
        except httpx.HTTPStatusError as exc:
            return ProviderAnswer(
                outcome=Outcome.RETRY,
                status_code=exc.response.status_code,
                reason="token endpoint refused",
                answer=exc.response.text[:1000],
            )
        response = await self.client.post(
            url, json=fcm_request(message), headers={"authorization": f"Bearer {token}"}
        )
        if response.status_code == 401:
            await self.access_token(refresh=True)
        if response.status_code == 200:
            return ProviderAnswer(
                outcome=Outcome.SENT,
                status_code=200,
                message_id=str(response.json().get("name", "")),
            )
        code = _error_code(response)
        # INVALID_ARGUMENT also answers a malformed message; only one that blames the token
        # retires it.
        blames_token = code != "INVALID_ARGUMENT" or "token" in response.text.lower()
        if (code in INVALID_TOKEN_CODES and blames_token) or response.status_code == 404:
            outcome = Outcome.INVALID_TOKEN
        elif response.status_code in (401, 429, 500, 502, 503, 504) or code in RETRY_CODES:
            outcome = Outcome.RETRY
        else:
            outcome = Outcome.FAILED
        return ProviderAnswer(
            outcome=outcome,
            status_code=response.status_code,
            reason=code or f"HTTP {response.status_code}",
            answer=response.text[:1000],
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )


def _error_code(response: httpx.Response) -> str:
    """FCM's `errorCode` detail (UNREGISTERED, ...), else the error's status."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        return ""
    for detail in error.get("details", []) or []:
        if isinstance(detail, dict) and detail.get("errorCode"):
            return str(detail["errorCode"])
    return str(error.get("status", ""))
