"""The hub's Prometheus metrics: the objects the apps record into, and the /metrics scrape.

prometheus_client runs in multiprocess mode (PROMETHEUS_MULTIPROC_DIR, set by the settings):
every process of this deployment on this machine (web, worker, beat) writes its values to files
there, and one scrape of any web process adds them all up. Gauges that describe the state of
the database or Redis (backlogs, queue lengths, heartbeats) are computed at scrape time instead
by functions the apps register from their AppConfig.ready() (`scrape_gauge_register`), so this
module imports no app. docs/metrics.md lists every series.
"""

import hmac
import ipaddress
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from notifyhub.errors import Forbidden, HubError, NotAuthenticated, json_error

logger = logging.getLogger(__name__)

# The files are written where the settings said; the directory must exist before the first
# value is (an application's first import of a metric with no labels creates one).
Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR", settings.NOTIFYHUB_METRICS_DIR)).mkdir(
    parents=True, exist_ok=True
)

# Latency buckets in seconds: milliseconds for the ingest and fan-out, up to minutes for a
# delivery that waited out retries.
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SLOW = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0)

events_ingested = Counter(
    "notifyhub_events_ingested",
    "Events posted, by type and outcome (stored, duplicate, refused).",
    ["type", "outcome"],
)
ingest_seconds = Histogram(
    "notifyhub_ingest_seconds",
    "Time to validate, store and route one event (event_ingest).",
    buckets=_FAST,
)
webhook_attempts = Counter(
    "notifyhub_webhook_attempts",
    "Webhook delivery attempts, by outcome (delivered, failed, refused) and status class "
    "(2xx..5xx, or none when no answer came).",
    ["outcome", "status_class"],
)
delivery_latency_seconds = Histogram(
    "notifyhub_delivery_latency_seconds",
    "From an event's ingest to its successful delivery to a webhook receiver.",
    buckets=_SLOW,
)
device_pushes = Counter(
    "notifyhub_device_pushes",
    "Device push attempts, by provider (apns, fcm) and outcome (sent, invalid_token, retry, "
    "failed).",
    ["provider", "outcome"],
)
streams_open = Gauge(
    "notifyhub_streams_open",
    "Push API streams (and admin live feeds) open, per web process (the pid label).",
    multiprocess_mode="liveall",
)
stream_fanout_seconds = Histogram(
    "notifyhub_stream_fanout_seconds",
    "From an event's ingest to its frame queued for the streams of one web process.",
    buckets=_FAST,
)


def status_class(status_code: int | None) -> str:
    """`2xx`..`5xx` for an HTTP status, `none` when nobody answered."""
    return f"{status_code // 100}xx" if status_code else "none"


def seconds_since(moment: datetime) -> float:
    """Seconds from `moment` until now (never negative: clocks of two machines differ)."""
    return max(0.0, (timezone.now() - moment).total_seconds())


# --- Gauges computed at scrape time ---

GaugeValue = float | dict[tuple[str, ...], float] | None


@dataclass(frozen=True)
class ScrapeGauge:
    """A gauge computed when /metrics is scraped: a name, its help, its labels, a function."""

    name: str
    documentation: str
    compute: Callable[[], GaugeValue]
    labels: tuple[str, ...] = ()


_scrape_gauges: dict[str, ScrapeGauge] = {}


def scrape_gauge_register(
    *,
    name: str,
    documentation: str,
    compute: Callable[[], GaugeValue],
    labels: tuple[str, ...] = (),
) -> None:
    """Add a gauge computed at each scrape (called from an AppConfig.ready()). `compute`
    returns the value, or one value per label tuple, or None when there is nothing to say."""
    _scrape_gauges[name] = ScrapeGauge(name, documentation, compute, labels)


class _ScrapeCollector(Collector):
    """The registered scrape-time gauges; one that fails is left out and logged, not fatal."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for gauge in _scrape_gauges.values():
            try:
                value = gauge.compute()
            except Exception as exc:
                logger.warning("metric %s not computed: %s", gauge.name, exc)
                continue
            if value is None:
                continue
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=gauge.labels)
            if isinstance(value, dict):
                for label_values, number in value.items():
                    family.add_metric(list(label_values), number)
            else:
                family.add_metric([], value)
            yield family


def metrics_text() -> bytes:
    """Every process's values on this machine, and the scrape-time gauges, in text format."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(_ScrapeCollector())
    return generate_latest(registry)


def process_dead(pid: int) -> None:
    """Drop a stopped process's live gauges (its counters stay: they are still counts)."""
    multiprocess.mark_process_dead(pid)


# --- The /metrics endpoint ---


def _networks() -> Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return (ipaddress.ip_network(n, strict=False) for n in settings.NOTIFYHUB_METRICS_ALLOW)


def _refusal(request: HttpRequest) -> HubError | None:
    if settings.NOTIFYHUB_METRICS_ALLOW:
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
        except ValueError:
            return Forbidden("Metrics are not served to this address.")
        if not any(address in network for network in _networks()):
            return Forbidden("Metrics are not served to this address.")
    token = settings.NOTIFYHUB_METRICS_TOKEN
    if token:
        given = request.META.get("HTTP_AUTHORIZATION", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return NotAuthenticated("The metrics token is required.")
    return None


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus's text format, for requests from NOTIFYHUB_METRICS_ALLOW with the token."""
    refusal = _refusal(request)
    if refusal is not None:
        return json_error(refusal)
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_LATEST)
