"""Tickets for a browser's EventSource URL: bound to the first clientId they open, never
outliving the token or session they came from, and revoked with it (the rules behind POST
/api/push/tickets; tests/contract/test_push_api.py drives them over HTTP)."""

import pytest
from django.test import Client
from oauth2_provider.models import AccessToken

from notifyhub.auth import token_checksum
from notifyhub.redis import redis_client, redis_key
from streams.tickets import stream_ticket_redeem
from tests.conftest import CONSUMER, issue_token
from tests.streams.support import SUBSCRIBE

pytestmark = pytest.mark.django_db(transaction=True)

TICKETS = "/api/push/tickets"


def ticket_of(persona, token: str | None = None) -> dict:
    client = persona.api()
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.post(TICKETS)
    assert response.status_code == 201, response.content
    return response.json()


def seconds_left(ticket: str) -> int:
    return redis_client().ttl(redis_key("streams", "ticket", ticket))


def test_a_ticket_binds_to_the_first_client_id_it_opens_and_refuses_any_other(member):
    ticket = ticket_of(member)["ticket"]
    first = stream_ticket_redeem(ticket=ticket, client_id="tab-1")
    assert first is not None
    assert first.name == "maria"
    assert stream_ticket_redeem(ticket=ticket, client_id="tab-1") == first
    assert stream_ticket_redeem(ticket=ticket, client_id="tab-2") is None
    assert stream_ticket_redeem(ticket=ticket, client_id="tab-1") == first


def test_a_request_refused_for_its_parameters_binds_nothing(member):
    ticket = ticket_of(member)["ticket"]
    assert stream_ticket_redeem(ticket=ticket, client_id=None) is not None
    assert stream_ticket_redeem(ticket=ticket, client_id="tab-2") is not None
    assert stream_ticket_redeem(ticket=ticket, client_id="tab-1") is None


def test_an_unused_ticket_ends_with_a_token_that_expires_before_its_ttl(member, settings):
    short = issue_token(member.application, scopes=[CONSUMER], user=member.user, expires_in=20)
    issued = ticket_of(member, short)
    assert issued["expires_in"] <= 20 < settings.NOTIFYHUB_STREAM_TICKET_TTL
    assert seconds_left(issued["ticket"]) <= 20


def test_a_bound_ticket_lives_until_its_token_expires_and_no_later(member, settings):
    token = issue_token(member.application, scopes=[CONSUMER], user=member.user, expires_in=600)
    issued = ticket_of(member, token)
    assert issued["expires_in"] == settings.NOTIFYHUB_STREAM_TICKET_TTL
    assert seconds_left(issued["ticket"]) <= settings.NOTIFYHUB_STREAM_TICKET_TTL
    assert stream_ticket_redeem(ticket=issued["ticket"], client_id="tab") is not None
    assert 590 <= seconds_left(issued["ticket"]) <= 600


def test_a_session_ticket_lives_no_longer_than_the_session(member, settings):
    browser = Client()
    browser.force_login(member.user)
    ticket = browser.post(TICKETS).json()["ticket"]
    assert stream_ticket_redeem(ticket=ticket, client_id="tab") is not None
    assert 0 < seconds_left(ticket) <= settings.SESSION_COOKIE_AGE


def test_deleting_a_token_deletes_its_tickets_and_no_other(member):
    other = issue_token(member.application, scopes=[CONSUMER], user=member.user)
    doomed = ticket_of(member)["ticket"]
    kept = ticket_of(member, other)["ticket"]
    assert stream_ticket_redeem(ticket=doomed, client_id="tab") is not None
    AccessToken.objects.get(token_checksum=token_checksum(member.token)).delete()
    assert stream_ticket_redeem(ticket=doomed, client_id="tab") is None
    assert stream_ticket_redeem(ticket=kept, client_id="tab") is not None


def test_logging_out_deletes_the_sessions_tickets(member):
    browser = Client()
    browser.force_login(member.user)
    ticket = browser.post(TICKETS).json()["ticket"]
    browser.logout()
    assert stream_ticket_redeem(ticket=ticket, client_id="tab") is None


@pytest.mark.parametrize(
    "ticket",
    ["", "x" * 65, "\x00", "\udcff", "abc\n"],
    ids=["empty", "long", "nul", "surrogate", "newline"],
)
def test_what_is_no_ticket_redeems_nothing(db, ticket):
    assert stream_ticket_redeem(ticket=ticket, client_id="tab") is None


def test_an_overlong_ticket_is_401_json(db):
    response = Client().get(
        SUBSCRIBE, {"clientId": "c", "kinds": "newMessage", "ticket": "x" * 5000}
    )
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "NOT000001"
