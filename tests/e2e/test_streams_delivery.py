"""The Push API over a real daphne, read by a real SSE client: frames, filters, takeover,
tickets and loggedOut."""

import threading
import time

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client

from notifyhub.models import Account, AccountMember
from streams.models import StreamSession
from tests import servers
from tests.conftest import CONSUMER, issue_token
from tests.streams.support import (
    data,
    ingest,
    open_stream,
    push_event_types,  # noqa: F401
    stream_bus_of_this_run,  # noqa: F401
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_frames_carry_the_event_id_and_kind_beside_the_payload_unmodified(daphne, member):
    stream = open_stream(
        daphne.url, token=member.token, params={"clientId": "web", "kinds": "newMessage"}
    )
    try:
        assert stream.status == 200
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        first = stream.next()
        assert first is not None
        assert first.retry == 2000
        # The producer's own id, type and created_at: the hub's go in the frame's fields.
        payload = {
            "id": "msg-42",
            "type": "sms",
            "created_at": "2020-01-01",
            "user_id": "maria",
            "text": "hello",
        }
        event_id = ingest("newMessage", **payload)
        [frame] = stream.events(1)
        assert frame.id == event_id
        assert frame.event == "newMessage"
        assert data(frame) == payload
    finally:
        stream.close()


def test_events_committed_out_of_their_ids_order_all_reach_an_open_stream(daphne, member):
    """Two producers: the first takes its event id, the second a later one and commits first.
    The bus hands the stream the later id first; the earlier one must still arrive when its
    producer commits (ids order the log, not the bus: two web processes publish in commit
    order)."""
    stream = open_stream(
        daphne.url, token=member.token, params={"clientId": "web", "kinds": "newMessage"}
    )
    took_id, commit = threading.Event(), threading.Event()
    earlier: list[str] = []

    def slow_producer() -> None:
        try:
            with transaction.atomic():
                earlier.append(ingest("newMessage", user_id="maria", n=1))
                took_id.set()
                commit.wait(10)
        finally:
            connection.close()

    producer = threading.Thread(target=slow_producer)
    try:
        assert stream.status == 200
        producer.start()
        assert took_id.wait(10)
        later = ingest("newMessage", user_id="maria", n=2)
        assert [frame.id for frame in stream.events(1)] == [later]
        commit.set()
        producer.join(10)
        assert earlier[0] < later
        assert [frame.id for frame in stream.events(1, timeout=5)] == earlier
    finally:
        commit.set()
        if producer.ident is not None:
            producer.join(10)
        stream.close()


def test_snake_case_and_repeated_parameters_are_accepted(daphne, member):
    stream = open_stream(
        daphne.url,
        token=member.token,
        params=[("client_id", "web"), ("kinds", "newMessage"), ("kinds", "ticket")],
    )
    try:
        assert stream.status == 200
        ingest("ticket", user_id="maria", ticket_number="7")
        [frame] = stream.events(1)
        assert frame.event == "ticket"
    finally:
        stream.close()


def test_nothing_of_another_user_account_or_ticket_arrives(daphne, member, outsider):
    Account.objects.create(id="globex")
    stream = open_stream(
        daphne.url,
        token=member.token,
        params={
            "clientId": "web",
            "kinds": "newMessage,accountStatus,ticket",
            "accountIds": "acme",
            "ticketNumber": "42",
        },
    )
    try:
        assert stream.status == 200
        ingest("newMessage", user_id="oscar", text="for oscar")
        ingest("newMessage", account_id="globex", text="someone else's account")
        ingest("accountStatus", account_id="globex", status="down")
        ingest("ticket", user_id="maria", ticket_number="43")
        ingest("newNotification", user_id="maria", text="a kind not asked for")
        wanted = [
            ingest("ticket", user_id="maria", ticket_number="42"),
            ingest("newMessage", account_id="acme", text="maria's account"),
            ingest("accountStatus", account_id="acme", status="up"),
        ]
        frames = stream.events(3)
        assert [frame.id for frame in frames] == wanted
        assert not [sse for sse in stream.nothing_more(wait=0.5) if sse.id]
    finally:
        stream.close()


def test_account_status_is_limited_to_the_account_ids_asked_for(daphne, member):
    Account.objects.create(id="initech")
    AccountMember.objects.create(account_id="initech", user=member.user)
    stream = open_stream(
        daphne.url,
        token=member.token,
        params={"clientId": "web", "kinds": "accountStatus", "accountIds": "acme"},
    )
    try:
        ingest("accountStatus", account_id="initech", status="down")
        wanted = ingest("accountStatus", account_id="acme", status="up")
        assert [frame.id for frame in stream.events(1)] == [wanted]
    finally:
        stream.close()


def test_an_application_token_listens_as_its_client_id(daphne, consumer):
    stream = open_stream(
        daphne.url, token=consumer.token, params={"clientId": "svc", "kinds": "newNotification"}
    )
    try:
        ingest("newNotification", user_id="maria")
        wanted = ingest("newNotification", user_id=consumer.client_id)
        assert [frame.id for frame in stream.events(1)] == [wanted]
    finally:
        stream.close()


def test_a_second_connection_of_the_client_takes_over(daphne, member):
    params = {"clientId": "web", "kinds": "newMessage"}
    first = open_stream(daphne.url, token=member.token, params=params)
    second = open_stream(daphne.url, token=member.token, params=params)
    try:
        assert first.ended()
        wanted = ingest("newMessage", user_id="maria")
        assert [frame.id for frame in second.events(1)] == [wanted]
    finally:
        first.close()
        second.close()


def test_a_takeover_without_last_event_id_repeats_nothing(daphne, member):
    params = {"clientId": "web", "kinds": "newMessage"}
    first = open_stream(daphne.url, token=member.token, params=params)
    try:
        sent = [ingest("newMessage", user_id="maria", n=n) for n in range(3)]
        assert [frame.id for frame in first.events(3)] == sent
        second = open_stream(daphne.url, token=member.token, params=params)
        try:
            assert first.ended()
            wanted = ingest("newMessage", user_id="maria", n=3)
            assert [frame.id for frame in second.events(1)] == [wanted]
        finally:
            second.close()
    finally:
        first.close()


def test_a_revoked_token_gets_logged_out_and_its_stream_closed(daphne, member):
    stream = open_stream(
        daphne.url, token=member.token, params={"clientId": "web", "kinds": "newMessage"}
    )
    try:
        assert stream.status == 200
        stream.next()
        revoked = httpx.post(
            f"{daphne.url}/o/revoke_token/",
            data={
                "token": member.token,
                "client_id": member.client_id,
                "client_secret": member.secret,
            },
            timeout=10,
        )
        assert revoked.status_code == 200, revoked.text
        assert stream.ended()
        assert [sse.event for sse in stream.seen][-1] == "loggedOut"
        again = open_stream(
            daphne.url, token=member.token, params={"clientId": "web", "kinds": "newMessage"}
        )
        assert again.status == 401
        again.close()
    finally:
        stream.close()


def test_a_browser_session_streams_and_its_logout_closes_it(daphne, member):
    browser = Client()
    browser.force_login(member.user)
    cookies = {"sessionid": browser.cookies["sessionid"].value}
    stream = open_stream(
        daphne.url, cookies=cookies, params={"clientId": "tab", "kinds": "newMessage"}
    )
    try:
        assert stream.status == 200
        wanted = ingest("newMessage", user_id="maria")
        assert [frame.id for frame in stream.events(1)] == [wanted]
        browser.logout()
        assert stream.ended()
        assert [sse.event for sse in stream.seen][-1] == "loggedOut"
    finally:
        stream.close()


def test_a_ticket_reopens_the_stream_of_its_client_id_and_no_other(daphne, member):
    ticket = httpx.post(
        f"{daphne.url}/api/push/tickets",
        headers={"Authorization": f"Bearer {member.token}"},
        timeout=10,
    ).json()["ticket"]
    params = {"clientId": "tab", "kinds": "newMessage", "ticket": ticket}
    stream = open_stream(daphne.url, params=params)
    try:
        assert stream.status == 200
        wanted = ingest("newMessage", user_id="maria", n=1)
        assert [frame.id for frame in stream.events(1)] == [wanted]
    finally:
        stream.close()
    # What an EventSource does on its own: the same URL, with the last id it saw.
    again = open_stream(daphne.url, params=params, headers={"Last-Event-ID": wanted})
    try:
        assert again.status == 200
        live = ingest("newMessage", user_id="maria", n=2)
        assert [frame.id for frame in again.events(1)] == [live]
    finally:
        again.close()
    other = open_stream(daphne.url, params={**params, "clientId": "another-tab"})
    assert other.status == 401
    assert other.response.json()["code"] == "NOT000001"
    other.close()


def test_a_closed_stream_marks_its_session_disconnected(daphne, member):
    stream = open_stream(
        daphne.url, token=member.token, params={"clientId": "web", "kinds": "newMessage"}
    )
    stream.next()
    session = StreamSession.objects.get(principal="maria", client_id="web")
    assert session.connection_id is not None
    stream.close()
    wait_for(
        lambda: StreamSession.objects.get(pk=session.pk).connection_id is None,
        what="the server to notice the disconnect",
    )
    assert get_user_model().objects.filter(username="maria").exists()


def test_a_stream_ends_with_logged_out_when_its_token_expires(daphne, member):
    short = issue_token(member.application, scopes=[CONSUMER], user=member.user, expires_in=2)
    stream = open_stream(daphne.url, token=short, params={"clientId": "web", "kinds": "newMessage"})
    try:
        assert stream.status == 200
        assert stream.ended(timeout=30)
        last = stream.seen[-1]
        assert last.event == "loggedOut"
        assert data(last)["reason"] == "token_expired"
    finally:
        stream.close()


def test_an_idle_stream_gets_a_keep_alive_comment_every_interval(transactional_db, log_dir, member):
    server = servers.start_daphne(log_dir, NOTIFYHUB_STREAM_KEEPALIVE="0.3")
    try:
        params = {"clientId": "web", "kinds": "newMessage"}
        headers = {"Authorization": f"Bearer {member.token}"}
        url = f"{server.url}/api/push/subscribe"
        with httpx.stream("GET", url, params=params, headers=headers, timeout=10) as response:
            assert response.status_code == 200
            received = b""
            started = time.monotonic()
            for chunk in response.iter_raw():
                received += chunk
                if time.monotonic() - started > 2.0:
                    break
        # About six in two seconds; a generous floor keeps a loaded machine from failing it.
        assert received.count(b": keep-alive\n\n") >= 3
    finally:
        server.stop()


def gamma_reaches(stream) -> bool:
    """Whether an event of account gamma reaches the stream within 10 s (the membership's
    reload is asynchronous: one is ingested every half second until one arrives)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sent = ingest("newMessage", account_id="gamma", at=time.monotonic())  # never a repeat
        if any(sse.id == sent for sse in stream.nothing_more(wait=0.5)):
            return True
    return False


def test_account_membership_changes_reach_open_streams(daphne, member):
    Account.objects.create(id="gamma", name="Gamma")
    stream = open_stream(
        daphne.url, token=member.token, params={"clientId": "web", "kinds": "newMessage"}
    )
    try:
        assert stream.status == 200
        stream.next()
        acme = ingest("newMessage", account_id="acme", n=0)
        assert [sse.id for sse in stream.events(1)] == [acme]
        # One transaction: whichever reload the stream's process runs reads both changes.
        with transaction.atomic():
            AccountMember.objects.filter(user=member.user, account_id="acme").delete()
            AccountMember.objects.create(user=member.user, account_id="gamma")
        assert gamma_reaches(stream), "an account joined while connected never reached the stream"
        ingest("newMessage", account_id="acme", n=1)
        assert all(data(sse).get("account_id") != "acme" for sse in stream.nothing_more(wait=1))
    finally:
        stream.close()


def test_a_stream_opened_beside_one_of_its_principal_follows_a_membership_change(daphne, member):
    """A new stream of a principal whose streams the process already holds takes its
    memberships from them (no database read); opened just as they change, it still ends up with
    the new ones, whichever comes first: the change's bus message or its open."""
    Account.objects.create(id="gamma", name="Gamma")
    first = open_stream(
        daphne.url, token=member.token, params={"clientId": "tab-1", "kinds": "newMessage"}
    )
    try:
        assert first.status == 200
        first.next()
        with transaction.atomic():
            AccountMember.objects.filter(user=member.user, account_id="acme").delete()
            AccountMember.objects.create(user=member.user, account_id="gamma")
        second = open_stream(
            daphne.url, token=member.token, params={"clientId": "tab-2", "kinds": "newMessage"}
        )
        try:
            assert second.status == 200
            second.next()
            assert gamma_reaches(second), "the account joined never reached the stream beside"
            ingest("newMessage", account_id="acme", n=1)
            assert all(data(sse).get("account_id") != "acme" for sse in second.nothing_more(wait=1))
        finally:
            second.close()
    finally:
        first.close()
