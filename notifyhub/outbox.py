"""What the two outboxes (webhook deliveries, device pushes) share: when a row is tried again.

Both keep the same life cycle (pending → sending → done, a lease, attempts, an attempt log, a
sweep) and the same division of work: the service sends and returns what is due again when; the
task schedules it; the row's `next_attempt_at` stays the truth, so a lost message only waits for
the sweep.
"""

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from django.utils import timezone


@dataclass(frozen=True)
class Retries:
    """The rows a send must try again, each with the seconds until it is due."""

    due_in: dict[int, float] = field(default_factory=dict)

    @property
    def soonest(self) -> float | None:
        return min(self.due_in.values(), default=None)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header, in either of its forms (delta-seconds, or an
    HTTP-date); None when absent or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or timezone.now())).total_seconds())


def backoff_seconds(
    *, attempt: int, base: float, cap: float, retry_after: float | None, jitter: bool = True
) -> float:
    """Seconds before attempt `attempt + 1`: `base` doubled per attempt (jittered between half
    and all of it, so retries of one outage spread out), never sooner than the receiver's
    Retry-After, at most `cap`."""
    delay = base * 2.0 ** (attempt - 1)
    if jitter:
        delay = random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not a secret
    return min(max(delay, retry_after or 0.0), cap)


# Headers whose value is a credential: the ledger keeps that they were sent, not what.
REDACTED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
LEDGER_HEADERS_MAX = 50
LEDGER_HEADER_VALUE_MAX = 500


def headers_for_ledger(headers: Mapping[str, str]) -> dict[str, str]:
    """Request or response headers as an attempt row keeps them: names in lower case,
    credentials redacted, at most LEDGER_HEADERS_MAX of them, each value cut at
    LEDGER_HEADER_VALUE_MAX characters (a receiver decides what it answers)."""
    kept: dict[str, str] = {}
    for name, value in list(headers.items())[:LEDGER_HEADERS_MAX]:
        key = name.lower()
        kept[key] = "[redacted]" if key in REDACTED_HEADERS else value[:LEDGER_HEADER_VALUE_MAX]
    return kept
