"""The operator's delivery ledger: pages, the failed filter, resend and release, the counter."""

import pytest

from subscriptions.models import Delivery
from subscriptions.webhooks import deliveries_send
from tests.subscriptions.factories import ingest, push_subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, django_user_model):
    user = django_user_model.objects.create_superuser("op", "op@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def ledger(consumer, receiver, failing_receiver):
    push_subscription(client_id=consumer.client_id, url=receiver.url)
    push_subscription(client_id=consumer.client_id, url=failing_receiver.url)
    ingest()
    deliveries_send()
    return Delivery.objects.get(status="failed")


@pytest.mark.parametrize(
    "path",
    [
        "/admin/subscriptions/delivery/",
        "/admin/subscriptions/delivery/?status__exact=failed",
        "/admin/subscriptions/delivery/?status__in=failed,unknown",
        "/admin/subscriptions/deliveryattempt/",
        "/admin/subscriptions/subscription/",
    ],
)
def test_ledger_pages_render(operator, ledger, path):
    assert operator.get(path).status_code == 200


def test_the_failed_filter_lists_only_failed_deliveries(operator, ledger):
    content = operator.get("/admin/subscriptions/delivery/?status__in=failed,unknown").content
    assert b"HTTP 500" in content
    assert content.count(b'class="action-select"') == 1


def test_a_delivery_page_shows_its_attempts(operator, ledger):
    content = operator.get(f"/admin/subscriptions/delivery/{ledger.pk}/change/").content.decode()
    assert "HTTP 500" in content
    assert "boom" in content


def test_the_index_counts_failed_deliveries(operator, ledger):
    content = operator.get("/admin/").content.decode()
    assert "Failed deliveries" in content


def test_resend_puts_the_delivery_back_in_the_queue(operator, ledger):
    response = operator.post(
        "/admin/subscriptions/delivery/", {"action": "resend", "_selected_action": [ledger.pk]}
    )
    assert response.status_code == 302
    ledger.refresh_from_db()
    assert ledger.status == Delivery.Status.PENDING


def test_release_for_this_client_ignores_the_hourly_limit(operator, ledger):
    for _ in range(2):
        Delivery.objects.filter(pk=ledger.pk).update(status="failed")
        response = operator.post(
            "/admin/subscriptions/delivery/",
            {"action": "release_for_client", "_selected_action": [ledger.pk]},
        )
        assert response.status_code == 302
        ledger.refresh_from_db()
        assert ledger.status == Delivery.Status.PENDING
