"""`POST /api/v3/integration/notifications/release`: re-dispatch failed deliveries, once an hour."""

from datetime import timedelta

import pytest
from django.utils import timezone

from notifyhub.redis import redis_client, redis_key
from subscriptions.models import Delivery
from subscriptions.webhooks import deliveries_send
from tests.subscriptions.factories import ingest, push_subscription

pytestmark = pytest.mark.django_db

RELEASE = "/api/v3/integration/notifications/release"


@pytest.fixture(autouse=True)
def _fresh_release_windows(consumer, charlie):
    yield
    for persona in (consumer, charlie):
        redis_client().delete(redis_key("release", persona.client_id))


@pytest.fixture
def failed(consumer, failing_receiver):
    """Two failed deliveries of the consumer's subscription."""
    push_subscription(client_id=consumer.client_id, url=failing_receiver.url)
    ingest(n=1)
    ingest(n=2)
    deliveries_send()
    assert Delivery.objects.filter(status="failed").count() == 2


def test_dry_run_counts_and_spends_nothing(consumer, failed):
    first = consumer.api().post(f"{RELEASE}?dry_run=1")
    second = consumer.api().post(f"{RELEASE}?dry_run=1")

    assert first.status_code == second.status_code == 200
    assert first.json() == {"released": 2, "dry_run": True}
    assert Delivery.objects.filter(status="failed").count() == 2
    assert consumer.api().post(RELEASE).status_code == 202


def test_release_re_dispatches_failed_and_unknown_deliveries(consumer, failed):
    Delivery.objects.filter(pk=Delivery.objects.first().pk).update(status="unknown")

    response = consumer.api().post(RELEASE)

    assert response.status_code == 202
    assert response.json() == {"released": 2, "dry_run": False}
    assert Delivery.objects.filter(status="pending").count() == 2


def test_release_is_refused_within_the_hour(consumer, failed):
    assert consumer.api().post(RELEASE).status_code == 202

    again = consumer.api().post(RELEASE)

    assert again.status_code == 429
    assert again.json()["code"] == "NOT000009"
    assert 3500 < int(again["Retry-After"]) <= 3600


def test_expired_deliveries_are_not_released(consumer, failed):
    Delivery.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = consumer.api().post(RELEASE)

    assert response.json()["released"] == 0
    assert Delivery.objects.filter(status="failed").count() == 2


def test_a_client_releases_only_its_own(charlie, failed):
    push_subscription(client_id=charlie.client_id, url="https://hooks.example.com/charlie")

    response = charlie.api().post(RELEASE)

    assert response.status_code == 202
    assert response.json()["released"] == 0
    assert Delivery.objects.filter(status="failed").count() == 2


@pytest.mark.parametrize("dry_run", ["", "?dry_run=1"])
def test_release_is_refused_to_a_client_the_hub_pushes_nothing_to(charlie, failed, dry_run):
    response = charlie.api().post(f"{RELEASE}{dry_run}")

    assert response.status_code == 409
    assert response.json()["code"] == "NOT000015"
    assert "notification_url" in response.json()["description"]
    assert Delivery.objects.filter(status="failed").count() == 2
    assert not redis_client().exists(redis_key("release", charlie.client_id))


@pytest.mark.parametrize(
    ("persona", "status"),
    [("consumer", 202), ("administrator", 202), ("producer", 403), ("anonymous", 401)],
)
def test_release_needs_the_consumer_scope(request, persona, status):
    if persona == "anonymous":
        client = request.getfixturevalue("anonymous")
    else:
        client_id = request.getfixturevalue(persona).client_id
        push_subscription(client_id=client_id, url="https://hooks.example.com/in")
        client = request.getfixturevalue(persona).api()
    response = client.post(RELEASE)
    assert response.status_code == status
    if persona == "administrator":
        redis_client().delete(redis_key("release", request.getfixturevalue(persona).client_id))
