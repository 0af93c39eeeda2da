"""Stream sessions in the operator console, and the beat task that trims them."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from events.models import Event
from streams.models import StreamSession
from streams.principals import StreamPrincipal
from streams.selectors import stream_replay_page, stream_sessions_connected_count
from streams.services import StreamOpened, stream_session_open, stream_sessions_heartbeat
from streams.tasks import stream_sessions_trim_task
from tests.streams.support import ingest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator(client, django_user_model):
    user = django_user_model.objects.create_superuser("op", "op@example.com", "pw")
    client.force_login(user)
    return client


def reopen(member, client_id="web", kinds=("newMessage",), last_event_id=None) -> StreamOpened:
    principal = StreamPrincipal(
        kind="user", name="maria", user_id=member.user.pk, application_id=None
    )
    return stream_session_open(
        principal=principal,
        client_id=client_id,
        kinds=list(kinds),
        account_ids=["acme"] if "accountStatus" in kinds else [],
        ticket_number="",
        last_event_id=last_event_id,
    )


def open_session(member, client_id="web", kinds=("newMessage",)) -> StreamSession:
    return StreamSession.objects.get(pk=reopen(member, client_id, kinds).session_id)


def test_the_session_list_shows_principal_kinds_filters_state_and_buffer(operator, member):
    session = open_session(member, kinds=("newMessage", "accountStatus"))
    ingest("newMessage", user_id="maria")
    ingest("accountStatus", account_id="acme", status="up")
    StreamSession.objects.filter(pk=session.pk).update(
        connection_id=None, disconnected_at=timezone.now()
    )
    content = operator.get("/admin/streams/streamsession/").content.decode()
    assert "maria" in content
    assert "newMessage, accountStatus" in content
    assert "accounts acme" in content
    assert "disconnected since" in content
    assert '<td class="field-buffered_count">2</td>' in content
    assert operator.get(f"/admin/streams/streamsession/{session.pk}/change/").status_code == 200


def test_the_admin_index_counts_live_streams(operator, member):
    open_session(member)
    content = operator.get("/admin/").content.decode()
    assert "Live streams" in content


def test_the_live_page_renders_an_event_source_on_the_feed(operator):
    content = operator.get("/admin/streams/streamsession/live/").content.decode()
    assert "new EventSource" in content
    assert "/admin/streams/streamsession/live/feed" in content


def test_the_live_feed_refuses_non_staff(client, member):
    client.force_login(member.user)
    response = client.get("/admin/streams/streamsession/live/feed")
    assert response.status_code == 403
    assert response.json()["code"] == "NOT000012"


def replayed(session: StreamSession, after: str | None = None) -> list[str]:
    """The event ids a reconnect of `session` would replay after its position (or `after`)."""
    session.refresh_from_db()
    position = session.last_sent_event_id if after is None else after
    return [frame["id"] for frame in stream_replay_page(session_id=session.pk, after=position)]


def test_the_trim_task_forgets_sessions_past_retention_and_keeps_the_event_log(member, settings):
    settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW = timedelta(seconds=60)
    settings.NOTIFYHUB_STREAM_SESSION_RETENTION = timedelta(seconds=3600)
    expired = open_session(member, client_id="expired")
    forgotten = open_session(member, client_id="forgotten")
    open_session(member, client_id="kept")
    ingest("newMessage", user_id="maria", n=1)
    now = timezone.now()
    StreamSession.objects.filter(pk=expired.pk).update(
        connection_id=None, disconnected_at=now - timedelta(seconds=61)
    )
    StreamSession.objects.filter(pk=forgotten.pk).update(
        connection_id=None, disconnected_at=now - timedelta(seconds=3601)
    )

    assert stream_sessions_trim_task() == 1  # forgotten

    # A session past its window is remembered, so its client is told.
    assert set(StreamSession.objects.values_list("client_id", flat=True)) == {"expired", "kept"}
    assert Event.objects.count() == 1
    reopened = reopen(member, client_id="expired")
    assert reopened.reset


def test_a_reconnect_past_the_window_replays_nothing_stale(member, settings):
    settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW = timedelta(seconds=60)
    session = open_session(member)
    StreamSession.objects.filter(pk=session.pk).update(
        connection_id=None, disconnected_at=timezone.now() - timedelta(seconds=61)
    )
    stale = ingest("newMessage", user_id="maria")

    reopened = reopen(member)

    assert reopened.reset
    assert reopened.replay_after == stale  # starts at the newest event, after everything stale
    assert replayed(session) == []


def test_the_replay_reads_only_events_within_the_window(member, settings):
    settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW = timedelta(seconds=60)
    session = open_session(member)
    old, recent = ingest("newMessage", user_id="maria", n=1), ingest("newMessage", user_id="maria")
    Event.objects.filter(id=old).update(created_at=timezone.now() - timedelta(seconds=61))

    assert replayed(session) == [recent]
    # A Last-Event-ID the replay no longer reads is a lost position.
    assert reopen(member, last_event_id=old).reset
    assert not reopen(member, last_event_id=recent).reset


# --- A process killed while holding streams (it records no disconnect; its heartbeat stops) ---


def silent_since(session: StreamSession, seconds: float) -> datetime:
    """Make the session's holder look as if its process stopped heartbeating `seconds` ago."""
    seen_at = timezone.now() - timedelta(seconds=seconds)
    StreamSession.objects.filter(pk=session.pk).update(seen_at=seen_at)
    return seen_at


def test_the_heartbeat_marks_held_sessions_seen_and_names_connections_that_lost_theirs(member):
    held = open_session(member, client_id="held")
    lost = open_session(member, client_id="lost")
    seen_at = silent_since(held, 10)
    silent_since(lost, 10)
    reopen(member, client_id="lost")  # taken over by a new connection elsewhere

    assert stream_sessions_heartbeat(connection_ids=[held.connection_id, lost.connection_id]) == [
        lost.connection_id
    ]

    assert StreamSession.objects.get(pk=held.pk).seen_at > seen_at
    assert stream_sessions_heartbeat(connection_ids=[held.connection_id]) == []


def test_a_silent_holder_is_disconnected_since_its_last_heartbeat_and_keeps_its_window(
    operator, member, settings
):
    settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW = timedelta(seconds=60)
    settings.NOTIFYHUB_STREAM_HEARTBEAT = 1.0
    session = open_session(member)
    first = ingest("newMessage", user_id="maria", n=1)
    StreamSession.objects.filter(pk=session.pk).update(last_sent_event_id=first)
    assert stream_sessions_connected_count() == 1
    seen_at = silent_since(session, 5)  # three heartbeats missed, well within the window

    assert stream_sessions_connected_count() == 0
    content = operator.get("/admin/streams/streamsession/?connected=no").content.decode()
    assert "(process gone)" in content
    missed = ingest("newMessage", user_id="maria", n=2)  # still owed: within the window
    assert stream_sessions_trim_task() == 0

    session.refresh_from_db()
    assert session.connection_id is None
    assert session.disconnected_at == seen_at
    assert replayed(session) == [missed]
    reopened = reopen(member)
    assert not reopened.reset
    assert reopened.replay_after == first


def test_a_silent_holder_past_the_window_is_owed_nothing_and_its_reconnect_is_reset(
    member, settings
):
    settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW = timedelta(seconds=60)
    settings.NOTIFYHUB_STREAM_HEARTBEAT = 1.0
    session = open_session(member)
    first = ingest("newMessage", user_id="maria", n=1)
    StreamSession.objects.filter(pk=session.pk).update(last_sent_event_id=first)
    silent_since(session, 61)
    newest = ingest("newMessage", user_id="maria", n=2)

    reopened = reopen(member)  # without Last-Event-ID, before the trim task ran

    assert reopened.reset
    assert reopened.replay_after == newest
    assert not reopened.position_from_session
    assert replayed(session) == []


def test_a_takeover_of_a_live_holder_is_not_reset_however_old_the_connection(member, settings):
    settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW = timedelta(seconds=60)
    settings.NOTIFYHUB_STREAM_HEARTBEAT = 1.0
    session = open_session(member)
    first = ingest("newMessage", user_id="maria", n=1)
    StreamSession.objects.filter(pk=session.pk).update(
        last_sent_event_id=first, connected_at=timezone.now() - timedelta(hours=1)
    )
    assert stream_sessions_trim_task() == 0

    reopened = reopen(member)

    assert not reopened.reset
    assert reopened.took_over
    assert reopened.position_from_session  # waits for the live holder to record its position
