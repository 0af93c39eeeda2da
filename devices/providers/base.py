"""What every push provider shares: the message, the answer and what it means (a leaf module:
the providers and the services import it, it imports neither)."""

import enum
from dataclasses import dataclass, field
from typing import Any

from notifyhub.outbox import retry_after_seconds

__all__ = [
    "Outcome",
    "ProviderAnswer",
    "PushMessage",
    "retry_after_seconds",
    "transport_error_answer",
]


class Outcome(enum.StrEnum):
    """What a provider's answer means for the push and its token."""

    SENT = "sent"
    INVALID_TOKEN = "invalid_token"  # noqa: S105 - a status, not a secret
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class PushMessage:
    """One push to one token, ready for its provider."""

    provider: str
    token: str
    topic: str
    event_id: str
    event_type: str
    high_priority: bool
    voip: bool
    body: dict[str, Any]


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
