"""The web process holding a stream is killed (SIGKILL) mid-stream while a producer ingests a
steady stream through another web process; the client reconnects to the survivor.

Two daphne processes share the database and Redis. The stream client holds its session on
daphne A (after one clean reconnect, so the session has a recorded position); the producer posts
through daphne B; A is killed; the client reconnects to B.

Pass, as docs/push-api.md promises:
- with `Last-Event-ID` (the last frame received): the replay resumes right after it, so the two
  connections together receive every ingested event in order, no gap, no duplicate;
- without it: the previous connection never recorded how far it got (its process died), so the
  replay resumes after the last position recorded (the clean reconnect's): every event arrives
  in order with no gap, and the only repeats are the events the dead connection had sent since
  that position, repeated once each, in order ("may repeat events").

And when the client stays away past the reconnect window: the dead process recorded no
disconnect, but its heartbeat stopped, so the window runs from its last heartbeat; the trim task
forgets its position, and a reconnect without `Last-Event-ID` is told with `reset` and gets
nothing stale.
"""

import signal
import threading
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from streams.models import StreamSession
from streams.selectors import stream_replay_page, stream_sessions_connected_count
from streams.tasks import stream_sessions_trim_task
from tests import servers
from tests.streams.support import (
    Stream,
    data,
    ingest,
    open_stream,
    push_event_types,  # noqa: F401
    stream_bus_of_this_run,  # noqa: F401
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

KIND = "newMessage"
PARAMS = {"clientId": "phone", "kinds": KIND}
BEFORE = 5  # events of the first, cleanly closed connection
EVENTS = 100  # events of the steady stream the kill interrupts
# The producer paces itself a little so the stream is still flowing when A dies.
PACE = 0.02


class Producer(threading.Thread):
    """POSTs events for Maria one after another to daphne B, keeping the accepted ids."""

    def __init__(self, url: str, token: str, numbers: range, pace: float = PACE) -> None:
        super().__init__(daemon=True)
        self.url, self.token, self.numbers, self.pace = url, token, numbers, pace
        self.accepted: list[str] = []
        self.failures: list[str] = []

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            for n in self.numbers:
                response = client.post(
                    f"{self.url}/v1/notifications",
                    json={"event": {"type": KIND, "payload": {"user_id": "maria", "n": n}}},
                    headers={"Authorization": f"Bearer {self.token}", "Api-Version": "3.0"},
                )
                if response.status_code == 200:
                    self.accepted.append(response.json()["id"])
                else:
                    self.failures.append(f"{response.status_code} {response.text}")
                time.sleep(self.pace)


def events_until_end(stream: Stream) -> list[str]:
    """Every event id the stream delivers until the server side goes away."""
    ids = []
    while (sse := stream.next(timeout=30)) is not None:
        assert sse.event != "reset"
        if sse.event == KIND:
            ids.append(sse.id)
    return ids


def events_until(stream: Stream, last: str) -> list[tuple[str, int]]:
    """(id, n) of every event the stream delivers up to and including `last`."""
    got: list[tuple[str, int]] = []
    while not got or got[-1][0] != last:
        sse = stream.next(timeout=30)
        assert sse is not None, f"the stream ended after {len(got)} events: {stream.error!r}"
        assert sse.event != "reset"
        if sse.event == KIND:
            got.append((sse.id, data(sse)["n"]))
    return got


@pytest.mark.parametrize("with_last_event_id", [True, False], ids=["with-id", "without-id"])
def test_a_stream_resumes_on_another_process_after_its_own_is_killed(
    log_dir, member, producer, with_last_event_id
):
    a = servers.start_daphne(log_dir)
    b = servers.start_daphne(log_dir)
    try:
        # A first connection on A, closed cleanly: the session records its position.
        stream = open_stream(a.url, token=member.token, params=PARAMS)
        early = Producer(b.url, producer.token, range(-BEFORE, 0), pace=0)
        early.run()
        assert early.failures == []
        assert [sse.id for sse in stream.events(BEFORE)] == early.accepted
        stream.close()
        wait_for(
            lambda: StreamSession.objects.filter(
                client_id="phone", connection_id__isnull=True
            ).exists(),
            what="the clean disconnect recorded",
        )
        recorded = StreamSession.objects.get(client_id="phone").last_sent_event_id
        assert recorded == early.accepted[-1]

        # The connection A will die holding.
        headers = {"Last-Event-ID": recorded} if with_last_event_id else {}
        held = open_stream(a.url, token=member.token, params=PARAMS, headers=headers)
        assert held.status == 200
        steady = Producer(b.url, producer.token, range(EVENTS))
        steady.start()
        assert len(held.events(20, timeout=60)) == 20
        a.stop(signal.SIGKILL)
        ingested_at_kill = len(steady.accepted)
        before_kill = [sse.id for sse in held.seen if sse.event == KIND]
        before_kill += events_until_end(held)
        held.close()
        # Some events are ingested while no connection is alive.
        servers.wait_until(
            lambda: len(steady.accepted) >= ingested_at_kill + 5 or not steady.is_alive(),
            timeout=30,
            what="events ingested while the stream is down",
        )
        ingested_while_down = len(steady.accepted)

        headers = {"Last-Event-ID": before_kill[-1]} if with_last_event_id else {}
        resumed = open_stream(b.url, token=member.token, params=PARAMS, headers=headers)
        try:
            assert resumed.status == 200
            steady.join(timeout=60)
            assert not steady.is_alive()
            assert steady.failures == []
            after = events_until(resumed, steady.accepted[-1])
            extra = [sse for sse in resumed.nothing_more(wait=1.0) if sse.event]
        finally:
            resumed.close()
    finally:
        a.stop()
        b.stop()

    ingested = steady.accepted
    assert len(ingested) == EVENTS
    assert extra == []
    after_ids = [event_id for event_id, _ in after]
    assert before_kill == ingested[: len(before_kill)]  # the dead connection: in order, no gap
    if with_last_event_id:
        assert after_ids == ingested[len(before_kill) :]
        repeated = 0
    else:
        # Replayed from the recorded position (the clean disconnect's): the dead connection's
        # events once more, then the rest.
        assert after_ids == ingested
        repeated = len(before_kill)
    assert [n for _, n in after] == list(range(EVENTS - len(after_ids), EVENTS))
    print(
        f"\ndaphne killed ({'with' if with_last_event_id else 'without'} Last-Event-ID): "
        f"ingested {len(ingested)} ({ingested_at_kill} before the kill, "
        f"{ingested_while_down - ingested_at_kill} while down); "
        f"received {len(before_kill)} before the kill and {len(after_ids)} after; "
        f"lost 0, repeated {repeated}"
    )


def test_a_stream_whose_process_was_killed_is_reset_after_the_window(log_dir, member, settings):
    window, heartbeat = 3, 0.2
    settings.NOTIFYHUB_STREAM_RECONNECT_WINDOW = timedelta(seconds=window)
    settings.NOTIFYHUB_STREAM_HEARTBEAT = heartbeat
    env = {
        "NOTIFYHUB_STREAM_RECONNECT_WINDOW": str(window),
        "NOTIFYHUB_STREAM_HEARTBEAT": str(heartbeat),
    }
    a = servers.start_daphne(log_dir, **env)
    b = servers.start_daphne(log_dir, **env)
    try:
        # A clean first connection records a position, as in the test above.
        stream = open_stream(a.url, token=member.token, params=PARAMS)
        first = ingest(KIND, user_id="maria", n=0)
        assert [sse.id for sse in stream.events(1)] == [first]
        stream.close()
        wait_for(
            lambda: StreamSession.objects.filter(
                client_id="phone", connection_id__isnull=True, last_sent_event_id=first
            ).exists(),
            what="the clean disconnect recorded",
        )
        held = open_stream(a.url, token=member.token, params=PARAMS)
        sent = ingest(KIND, user_id="maria", n=1)
        assert [sse.id for sse in held.events(1)] == [sent]
        opened_at = StreamSession.objects.get(client_id="phone").connected_at
        wait_for(
            lambda: StreamSession.objects.get(client_id="phone").seen_at > opened_at,
            what="daphne A's heartbeat",
        )
        assert stream_sessions_connected_count() == 1

        a.stop(signal.SIGKILL)
        held.ended()
        held.close()
        # Within the window the dead session's events are still kept for it.
        stale = [ingest(KIND, user_id="maria", n=n) for n in (2, 3, 4)]
        session = StreamSession.objects.get(client_id="phone")
        assert session.connection_id is not None  # nobody recorded the disconnect
        replay = stream_replay_page(session_id=session.pk, after=session.last_sent_event_id)
        assert [frame["id"] for frame in replay] == [sent, *stale]
        wait_for(
            lambda: stream_sessions_connected_count() == 0,
            what="the session no longer counted live once its heartbeat stopped",
        )
        wait_for(
            lambda: (
                StreamSession.objects.get(client_id="phone").seen_at
                < timezone.now() - timedelta(seconds=window + 0.5)
            ),
            what="the reconnect window to pass since the last heartbeat",
            timeout=30,
        )
        after_window = ingest(KIND, user_id="maria", n=5)

        stream_sessions_trim_task()  # beat's trim, run as the beat would

        session.refresh_from_db()
        assert session.connection_id is None
        assert session.disconnected_at == session.seen_at
        resumed = open_stream(b.url, token=member.token, params=PARAMS)  # no Last-Event-ID
        try:
            assert resumed.status == 200
            assert resumed.response.headers["Stream-Oldest-Event-ID"] == after_window
            reset = resumed.next()
            assert reset.event == "reset"
            assert not reset.id
            fresh = ingest(KIND, user_id="maria", n=6)
            assert [sse.id for sse in resumed.events(1)] == [fresh]
            assert [sse.event for sse in resumed.seen] == ["reset", KIND]
        finally:
            resumed.close()
    finally:
        a.stop()
        b.stop()
