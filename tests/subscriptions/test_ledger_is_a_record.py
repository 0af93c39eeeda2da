"""The ledger is a record: events, deliveries, attempts, device pushes and their attempts are
listed and viewed in the admin, never added, edited or deleted there, even by a superuser; and
the admin finds them by subscription, event type, status code and date."""

import pytest
from django.urls import reverse

from events.models import Event
from subscriptions.models import Delivery, DeliveryAttempt
from subscriptions.webhooks import deliveries_send
from tests.receivers import Behaviour, receiving
from tests.subscriptions.factories import ingest, push_subscription

pytestmark = pytest.mark.django_db

LEDGER = [
    "events_event",
    "subscriptions_delivery",
    "subscriptions_deliveryattempt",
    "devices_devicepush",
    "devices_pushattempt",
]


@pytest.fixture
def operator(client, django_user_model):
    user = django_user_model.objects.create_superuser("op", "op@example.com", "pw")
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", LEDGER)
def test_no_add_and_no_delete_for_anyone(operator, model):
    assert operator.get(reverse(f"admin:{model}_add")).status_code == 403
    changelist = operator.get(reverse(f"admin:{model}_changelist"))
    assert changelist.status_code == 200
    assert "delete_selected" not in changelist.content.decode()


def test_a_delivery_and_its_event_cannot_be_edited_or_deleted(operator, consumer):
    with receiving(Behaviour(status=500, body=b"nope")) as failing:
        push_subscription(client_id=consumer.client_id, url=failing.url)
        event_id = ingest(n=1)
        deliveries_send()
    delivery = Delivery.objects.get(event_id=event_id)
    attempt = DeliveryAttempt.objects.get(delivery=delivery)

    for url in (
        reverse("admin:subscriptions_delivery_delete", args=[delivery.pk]),
        reverse("admin:subscriptions_deliveryattempt_delete", args=[attempt.pk]),
        reverse("admin:events_event_delete", args=[event_id]),
    ):
        assert operator.post(url, {"post": "yes"}).status_code == 403
    operator.post(
        reverse("admin:subscriptions_delivery_change", args=[delivery.pk]),
        {"status": "delivered", "last_error": ""},
    )

    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == ("failed", "HTTP 500")
    assert Event.objects.filter(id=event_id).exists()
    assert DeliveryAttempt.objects.filter(pk=attempt.pk).exists()


def test_the_failure_reason_shows_in_the_list_and_the_filters_find_it(operator, consumer):
    with receiving(Behaviour(status=503)) as failing:
        subscription = push_subscription(client_id=consumer.client_id, url=failing.url)
        ingest(n=1)
        deliveries_send()
    changelist = reverse("admin:subscriptions_delivery_changelist")

    page = operator.get(changelist).content.decode()
    assert "HTTP 503" in page
    found = operator.get(
        changelist,
        {
            "subscription__id__exact": str(subscription.pk),
            "event_type": "newMessage",
            "last_status_code": "503",
        },
    ).content.decode()
    assert "HTTP 503" in found
    assert "HTTP 503" not in operator.get(changelist, {"event_type": "ticket"}).content.decode()
    attempts = operator.get(
        reverse("admin:subscriptions_deliveryattempt_changelist"), {"status_code": "503"}
    )
    assert "HTTP 503" in attempts.content.decode()
