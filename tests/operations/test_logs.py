"""Log lines: the JSON format, the request id on them, and one WARNING line per webhook attempt
that failed (an SSRF refusal included, which is never logged as a success)."""

import io
import json
import logging

import pytest

from notifyhub.logs import JsonFormatter, RequestIdLogFilter, request_id
from subscriptions.webhooks import deliveries_send
from tests.subscriptions.factories import delivery_of, ingest, push_subscription


def test_the_json_format_is_one_object_per_line_with_the_request_id_and_extra_ids():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdLogFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.operations.json")
    logger.addHandler(handler)
    logger.propagate = False
    token = request_id.set("rid-1")
    try:
        logger.warning("attempt failed: %s", "HTTP 500", extra={"delivery_id": 7})
    finally:
        request_id.reset(token)
        logger.removeHandler(handler)
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["message"] == "attempt failed: HTTP 500"
    assert entry["level"] == "WARNING"
    assert entry["request_id"] == "rid-1"
    assert entry["delivery_id"] == 7
    assert "exception" not in entry


@pytest.mark.django_db
def test_a_refused_webhook_attempt_is_one_warning_line_naming_its_ids(settings, consumer, caplog):
    settings.NOTIFYHUB_WEBHOOK_ALLOWED_NETWORKS = []
    subscription = push_subscription(client_id=consumer.client_id, url="http://10.0.0.1/hook")
    event_id = ingest()

    with caplog.at_level(logging.INFO, logger="subscriptions"):
        deliveries_send()

    delivery = delivery_of(subscription=subscription, event_id=event_id)
    records = [r for r in caplog.records if r.name == "subscriptions.webhooks"]
    assert len(records) == 1
    (record,) = records
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("webhook attempt refused")
    assert f"delivery={delivery.id}" in message
    assert f"event={event_id}" in message
    assert f"subscription={subscription.id}" in message
    assert delivery.last_error in message
    assert record.exc_info is None
