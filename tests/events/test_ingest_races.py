"""Identical ingests racing each other: exactly one 200, 202 for all the others, never a 500."""

import json
import threading

import pytest
from django.db import connection
from django.test import Client

from events.models import Event
from events.services import api_key_create
from notifyhub.tenancy import HUB
from subscriptions.models import Notification
from subscriptions.services import subscription_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

RACERS = 8


@pytest.mark.parametrize("with_key", [True, False])
def test_racing_duplicates_store_and_route_one_event(with_key):
    raw_key = api_key_create(name="shop").raw_key
    subscription_create(reach=HUB, client_id="c", event_type_ids=["chat"], subscribed_by="a")
    body = json.dumps({"event": {"type": "chat", "payload": {"text": "hi"}}})
    headers = {"HTTP_CLIENT_TOKEN": raw_key, "HTTP_API_VERSION": "3.0"}
    if with_key:
        headers["HTTP_IDEMPOTENCY_KEY"] = "race-1"
    answers: list[tuple[int, str]] = []
    start = threading.Barrier(RACERS)

    def racer() -> None:
        try:
            start.wait()
            response = Client().post(
                "/v1/notifications", body, content_type="application/json", **headers
            )
            answers.append((response.status_code, response.json()["id"]))
        finally:
            connection.close()

    threads = [threading.Thread(target=racer) for _ in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200] + [202] * (RACERS - 1)
    assert len({event_id for _, event_id in answers}) == 1
    assert Event.objects.count() == 1
    assert Notification.objects.count() == 1
