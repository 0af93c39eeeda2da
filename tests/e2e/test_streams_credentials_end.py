"""A stream ends when its credential does, over a real daphne: a browser session's stream at the
session's expiry date, and every stream of a user (token, ticket or session) the moment the user
is deactivated."""

import httpx
import pytest
from django.test import Client

from tests.streams.support import (
    data,
    ingest,
    open_stream,
    push_event_types,  # noqa: F401
    stream_bus_of_this_run,  # noqa: F401
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PARAMS = {"kinds": "newMessage"}


def logged_in(user, *, expires_in: int | None = None) -> Client:
    browser = Client()
    browser.force_login(user)
    if expires_in is not None:
        session = browser.session
        session.set_expiry(expires_in)
        session.save()
    return browser


def browser_cookies(user, *, expires_in: int | None = None) -> dict[str, str]:
    return {"sessionid": logged_in(user, expires_in=expires_in).cookies["sessionid"].value}


def test_a_browser_session_stream_ends_with_logged_out_when_the_session_expires(daphne, member):
    stream = open_stream(
        daphne.url,
        cookies=browser_cookies(member.user, expires_in=3),
        params={**PARAMS, "clientId": "tab"},
    )
    try:
        assert stream.status == 200
        wanted = ingest("newMessage", user_id="maria")
        assert [frame.id for frame in stream.events(1)] == [wanted]
        assert stream.ended(timeout=30)
        last = stream.seen[-1]
        assert last.event == "loggedOut"
        assert data(last)["reason"] == "session_expired"
    finally:
        stream.close()


def test_a_ticket_made_from_a_browser_session_ends_its_stream_at_the_session_expiry(daphne, member):
    # The page's own POST (same origin, CSRF token included): the test client's.
    made = logged_in(member.user, expires_in=3).post("/api/push/tickets")
    assert made.status_code == 201, made.content
    stream = open_stream(
        daphne.url, params={**PARAMS, "clientId": "tab", "ticket": made.json()["ticket"]}
    )
    try:
        assert stream.status == 200
        assert stream.ended(timeout=30)
        assert data(stream.seen[-1]) == {"type": "loggedOut", "reason": "session_expired"}
    finally:
        stream.close()


def test_deactivating_a_user_ends_every_stream_of_the_user_at_once(daphne, member, outsider):
    ticket = httpx.post(
        f"{daphne.url}/api/push/tickets",
        headers={"Authorization": f"Bearer {member.token}"},
        timeout=10,
    ).json()["ticket"]
    streams = [
        open_stream(daphne.url, token=member.token, params={**PARAMS, "clientId": "app"}),
        open_stream(daphne.url, params={**PARAMS, "clientId": "tab", "ticket": ticket}),
        open_stream(
            daphne.url, cookies=browser_cookies(member.user), params={**PARAMS, "clientId": "web"}
        ),
    ]
    bystander = open_stream(daphne.url, token=outsider.token, params={**PARAMS, "clientId": "app"})
    try:
        assert [stream.status for stream in [*streams, bystander]] == [200] * 4
        wanted = ingest("newMessage", user_id="maria")
        for stream in streams:
            assert [frame.id for frame in stream.events(1)] == [wanted]

        member.user.is_active = False
        member.user.save()

        for stream in streams:
            assert stream.ended(timeout=10)
            assert data(stream.seen[-1]) == {"type": "loggedOut", "reason": "user_deactivated"}
        assert not bystander.ended(timeout=0.5)
        again = open_stream(daphne.url, token=member.token, params={**PARAMS, "clientId": "app"})
        assert again.status == 401
        again.close()
    finally:
        for stream in [*streams, bystander]:
            stream.close()


def test_a_browser_session_extended_while_streaming_keeps_its_stream_until_the_new_expiry(
    daphne, member
):
    browser = logged_in(member.user, expires_in=2)
    stream = open_stream(
        daphne.url,
        cookies={"sessionid": browser.cookies["sessionid"].value},
        params={**PARAMS, "clientId": "tab"},
    )
    try:
        assert stream.status == 200
        session = browser.session
        session.set_expiry(5)  # the user kept using the site: the session lives on
        session.save()
        assert not stream.ended(timeout=3)
        assert "loggedOut" not in [sse.event for sse in stream.seen]
        assert stream.ended(timeout=30)
        assert data(stream.seen[-1]) == {"type": "loggedOut", "reason": "session_expired"}
    finally:
        stream.close()
