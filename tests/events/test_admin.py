"""The operator console for events: catalogue, API keys (shown once, revocable), events."""

import re

import pytest

from events.models import ApiKey, EventType
from events.services import api_key_create, event_ingest
from notifyhub.tenancy import HUB

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("op", "op@example.com", "pw"))
    return client


@pytest.mark.parametrize(
    "path",
    [
        "/admin/events/eventtype/",
        "/admin/events/eventtype/chat/change/",
        "/admin/events/apikey/",
        "/admin/events/apikey/add/",
        "/admin/events/event/",
        "/admin/events/event/?q=chat",
    ],
)
def test_event_admin_pages_render(operator, path):
    event_ingest(
        producer="key:1", reach=HUB, type_id="chat", payload={"a": 1}, idempotency_key=None
    )
    assert operator.get(path).status_code == 200


def test_adding_a_key_shows_it_once_and_stores_only_its_hash(operator):
    response = operator.post("/admin/events/apikey/add/", {"name": "shop"}, follow=True)
    assert response.status_code == 200
    shown = next(m.message for m in response.context["messages"] if "nhk_" in m.message)
    raw = shown.split(": ", 1)[1]
    stored = ApiKey.objects.get()
    assert stored.key_hash == ApiKey.hash(raw)
    assert raw not in operator.get(f"/admin/events/apikey/{stored.pk}/change/").content.decode()


def test_a_new_key_never_travels_in_a_cookie(operator):
    added = operator.post(
        "/admin/events/apikey/add/", {"name": "shop", "tenant": "", "any_account": ""}
    )
    assert added.status_code == 302
    shown = operator.get(added["Location"]).content.decode()
    raw = re.search(r"nhk_[\w-]{40,}", shown).group()
    assert ApiKey.objects.get().key_hash == ApiKey.hash(raw)
    assert raw not in str(added.cookies)
    # Cookie message storage would base64-encode the key: no messages cookie may be set at all.
    assert "messages" not in added.cookies
    assert raw not in operator.get(added["Location"]).content.decode()  # shown once


def test_the_revoke_action_revokes_keys(operator):
    created = api_key_create(name="shop")
    operator.post(
        "/admin/events/apikey/", {"action": "revoke", "_selected_action": [created.api_key.pk]}
    )
    created.api_key.refresh_from_db()
    assert created.api_key.revoked_at is not None


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        ('{"type": 5}', "not a valid JSON Schema"),
        # The form's JSON decodes "\u0000" to NUL, which PostgreSQL's jsonb cannot store:
        # refused, not a server error.
        ('{"title": "a\\u0000"}', "may not contain NUL"),
    ],
    ids=["invalid", "nul"],
)
def test_an_unacceptable_schema_is_refused_in_the_admin(operator, schema, says):
    response = operator.post(
        "/admin/events/eventtype/add/",
        {"id": "order.x", "description": "", "enabled": "on", "schema": schema},
    )
    assert response.status_code == 200
    assert says in response.content.decode()
    assert not EventType.objects.filter(pk="order.x").exists()


def test_the_index_counts_recent_events(operator):
    event_ingest(
        producer="key:1", reach=HUB, type_id="chat", payload={"a": 1}, idempotency_key=None
    )
    content = operator.get("/admin/").content.decode()
    assert "Events in the last hour" in content
    assert "Queued notifications" in content
