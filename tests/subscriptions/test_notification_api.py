"""The Notification API: subscriptions and paged, read-once notifications."""

from datetime import timedelta

import pytest
from django.utils import timezone

from events.services import event_ingest
from notifyhub.tenancy import HUB
from subscriptions.models import Notification, Subscription

pytestmark = pytest.mark.django_db

BASE = "/notification/v1/subscriptions"


def ingest(type_id="newMessage", **payload):
    return event_ingest(
        producer="key:test",
        reach=HUB,
        type_id=type_id,
        payload=payload or {"n": 1},
        idempotency_key=None,
    )


@pytest.fixture
def subscription(administrator, consumer):
    response = administrator.api().post(
        BASE,
        {"event_type_ids": ["newMessage", "ticket"], "client_id": consumer.client_id},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_creating_a_subscription_answers_201_with_the_seed_shape(administrator, consumer):
    response = administrator.api().post(
        BASE,
        {
            "event_type_ids": ["newMessage"],
            "client_id": consumer.client_id,
            "notification_url": "https://hooks.example.com/in",
            "notification_page_size": 50,
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) >= {"id", "subscription", "subscription_status"}
    assert body["subscription"] == {
        "client_id": consumer.client_id,
        "event_type_ids": ["newMessage"],
        "subscribed_by": administrator.client_id,
        "subscription_date": body["subscription"]["subscription_date"],
        "notification_url": "https://hooks.example.com/in",
        "notification_page_size": 50,
    }
    assert body["subscription_status"] == {
        # Never read: the contract types it as a string, so it is the subscription's date.
        "last_request_date": body["subscription"]["subscription_date"],
        "number_of_remaining_notifications": 0,
    }
    assert Subscription.objects.get(pk=body["id"]).client_id == consumer.client_id


def test_the_default_page_size_and_retention_apply(administrator, consumer, settings):
    body = (
        administrator.api()
        .post(BASE, {"event_type_ids": ["ticket"], "client_id": consumer.client_id}, format="json")
        .json()
    )
    assert body["subscription"]["notification_page_size"] == settings.NOTIFYHUB_PAGE_SIZE
    assert body["subscription"]["notification_url"] == ""
    assert Subscription.objects.get(pk=body["id"]).retention == timedelta(hours=6)


def test_retention_can_be_set_at_creation(administrator, consumer):
    body = (
        administrator.api()
        .post(
            BASE,
            {"event_type_ids": ["ticket"], "client_id": consumer.client_id, "retention_hours": 72},
            format="json",
        )
        .json()
    )
    assert Subscription.objects.get(pk=body["id"]).retention == timedelta(hours=72)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"client_id": "c"}, "event_type_ids"),
        ({"event_type_ids": [], "client_id": "c"}, "event_type_ids"),
        ({"event_type_ids": ["ticket", "ticket"], "client_id": "c"}, "event_type_ids"),
        ({"event_type_ids": ["nope"], "client_id": "c"}, "event_type_ids"),
        ({"event_type_ids": "ticket", "client_id": "c"}, "event_type_ids"),
        ({"event_type_ids": ["ticket"]}, "client_id"),
        ({"event_type_ids": ["ticket"], "client_id": "has space"}, "client_id"),
        (
            {"event_type_ids": ["ticket"], "client_id": "c", "notification_url": "nope"},
            "notification_url",
        ),
        (
            {"event_type_ids": ["ticket"], "client_id": "c", "notification_page_size": 0},
            "notification_page_size",
        ),
        (
            {"event_type_ids": ["ticket"], "client_id": "c", "notification_page_size": 1001},
            "notification_page_size",
        ),
    ],
)
def test_invalid_subscriptions_are_400_naming_the_field(administrator, body, field):
    response = administrator.api().post(BASE, body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "NOT000007"
    assert response.json()["field"].startswith(field)
    assert not Subscription.objects.exists()


def test_a_non_object_body_is_400(administrator):
    response = administrator.api().post(BASE, [1], format="json")
    assert response.status_code == 400


def test_only_administrators_create_subscriptions(consumer, anonymous):
    body = {"event_type_ids": ["ticket"], "client_id": consumer.client_id}
    assert consumer.api().post(BASE, body, format="json").status_code == 403
    assert anonymous.post(BASE, body, format="json").status_code == 401


def test_the_owner_reads_its_subscription(consumer, subscription):
    response = consumer.api().get(f"{BASE}/{subscription['id']}")
    assert response.status_code == 200
    assert response.json()["subscription"] == subscription["subscription"]


@pytest.mark.parametrize(
    "subscription_id", ["foreign", "6f1c2a4e-0000-4000-8000-000000000000", "not-a-uuid"]
)
def test_a_foreign_or_unknown_subscription_is_404(charlie, subscription, subscription_id):
    target = subscription["id"] if subscription_id == "foreign" else subscription_id
    response = charlie.api().get(f"{BASE}/{target}")
    assert response.status_code == 404
    assert response.json()["code"] == "NOT000003"
    notifications = charlie.api().get(f"{BASE}/{target}/notifications")
    assert notifications.status_code == 404


def test_administrators_delete_subscriptions_with_their_queue(
    administrator, consumer, subscription
):
    ingest()
    assert Notification.objects.count() == 1
    assert consumer.api().delete(f"{BASE}/{subscription['id']}").status_code == 403
    response = administrator.api().delete(f"{BASE}/{subscription['id']}")
    assert response.status_code == 204
    assert not Subscription.objects.exists()
    assert not Notification.objects.exists()
    assert administrator.api().delete(f"{BASE}/{subscription['id']}").status_code == 404


def test_notifications_are_read_once_oldest_first(consumer, subscription):
    ids = [ingest(n=n).event_id for n in range(5)]
    ingest("loggedOut")  # not subscribed
    api = consumer.api()
    url = f"{BASE}/{subscription['id']}/notifications"
    first = api.get(url, {"size": 3}).json()
    assert first["page"] == 1
    assert first["size"] == 3
    assert [item["id"] for item in first["results"]] == ids[:3]
    item = first["results"][0]
    assert set(item) == {"id", "event_type_id", "created_at", "expires_at", "payload"}
    assert item["event_type_id"] == "newMessage"
    assert item["payload"] == {"n": 0}
    second = api.get(url, {"size": 3}).json()
    assert second["page"] == 2
    assert [item["id"] for item in second["results"]] == ids[3:]
    assert api.get(url).json()["results"] == []
    status = api.get(f"{BASE}/{subscription['id']}").json()["subscription_status"]
    assert status["number_of_remaining_notifications"] == 0
    assert status["last_request_date"] is not None


def test_the_remaining_count_follows_the_queue(consumer, subscription):
    for n in range(4):
        ingest(n=n)
    status = consumer.api().get(f"{BASE}/{subscription['id']}").json()["subscription_status"]
    assert status["number_of_remaining_notifications"] == 4


@pytest.mark.parametrize("size", ["0", "1001", "abc", "-1", "1.5", "²", "1²"])
def test_an_invalid_size_is_400(consumer, subscription, size):
    response = consumer.api().get(f"{BASE}/{subscription['id']}/notifications", {"size": size})
    assert response.status_code == 400
    assert response.json()["field"] == "size"


def test_expired_notifications_are_invisible_at_once(consumer, subscription):
    ingest(n=1)
    ingest(n=2)
    # Past the subscription's retention (6 h): the paged pull's horizon.
    Notification.objects.filter(event__payload__n=1).update(
        created_at=timezone.now() - timedelta(hours=6)
    )
    api = consumer.api()
    status = api.get(f"{BASE}/{subscription['id']}").json()["subscription_status"]
    assert status["number_of_remaining_notifications"] == 1
    page = api.get(f"{BASE}/{subscription['id']}/notifications").json()
    assert [item["payload"] for item in page["results"]] == [{"n": 2}]


def test_a_page_drops_the_notifications_its_retention_expired(consumer, subscription):
    """They wait for the Integration API's 72 h hold, but a paged reader never sees them again:
    the read that walks past them deletes them, so the next read does not walk them again."""
    ingest(n=1)
    ingest(n=2)
    ingest(n=3)
    Notification.objects.filter(event__payload__n__in=[1, 2]).update(
        created_at=timezone.now() - timedelta(hours=7)
    )

    page = consumer.api().get(f"{BASE}/{subscription['id']}/notifications").json()

    assert [item["payload"] for item in page["results"]] == [{"n": 3}]
    assert not Notification.objects.exists()


def test_inactive_subscriptions_receive_nothing(consumer, subscription):
    Subscription.objects.update(active=False)
    ingest()
    assert not Notification.objects.exists()


def test_hand_built_page_items_match_the_documented_serializer():
    from subscriptions.api.notification import NotificationItemOutput
    from subscriptions.messages import notification_page_item

    item = {
        "event_id": "01J",
        "type_id": "chat",
        "payload": {"a": [1, {"b": None}]},
        "created_at": timezone.now(),
        "expires_at": timezone.now() + timedelta(hours=6),
    }
    documented = NotificationItemOutput(
        {
            "id": item["event_id"],
            "event_type_id": item["type_id"],
            "created_at": item["created_at"],
            "expires_at": item["expires_at"],
            "payload": item["payload"],
        }
    ).data
    assert notification_page_item(**item) == dict(documented)
