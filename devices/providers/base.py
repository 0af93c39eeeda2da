"""What every push provider shares: the message, the answer and what it means (a leaf module:
the providers and the services import it, it imports neither)."""

import enum
from dataclasses import dataclass, field
from typing import Any

from notifyhub.outbox import retry_after_seconds
from notifyhub.types import JSONDict

__all__ = [
    "MAX_PUSH_BYTES",
    "Outcome",
    "ProviderAnswer",
    "PushMessage",
    "retry_after_seconds",
    "transport_error_answer",
]


# What a provider accepts in one push body (APNs and FCM alike).
MAX_PUSH_BYTES = 4096


class Outcome(enum.StrEnum):
    """What a provider's answer means for the push and its token."""

    SENT = "sent"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - a status, not a secret
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class PushMessage:
    """One push of one event to one token; its provider builds the request (body and
    headers) in its own wire format."""

    provider: str
    token: str
    topic: str
    event_id: str
    event_type: str
    payload: JSONDict  # the event's payload, as the producer sent it
    high_priority: bool
    voip: bool


@dataclass(frozen=True)
class ProviderAnswer:
    """What the provider said to one push."""

    outcome: Outcome
    status_code: int | None
    reason: str = ""
    answer: str = ""
    message_id: str = ""
    retry_after: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def transport_error_answer(exc: Exception) -> ProviderAnswer:
    """A connection or timeout failure: nobody answered, so try again later."""
    return ProviderAnswer(
        outcome=Outcome.RETRY, status_code=None, reason=type(exc).__name__, answer=str(exc)[:500]
    )
