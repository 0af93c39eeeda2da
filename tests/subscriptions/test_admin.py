"""The operator console for subscriptions and their queues."""

import pytest

from events.services import event_ingest
from notifyhub.tenancy import HUB
from subscriptions.services import subscription_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("op", "op@example.com", "pw"))
    return client


@pytest.fixture
def queued():
    subscription = subscription_create(
        reach=HUB, client_id="acme-sync", event_type_ids=["chat"], subscribed_by="a"
    )
    for n in range(3):
        event_ingest(
            producer="key:1", reach=HUB, type_id="chat", payload={"n": n}, idempotency_key=None
        )
    return subscription


@pytest.mark.parametrize(
    "path",
    [
        "/admin/subscriptions/subscription/",
        "/admin/subscriptions/subscription/?q=acme",
        "/admin/subscriptions/notification/",
        "/admin/subscriptions/notification/?expired=no",
        "/admin/subscriptions/notification/?expired=yes",
    ],
)
def test_subscription_admin_pages_render(operator, queued, path):
    assert operator.get(path).status_code == 200


def test_the_subscription_list_shows_live_status(operator, queued):
    response = operator.get("/admin/subscriptions/subscription/")
    row = next(r for r in response.context["cl"].result_list if r.pk == queued.pk)
    assert row.remaining_total == 3


def test_the_subscription_page_renders(operator, queued):
    assert operator.get(f"/admin/subscriptions/subscription/{queued.pk}/change/").status_code == 200
