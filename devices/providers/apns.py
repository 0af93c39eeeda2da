"""Apple Push Notification service: HTTP/2, token (ES256 JWT) authentication."""

import json
import time
import uuid
from functools import cached_property
from typing import NotRequired, TypedDict

import httpx
import jwt
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from ulid import ULID

from devices.providers.base import (
    MAX_PUSH_BYTES,
    Outcome,
    ProviderAnswer,
    PushMessage,
    retry_after_seconds,
)
from notifyhub.types import JSONDict

# Apple refuses a provider token older than an hour and throttles refreshing more than once
# every 20 minutes; 40 minutes sits between.
TOKEN_LIFETIME = 40 * 60
INVALID_TOKEN_REASONS = {"BadDeviceToken", "Unregistered", "DeviceTokenNotForTopic"}
RETRY_REASONS = {
    "ExpiredProviderToken",
    "TooManyRequests",
    "InternalServerError",
    "ServiceUnavailable",
    "Shutdown",
}


class ApnsAlert(TypedDict):
    title: str
    body: str


class Aps(TypedDict, total=False):
    """Apple's dictionary: empty for a VoIP push (the app's PushKit handler wakes), an alert
    with a sound otherwise."""

    alert: ApnsAlert
    sound: str


class ApnsPayload(TypedDict):
    """The JSON body of one APNs request."""

    aps: Aps
    event_id: str
    event_type: str
    data: NotRequired[JSONDict]  # the event's payload, unless the body would be too big
    truncated: NotRequired[bool]  # instead of `data`: the phone fetches the event by its id


def apns_payload(message: PushMessage) -> ApnsPayload:
    """The body: the event's id, type and payload, without the payload if too big."""
    aps: Aps = (
        {}
        if message.voip
        else {
            "alert": {
                "title": message.event_type.replace("_", " "),
                "body": str(message.payload.get("message", ""))[:256],
            },
            "sound": "default",
        }
    )
    body: ApnsPayload = {
        "aps": aps,
        "event_id": message.event_id,
        "event_type": message.event_type,
        "data": message.payload,
    }
    if len(json.dumps(body, separators=(",", ":")).encode()) > MAX_PUSH_BYTES:
        # The phone fetches the whole event by its id; the push only has to wake it.
        body = {
            "aps": aps,
            "event_id": message.event_id,
            "event_type": message.event_type,
            "truncated": True,
        }
    return body


def apns_id(event_id: str) -> str:
    """The event's ULID as the UUID APNs wants in `apns-id` (the same 128 bits)."""
    try:
        return str(ULID.from_str(event_id).to_uuid())
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, event_id))


class ApnsProvider:
    """Sends one push per HTTP/2 stream on the shared client."""

    def __init__(self, *, client: httpx.AsyncClient) -> None:
        self.client = client
        self._token: tuple[float, str] | None = None

    @cached_property
    def _signing_key(self) -> bytes:
        path = settings.NOTIFYHUB_APNS_KEY_FILE
        if not path:
            raise ImproperlyConfigured("NOTIFYHUB_APNS_KEY_FILE is not set; cannot push to APNs")
        with open(path, "rb") as handle:
            return handle.read()

    def provider_token(self, *, refresh: bool = False) -> str:
        """The cached ES256 provider token, renewed before Apple would refuse it."""
        now = time.time()
        if refresh or self._token is None or now - self._token[0] > TOKEN_LIFETIME:
            token = jwt.encode(
                {"iss": settings.NOTIFYHUB_APNS_TEAM_ID, "iat": int(now)},
                self._signing_key,
                algorithm="ES256",
                headers={"kid": settings.NOTIFYHUB_APNS_KEY_ID},
            )
            self._token = (now, token)
        return self._token[1]

    async def send(self, message: PushMessage) -> ProviderAnswer:
        topic = message.topic + (".voip" if message.voip else "")
        headers = {
            "authorization": f"bearer {self.provider_token()}",
            "apns-topic": topic,
            "apns-push-type": "voip" if message.voip else "alert",
            "apns-priority": "10" if message.high_priority else "5",
            "apns-id": apns_id(message.event_id),
            "apns-collapse-id": message.event_id,
            "apns-expiration": "0" if message.high_priority else str(int(time.time()) + 86400),
        }
        url = f"{settings.NOTIFYHUB_APNS_URL.rstrip('/')}/3/device/{message.token}"
        body = json.dumps(apns_payload(message), separators=(",", ":")).encode()
        response = await self.client.post(url, content=body, headers=headers)
        if response.status_code == 200:
            return ProviderAnswer(
                outcome=Outcome.SENT,
                status_code=200,
                message_id=response.headers.get("apns-id", ""),
            )
        try:
            reason = str(json.loads(response.content).get("reason", ""))
        except (ValueError, AttributeError):
            reason = ""
        if reason == "ExpiredProviderToken":
            self.provider_token(refresh=True)
        answer = response.text[:1000]
        if response.status_code == 410 or reason in INVALID_TOKEN_REASONS:
            outcome = Outcome.INVALID_TOKEN
        elif response.status_code in (429, 500, 503) or reason in RETRY_REASONS:
            outcome = Outcome.RETRY
        else:
            outcome = Outcome.FAILED
        return ProviderAnswer(
            outcome=outcome,
            status_code=response.status_code,
            reason=reason or f"HTTP {response.status_code}",
            answer=answer,
            message_id=response.headers.get("apns-id", ""),
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )
