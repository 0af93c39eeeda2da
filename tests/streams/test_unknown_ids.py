"""A Last-Event-ID the hub does not know is a lost position (reset), whatever it holds: it is
never refused, never sent to the database and never stored."""

import pytest

from streams.models import StreamSession
from streams.principals import principal_for_user
from streams.services import stream_session_open
from tests.streams.support import ingest

pytestmark = pytest.mark.django_db(transaction=True)


def open_with(member, last_event_id):
    return stream_session_open(
        principal=principal_for_user(user=member.user, session=None),
        client_id="web",
        kinds=["newMessage"],
        account_ids=[],
        ticket_number="",
        last_event_id=last_event_id,
    )


@pytest.mark.parametrize(
    "unknown",
    [
        "-1",
        "42",
        "last_event_id_example",
        "x" * 100_000,
        "01ARZ3NDEKTSV4RRFFQ69G5FAV\x00",
        "\x00",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV\n",
        "\udcff",
    ],
    ids=["negative", "number", "example", "huge", "trailing-nul", "nul", "newline", "surrogate"],
)
def test_an_id_that_is_no_event_id_resets_to_the_newest_event_and_is_not_stored(member, unknown):
    seen = ingest("newMessage", user_id="maria", n=0)
    open_with(member, None)  # the session exists, within its window
    newest = ingest("newMessage", user_id="maria", n=1)
    opened = open_with(member, unknown)
    assert opened.reset
    assert opened.replay_after == newest
    assert opened.oldest_event_id == seen
    assert StreamSession.objects.get(client_id="web").last_sent_event_id == newest
