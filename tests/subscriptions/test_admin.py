"""The operator console for subscriptions and their queues."""

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from events.services import event_ingest
from notifyhub.tenancy import HUB
from subscriptions.models import Subscription
from subscriptions.services import subscription_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("op", "op@example.com", "pw"))
    return client


def staff_who_may(client, django_user_model, username: str, codename: str):
    """`client` logged in as a staff user (not a superuser) holding one subscriptions
    permission."""
    user = django_user_model.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="subscriptions", codename=codename)
    )
    client.force_login(user)
    return client


@pytest.fixture
def subscriptions_operator(client, django_user_model):
    """A staff user who may change subscriptions and nothing else."""
    return staff_who_may(client, django_user_model, "sam", "change_subscription")


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


def test_ending_a_leaked_secret_now_shows_the_new_one_in_the_page_never_in_a_cookie(
    subscriptions_operator,
):
    subscription = subscription_create(
        reach=HUB,
        client_id="acme-sync",
        event_type_ids=["chat"],
        subscribed_by="a",
        notification_url="https://hooks.example.com/acme",
    )
    old = subscription.webhook_secret

    acted = subscriptions_operator.post(
        "/admin/subscriptions/subscription/",
        {"action": "rotate_webhook_secret_now", "_selected_action": [str(subscription.pk)]},
    )
    assert acted.status_code == 302
    shown = subscriptions_operator.get(acted["Location"])

    rotated = Subscription.objects.get()
    new = rotated.webhook_secret
    assert new not in ("", old)
    # Neither the action's redirect nor the page that shows the secret sets it in a cookie
    # (str() of a response's cookies is its Set-Cookie headers), nor does the client hold one.
    # Django's cookie message storage base64-encodes the text, so the secret would not show in
    # it verbatim: the messages cookie must not be set at all.
    for response in (acted, shown):
        assert "messages" not in response.cookies
        assert new not in str(response.cookies)
    assert new not in str(subscriptions_operator.cookies)
    assert shown.status_code == 200
    # The admin capitalizes a message's first letter, the id's when it starts with a-f.
    assert f"{str(subscription.pk)[1:]}: new secret {new}" in shown.content.decode()
    assert old not in shown.content.decode()
    # The old secret stopped signing with the rotation: only the new one signs from now on.
    assert rotated.webhook_secret_previous == old
    assert rotated.webhook_secret_previous_until <= timezone.now()
    assert rotated.signing_secrets(timezone.now()) == [new]


@pytest.fixture
def subscriptions_viewer(client, django_user_model):
    """A staff user who may only view subscriptions."""
    return staff_who_may(client, django_user_model, "vic", "view_subscription")


@pytest.mark.parametrize(
    "action", ["pause", "resume", "rotate_webhook_secret", "rotate_webhook_secret_now"]
)
def test_a_viewer_is_offered_no_action_that_changes_a_subscription(
    subscriptions_viewer, queued, action
):
    listing = subscriptions_viewer.get("/admin/subscriptions/subscription/")
    assert listing.status_code == 200
    assert f'value="{action}"' not in listing.content.decode()
    before = Subscription.objects.get()

    acted = subscriptions_viewer.post(
        "/admin/subscriptions/subscription/",
        {"action": action, "_selected_action": [str(queued.pk)]},
    )

    # Django answers an action the user is not offered with the list again, acting on nothing.
    assert acted.status_code == 200
    after = Subscription.objects.get()
    assert (after.webhook_secret, after.paused_at) == (before.webhook_secret, before.paused_at)
