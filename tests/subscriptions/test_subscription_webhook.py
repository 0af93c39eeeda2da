"""Creating a push subscription: its signing secret is shown once; only http(s) URLs."""

import pytest
from django.utils import timezone

from subscriptions.models import Subscription

pytestmark = pytest.mark.django_db

SUBSCRIPTIONS = "/notification/v1/subscriptions"


def create(administrator, consumer, **extra):
    body = {"client_id": consumer.client_id, "event_type_ids": ["newMessage"], **extra}
    return administrator.api().post(SUBSCRIPTIONS, body, format="json")


def test_a_push_subscription_returns_its_secret_once(administrator, consumer):
    response = create(administrator, consumer, notification_url="https://hooks.example.com/x")

    assert response.status_code == 201
    body = response.json()
    assert body["webhook_secret"].startswith("whsec_")
    stored = Subscription.objects.get(pk=body["id"])
    assert stored.webhook_secret == body["webhook_secret"]
    assert stored.delivery_policy == "once"
    shown_again = consumer.api().get(f"{SUBSCRIPTIONS}/{body['id']}")
    assert "webhook_secret" not in shown_again.json()


def test_a_pull_subscription_has_no_secret(administrator, consumer):
    response = create(administrator, consumer)

    assert response.status_code == 201
    assert "webhook_secret" not in response.json()
    assert Subscription.objects.get().webhook_secret == ""


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "not a url", "javascript:alert(1)"])
def test_a_notification_url_must_be_http_or_https(administrator, consumer, url):
    response = create(administrator, consumer, notification_url=url)

    assert response.status_code == 400
    assert response.json()["code"] == "NOT000007"
    assert response.json()["field"] == "notification_url"
    assert not Subscription.objects.exists()


def test_the_retry_policy_can_be_chosen(administrator, consumer):
    response = create(
        administrator, consumer, notification_url="https://h.example.com/", delivery_policy="retry"
    )
    assert response.status_code == 201
    assert Subscription.objects.get().delivery_policy == "retry"


def test_an_administrator_rotates_the_secret(administrator, consumer):
    created = create(administrator, consumer, notification_url="https://h.example.com/").json()

    response = administrator.api().post(f"{SUBSCRIPTIONS}/{created['id']}/webhook-secret")

    assert response.status_code == 200
    body = response.json()
    assert body["webhook_secret"].startswith("whsec_")
    assert body["webhook_secret"] != created["webhook_secret"]
    stored = Subscription.objects.get()
    assert stored.webhook_secret_previous == created["webhook_secret"]
    assert consumer.api().post(f"{SUBSCRIPTIONS}/{created['id']}/webhook-secret").status_code == 403


def test_a_rotation_can_end_the_previous_secret_at_once(administrator, consumer):
    """A leaked secret need not keep signing for the whole grace period."""
    created = create(administrator, consumer, notification_url="https://h.example.com/").json()

    response = administrator.api().post(
        f"{SUBSCRIPTIONS}/{created['id']}/webhook-secret",
        {"previous_secret_grace_seconds": 0},
        format="json",
    )

    assert response.status_code == 200
    stored = Subscription.objects.get()
    assert stored.signing_secrets(timezone.now()) == [response.json()["webhook_secret"]]


def test_a_grace_beyond_the_setting_is_refused(administrator, consumer):
    created = create(administrator, consumer, notification_url="https://h.example.com/").json()

    response = administrator.api().post(
        f"{SUBSCRIPTIONS}/{created['id']}/webhook-secret",
        {"previous_secret_grace_seconds": 10**9},
        format="json",
    )

    assert (response.status_code, response.json()["field"]) == (
        400,
        "previous_secret_grace_seconds",
    )
    assert Subscription.objects.get().webhook_secret == created["webhook_secret"]
