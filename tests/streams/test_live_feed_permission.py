"""The admin's live events page shows every tenant's payloads: a staff member needs the
permission to view events (`events.view_event`), as on the admin's Event pages.

Sam is staff with no permission at all; Olga is staff with `events.view_event`.
"""

import httpx
import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.streams.support import ingest

pytestmark = pytest.mark.django_db(transaction=True)

LIVE_PAGE = "/admin/streams/streamsession/live/"
LIVE_FEED = "/admin/streams/streamsession/live/feed"


@pytest.fixture
def sam(django_user_model):
    return django_user_model.objects.create_user("sam", password="pw-sam", is_staff=True)


@pytest.fixture
def olga(django_user_model):
    user = django_user_model.objects.create_user("olga", password="pw-olga", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_event"))
    return user


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "path", [LIVE_PAGE, "/admin/events/event/", "/admin/events/event/{id}/change/"]
)
def test_a_staff_member_without_the_permission_sees_no_payload_page(sam, path):
    event_id = ingest("newMessage", user_id="maria", text="another tenant's secret")
    response = logged_in(sam).get(path.format(id=event_id))
    assert response.status_code == 403
    assert b"another tenant's secret" not in response.content


def test_a_staff_member_without_the_permission_is_refused_the_live_feed(sam):
    response = logged_in(sam).get(LIVE_FEED)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "NOT000012"
    assert "events.view_event" in body["description"]


def test_a_staff_member_with_the_permission_sees_the_live_page(olga):
    response = logged_in(olga).get(LIVE_PAGE)
    assert response.status_code == 200
    assert LIVE_FEED in response.content.decode()


def test_the_live_feed_streams_to_a_staff_member_with_the_permission_only(daphne, sam, olga):
    for user, status in ((sam, 403), (olga, 200)):
        cookies = {"sessionid": logged_in(user).cookies["sessionid"].value}
        with httpx.stream(
            "GET", f"{daphne.url}{LIVE_FEED}", cookies=cookies, timeout=10
        ) as response:
            assert response.status_code == status
            if status == 200:
                assert response.headers["content-type"].startswith("text/event-stream")
                assert next(response.iter_raw()).startswith(b"retry:")
