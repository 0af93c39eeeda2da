"""Stream sessions: a dropped connection loses nothing within the reconnect window, on any
process; after it, or from an unknown id, the stream says `reset`."""

from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from ulid import ULID

from streams.models import StreamSession
from tests import servers
from tests.streams.support import (
    data,
    ingest,
    open_stream,
    push_event_types,  # noqa: F401
    stream_bus_of_this_run,  # noqa: F401
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PARAMS = {"clientId": "web", "kinds": "newMessage"}


def disconnected(client_id: str = "web") -> bool:
    return StreamSession.objects.filter(client_id=client_id, connection_id__isnull=True).exists()


def first_event_then_drop(url: str, token: str) -> str:
    """Connect, receive one event, drop the connection; returns the event's id."""
    stream = open_stream(url, token=token, params=PARAMS)
    first = ingest("newMessage", user_id="maria", n=-1)
    assert [frame.id for frame in stream.events(1)] == [first]
    stream.close()
    wait_for(disconnected, what="the server to notice the disconnect")
    return first


@pytest.mark.parametrize("with_last_event_id", [True, False], ids=["with-id", "without-id"])
def test_500_missed_events_arrive_in_order_exactly_once(daphne, member, with_last_event_id):
    first = first_event_then_drop(daphne.url, member.token)
    missed = [ingest("newMessage", user_id="maria", n=n) for n in range(500)]
    headers = {"Last-Event-ID": first} if with_last_event_id else {}
    stream = open_stream(daphne.url, token=member.token, params=PARAMS, headers=headers)
    try:
        assert stream.status == 200
        frames = stream.events(500, timeout=60)
        assert [frame.id for frame in frames] == missed
        assert [data(frame)["n"] for frame in frames] == list(range(500))
        live = ingest("newMessage", user_id="maria", n=500)
        assert [frame.id for frame in stream.events(1)] == [live]
        assert "reset" not in [sse.event for sse in stream.seen]
    finally:
        stream.close()


def test_a_reconnect_after_the_window_is_reset_and_gets_nothing_stale(log_dir, member, settings):
    settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW = timedelta(seconds=1)
    process = servers.start_daphne(log_dir, NOTIFYHUB_STREAM_RECONNECT_WINDOW="1")
    try:
        first = first_event_then_drop(process.url, member.token)
        wait_for(
            lambda: StreamSession.objects.filter(
                client_id="web", disconnected_at__lt=timezone.now() - timedelta(seconds=1.2)
            ).exists(),
            what="the reconnect window to pass",
        )
        stale = ingest("newMessage", user_id="maria", n="stale")
        stream = open_stream(
            process.url, token=member.token, params=PARAMS, headers={"Last-Event-ID": first}
        )
        try:
            assert stream.status == 200
            assert stream.response.headers["Stream-Oldest-Event-ID"]
            reset = stream.next()
            assert reset.event == "reset"
            assert not reset.id
            assert reset.retry
            fresh = ingest("newMessage", user_id="maria", n="fresh")
            assert [frame.id for frame in stream.events(1)] == [fresh]
            assert stale not in [sse.id for sse in stream.seen]
        finally:
            stream.close()
    finally:
        process.stop()


def test_an_unknown_well_formed_id_is_reset_with_the_oldest_known_id(daphne, member):
    first = first_event_then_drop(daphne.url, member.token)
    ingest("newMessage", user_id="maria", n=1)
    stream = open_stream(
        daphne.url, token=member.token, params=PARAMS, headers={"Last-Event-ID": str(ULID())}
    )
    try:
        assert stream.status == 200
        assert stream.response.headers["Stream-Oldest-Event-ID"] == first
        reset = stream.next()
        assert reset.event == "reset"
        assert not reset.id
        fresh = ingest("newMessage", user_id="maria", n=2)
        assert [frame.id for frame in stream.events(1)] == [fresh]
    finally:
        stream.close()


def test_an_event_ingested_on_one_process_reaches_a_stream_on_another(
    daphne, log_dir, member, producer
):
    other = servers.start_daphne(log_dir)
    try:
        stream = open_stream(daphne.url, token=member.token, params=PARAMS)
        try:
            posted = httpx.post(
                f"{other.url}/v1/notifications",
                json={"event": {"type": "newMessage", "payload": {"user_id": "maria"}}},
                headers={"Authorization": f"Bearer {producer.token}", "Api-Version": "3.0"},
                timeout=10,
            )
            assert posted.status_code == 200, posted.text
            assert [frame.id for frame in stream.events(1)] == [posted.json()["id"]]
        finally:
            stream.close()
        wait_for(disconnected, what="the server to notice the disconnect")
        missed = [ingest("newMessage", user_id="maria", n=n) for n in range(3)]
        resumed = open_stream(other.url, token=member.token, params=PARAMS)
        try:
            assert [frame.id for frame in resumed.events(3)] == missed
        finally:
            resumed.close()
    finally:
        other.stop()


@pytest.mark.parametrize(
    "bad",
    [
        "test:abc",
        "error",
        "-1",
        "42",
        "01ARZ3NDEKTSV4RRFFQ69G5FA",  # one character short
        "81ARZ3NDEKTSV4RRFFQ69G5FAV",  # past the largest ULID
        "x" * 5000,
        "01ARZ3NDEKTSV4RRFFQ69G5FA\u00e9",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV\x01\x7f",
    ],
    ids=["colon", "word", "negative", "number", "short", "too-large", "huge", "latin1", "control"],
)
def test_an_id_the_hub_does_not_know_opens_the_stream_with_reset(daphne, member, bad):
    # An EventSource never retries a refusal: an id from another server must not end it.
    first = first_event_then_drop(daphne.url, member.token)
    for where, headers, params in (
        ("header", {"Last-Event-ID": bad}, PARAMS),
        ("query", {}, {**PARAMS, "lastEventId": bad}),
    ):
        try:
            stream = open_stream(daphne.url, token=member.token, params=params, headers=headers)
        except (UnicodeEncodeError, httpx.LocalProtocolError):
            continue  # a header the client itself refuses to send
        try:
            assert stream.status == 200, stream.response.read()
            assert stream.response.headers["Stream-Oldest-Event-ID"] == first
            reset = stream.next()
            assert reset.event == "reset"
            assert not reset.id
            fresh = ingest("newMessage", user_id="maria", n=f"fresh after the {where}")
            assert [frame.id for frame in stream.events(1)] == [fresh]
        finally:
            stream.close()
        wait_for(disconnected, what="the server to notice the disconnect")
        # Never stored: the position is the last event the stream was sent.
        assert StreamSession.objects.get(client_id="web").last_sent_event_id == fresh
    assert "Traceback" not in daphne.output()


def test_malformed_ids_never_stop_the_server_opening_and_closing_streams(daphne, member):
    for bad in ["test:abc", "x" * 5000, "\x01\x02"]:
        stream = open_stream(
            daphne.url, token=member.token, params=PARAMS, headers={"Last-Event-ID": bad}
        )
        assert stream.status == 200
        stream.close()
    streams = [
        open_stream(
            daphne.url, token=member.token, params={"clientId": f"c{n}", "kinds": "newMessage"}
        )
        for n in range(5)
    ]
    assert all(stream.status == 200 for stream in streams)
    wanted = ingest("newMessage", user_id="maria")
    for stream in streams:
        assert [frame.id for frame in stream.events(1)] == [wanted]
        stream.close()
    wait_for(
        lambda: StreamSession.objects.filter(connection_id__isnull=True).count() == 6,
        what="every closed stream to be reaped",
    )
    missed = wanted
    again = open_stream(daphne.url, token=member.token, params=PARAMS)
    try:
        wanted = ingest("newMessage", user_id="maria", n="after")
        # Session "web" opened on an empty log and was away when `missed` came: it is owed it
        # (tests/streams/test_session_positions.py), then gets the new one.
        assert [frame.id for frame in again.events(2)] == [missed, wanted]
    finally:
        again.close()
    assert "Traceback" not in daphne.output()
