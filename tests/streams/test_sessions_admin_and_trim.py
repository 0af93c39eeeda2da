"""Stream sessions in the operator console, and the beat task that trims them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import Event
from subscriptions.models import StreamBufferedEvent, StreamSession
from subscriptions.streams import StreamPrincipal, stream_session_open
from subscriptions.tasks import stream_sessions_trim_task
from tests.streams.support import ingest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator(client, django_user_model):
    user = django_user_model.objects.create_superuser("op", "op@example.com", "pw")
    client.force_login(user)
    return client


def open_session(member, client_id="web", kinds=("newMessage",)) -> StreamSession:
    principal = StreamPrincipal(
        kind="user", name="maria", user_id=member.user.pk, application_id=None
    )
    opened = stream_session_open(
        principal=principal,
        client_id=client_id,
        kinds=list(kinds),
        account_ids=["acme"] if "accountStatus" in kinds else [],
        ticket_number="",
        last_event_id=None,
    )
    return StreamSession.objects.get(pk=opened.session_id)


def test_the_session_list_shows_principal_kinds_filters_state_and_buffer(operator, member):
    session = open_session(member, kinds=("newMessage", "accountStatus"))
    ingest("newMessage", user_id="maria")
    ingest("accountStatus", account_id="acme", status="up")
    StreamSession.objects.filter(pk=session.pk).update(
        connection_id=None, disconnected_at=timezone.now()
    )
    content = operator.get("/admin/subscriptions/streamsession/").content.decode()
    assert "maria" in content
    assert "newMessage, accountStatus" in content
    assert "accounts acme" in content
    assert "disconnected since" in content
    assert '<td class="field-buffered_count">2</td>' in content
    assert (
        operator.get(f"/admin/subscriptions/streamsession/{session.pk}/change/").status_code == 200
    )


def test_the_admin_index_counts_live_streams(operator, member):
    open_session(member)
    content = operator.get("/admin/").content.decode()
    assert "Live streams" in content


def test_the_live_page_renders_an_event_source_on_the_feed(operator):
    content = operator.get("/admin/subscriptions/streamsession/live/").content.decode()
    assert "new EventSource" in content
    assert "/admin/subscriptions/streamsession/live/feed" in content


def test_the_live_feed_refuses_non_staff(client, member):
    client.force_login(member.user)
    response = client.get("/admin/subscriptions/streamsession/live/feed")
    assert response.status_code == 403
    assert response.json()["code"] == "NOT000012"


def test_the_trim_task_forgets_sessions_and_rows_past_the_window(member, settings):
    settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW = timedelta(seconds=60)
    gone = open_session(member, client_id="gone")
    kept = open_session(member, client_id="kept")
    ingest("newMessage", user_id="maria", n=1)
    assert StreamBufferedEvent.objects.count() == 2
    long_ago = timezone.now() - timedelta(seconds=61)
    StreamSession.objects.filter(pk=gone.pk).update(connection_id=None, disconnected_at=long_ago)
    StreamBufferedEvent.objects.filter(session=kept).update(created_at=long_ago)
    ingest("newMessage", user_id="maria", n=2)

    assert stream_sessions_trim_task() == 3  # gone's row and session, kept's old row

    assert list(StreamSession.objects.values_list("client_id", flat=True)) == ["kept"]
    assert StreamBufferedEvent.objects.filter(session=kept).count() == 1
    assert Event.objects.count() == 2


def test_an_expired_session_buffers_nothing(member, settings):
    settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW = timedelta(seconds=60)
    session = open_session(member)
    StreamSession.objects.filter(pk=session.pk).update(
        connection_id=None, disconnected_at=timezone.now() - timedelta(seconds=61)
    )
    ingest("newMessage", user_id="maria")
    assert not StreamBufferedEvent.objects.exists()
