"""The admin index's at-a-glance figures: each app registers its own counters in ready()."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Counter:
    """One figure on the admin index: a label, a function computing it, and where to look."""

    label: str
    compute: Callable[[], int | str]
    url: str = ""


_counters: list[Counter] = []


def counter_register(*, label: str, compute: Callable[[], int | str], url: str = "") -> None:
    """Add a figure to the admin index (called from an AppConfig.ready())."""
    if any(counter.label == label for counter in _counters):
        return
    _counters.append(Counter(label=label, compute=compute, url=url))


def counters_read() -> list[dict[str, object]]:
    """Every registered figure, computed now; a failing one shows as unavailable."""
    figures: list[dict[str, object]] = []
    for counter in _counters:
        try:
            value: object = counter.compute()
        except Exception:
            logger.exception("admin counter %r failed", counter.label)
            value = "unavailable"
        figures.append({"label": counter.label, "value": value, "url": counter.url})
    return figures
