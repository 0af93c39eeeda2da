"""The Integration API's FIFO pull: one notification per request, earliest first, 204 when empty."""

import pytest

from events.services import event_ingest
from notifyhub.tenancy import HUB
from subscriptions.models import Notification
from subscriptions.services import subscription_create

pytestmark = pytest.mark.django_db

URL = "/api/v3/integration/notifications"


def ingest(type_id, **payload):
    return event_ingest(
        producer="key:t", reach=HUB, type_id=type_id, payload=payload, idempotency_key=None
    )


def test_the_earliest_notification_across_the_callers_subscriptions_comes_first(consumer, charlie):
    subscription_create(
        reach=HUB, client_id=consumer.client_id, event_type_ids=["ticket"], subscribed_by="a"
    )
    subscription_create(
        reach=HUB, client_id=consumer.client_id, event_type_ids=["chat"], subscribed_by="a"
    )
    subscription_create(
        reach=HUB, client_id=charlie.client_id, event_type_ids=["chat"], subscribed_by="a"
    )
    first = ingest("chat", n=1).event_id
    second = ingest("ticket", n=2).event_id
    api = consumer.api()
    one = api.get(URL)
    assert one.status_code == 200
    body = one.json()
    assert set(body) == {"id", "name", "data", "created_at", "expires_at"}
    assert (body["id"], body["name"], body["data"]) == (first, "chat", {"n": 1})
    assert api.get(URL).json()["id"] == second
    assert api.get(URL).status_code == 204
    # Charlie's copy of the first event is still his.
    assert charlie.api().get(URL).json()["id"] == first


def test_an_empty_queue_is_204_without_a_body(consumer):
    response = consumer.api().get(URL)
    assert response.status_code == 204
    assert response.content == b""


def test_the_fifo_pull_needs_the_consumer_scope(producer, anonymous):
    assert producer.api().get(URL).status_code == 403
    assert anonymous.get(URL).status_code == 401


def test_expired_notifications_are_skipped(consumer):
    from django.utils import timezone

    subscription_create(
        reach=HUB, client_id=consumer.client_id, event_type_ids=["chat"], subscribed_by="a"
    )
    ingest("chat", n=1)
    ingest("chat", n=2)
    Notification.objects.filter(event__payload__n=1).update(expires_at=timezone.now())
    assert consumer.api().get(URL).json()["data"] == {"n": 2}


def test_an_event_reaches_the_client_once_however_many_subscriptions_match(consumer):
    """The FIFO pull is per client: the event's rows in its other subscriptions go with it."""
    subscription_create(
        reach=HUB, client_id=consumer.client_id, event_type_ids=["chat"], subscribed_by="a"
    )
    subscription_create(
        reach=HUB,
        client_id=consumer.client_id,
        event_type_ids=["chat", "ticket"],
        subscribed_by="a",
    )
    first = ingest("chat", n=1).event_id
    second = ingest("ticket", n=2).event_id
    api = consumer.api()

    assert [api.get(URL).json()["id"], api.get(URL).json()["id"]] == [first, second]
    assert api.get(URL).status_code == 204
    assert not Notification.objects.exists()


def test_the_fifo_pull_keeps_a_notification_72_hours_past_a_shorter_retention(consumer, settings):
    """The Integration API's 72 h hold, while the paged pull keeps the subscription's 6 h."""
    from datetime import timedelta

    from django.utils import timezone

    subscription = subscription_create(
        reach=HUB, client_id=consumer.client_id, event_type_ids=["chat"], subscribed_by="a"
    )
    ingest("chat", n=1)
    queued = Notification.objects.get()
    assert queued.expires_at - queued.created_at == timedelta(hours=72)
    Notification.objects.update(created_at=timezone.now() - timedelta(hours=7))
    api = consumer.api()
    page = api.get(f"/notification/v1/subscriptions/{subscription.id}").json()
    assert page["subscription_status"]["number_of_remaining_notifications"] == 0

    body = api.get(URL).json()

    assert body["data"] == {"n": 1}
    assert body["expires_at"] == queued.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
