"""Where a reconnecting session resumes when its client sends no Last-Event-ID."""

import pytest

from streams.principals import principal_for_user
from streams.selectors import stream_replay_page
from streams.services import stream_session_close, stream_session_open
from tests.streams.support import ingest

pytestmark = pytest.mark.django_db(transaction=True)


def open_session(member):
    return stream_session_open(
        principal=principal_for_user(user=member.user, session=None),
        client_id="web",
        kinds=["newMessage"],
        account_ids=[],
        ticket_number="",
        last_event_id=None,
    )


def test_a_session_opened_on_an_empty_log_is_owed_every_event_since(member):
    # Found by bench/storm.py: a client sent nothing before its stream ended reconnects without
    # Last-Event-ID; its session's position is "" (the log was empty when it opened), which
    # must mean "everything since", not "start at the newest event".
    first = open_session(member)
    assert first.replay_after == ""
    stream_session_close(
        session_id=first.session_id, connection_id=first.connection_id, last_sent_event_id=""
    )
    missed = [ingest("newMessage", user_id="maria", n=n) for n in range(3)]

    again = open_session(member)

    assert not again.reset
    assert again.replay_after == ""
    replayed = stream_replay_page(session_id=again.session_id, after=again.replay_after)
    assert [event["id"] for event in replayed] == missed


def test_a_session_whose_connection_never_recorded_its_end_resumes_from_its_last_position(member):
    # A process stopped by SIGTERM records nothing: the session still names its old
    # connection, and the position is the one written at its open.
    seen = ingest("newMessage", user_id="maria", n=0)
    first = open_session(member)
    assert first.replay_after == seen
    missed = ingest("newMessage", user_id="maria", n=1)

    again = open_session(member)

    assert again.took_over
    assert not again.reset
    replayed = stream_replay_page(session_id=again.session_id, after=again.replay_after)
    assert [event["id"] for event in replayed] == [missed]
