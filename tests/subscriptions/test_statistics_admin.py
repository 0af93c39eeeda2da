"""The pictures in the console: a subscription's last 24 hours, the index's activity charts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from subscriptions.models import Delivery
from tests.subscriptions.statistics_data import delivery, push_subscription

pytestmark = pytest.mark.django_db
S = Delivery.Status


@pytest.fixture
def operator(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("op", "op@example.com", "pw"))
    return client


def change_page(subscription) -> str:
    return f"/admin/subscriptions/subscription/{subscription.pk}/change/"


def test_the_subscription_page_shows_its_last_24_hours_above_the_form(operator):
    alice = push_subscription("alice")
    recently = timezone.now() - timedelta(minutes=5)
    delivery(alice, recently, S.DELIVERED, took=timedelta(milliseconds=250))
    delivery(alice, recently, S.DELIVERED, took=timedelta(milliseconds=350))
    delivery(alice, recently, S.DELIVERED, took=timedelta(seconds=2))
    delivery(alice, recently, S.FAILED, took=timedelta(seconds=1))

    response = operator.get(change_page(alice))

    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="subscription-statistics"' in content
    assert content.index('id="subscription-statistics"') < content.index('name="client_id"')
    assert '<td id="statistics-delivered">3</td>' in content
    assert '<td id="statistics-failed">1</td>' in content
    assert '<td id="statistics-success-rate">75.0%</td>' in content
    assert '<td id="statistics-latency">350 ms / 2.0 s</td>' in content
    assert content.count('<rect class="hub-chart-delivered"') == 1
    assert content.count('<rect class="hub-chart-failed"') == 1
    assert ": 3 delivered</title>" in content
    assert "notifyhub/charts.css" in content


def test_a_subscription_without_deliveries_says_so_instead_of_a_chart(operator):
    quiet = push_subscription("quiet")

    response = operator.get(change_page(quiet))

    assert response.status_code == 200
    content = response.content.decode()
    assert '<td id="statistics-success-rate">-</td>' in content
    assert '<td id="statistics-latency">- / -</td>' in content
    assert "No webhook deliveries in the last 24 hours." in content
    assert "hub-chart-bars" not in content


def test_the_add_page_has_no_statistics(operator):
    response = operator.get("/admin/subscriptions/subscription/add/")
    assert response.status_code == 200
    assert 'id="subscription-statistics"' not in response.content.decode()


def test_the_index_draws_events_per_minute_and_deliveries_by_outcome(operator):
    alice = push_subscription("alice")
    delivery(alice, timezone.now() - timedelta(minutes=3), S.DELIVERED, took=timedelta(seconds=1))
    delivery(alice, timezone.now() - timedelta(minutes=2), S.FAILED, took=timedelta(seconds=1))

    response = operator.get("/admin/")

    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="hub-charts"' in content
    assert 'id="chart-events-per-minute-last-hour"' in content
    assert content.count('<rect class="hub-chart-events"') in (1, 2)  # a minute boundary
    assert content.count('<rect class="hub-chart-delivered"') == 1
    assert content.count('<rect class="hub-chart-failed"') == 1
    assert "events: 2;" in content


def test_a_quiet_hub_index_says_so_instead_of_charts(operator):
    response = operator.get("/admin/")

    assert response.status_code == 200
    content = response.content.decode()
    assert "No events in the last hour." in content
    assert "No webhook deliveries in the last 12 hours." in content
    assert "hub-chart-bars" not in content
