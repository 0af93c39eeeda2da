"""Live delivery and replay apply one rule from both ends: the streams whose in-memory filter
takes an event (`StreamFilter.matches`) are exactly the sessions whose replay reads it from the
log (`stream_session_events`), for every combination of kind, principal and filter below."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from events.models import Event
from notifyhub.errors import Forbidden
from notifyhub.models import Account, AccountMember
from notifyhub.selectors import member_account_ids
from streams.messages import event_route_of
from streams.models import StreamSession
from streams.principals import StreamPrincipal
from streams.rules import StreamFilter, stream_session_events
from streams.services import stream_session_open
from tests.streams.support import ingest

pytestmark = pytest.mark.django_db(transaction=True)


def test_live_routing_and_replay_agree_on_every_event_and_session(member, make_persona):
    app = make_persona("robot", ["notification:consent:consumer"])
    beta = Account.objects.create(id="beta", name="Beta")
    AccountMember.objects.create(account=beta, application=app.application)
    Account.objects.create(id="gamma", name="Gamma")  # nobody's
    maria = StreamPrincipal(kind="user", name="maria", user_id=member.user.pk, application_id=None)
    robot = StreamPrincipal(
        kind="client",
        name=app.application.client_id,
        user_id=None,
        application_id=app.application.pk,
    )
    own_account = {maria: "acme", robot: "beta"}
    shapes = [
        (["newMessage"], False, ""),
        (["newMessage", "newNotification"], False, ""),
        (["accountStatus"], True, ""),
        (["accountStatus", "ticket"], True, ""),
        (["ticket"], False, "T-1"),
        (["ticket", "loggedOut"], False, ""),
    ]
    for n, (principal, (kinds, watches_account, ticket)) in enumerate(
        itertools.product([maria, robot], shapes)
    ):
        stream_session_open(
            principal=principal,
            client_id=f"c{n}",
            kinds=kinds,
            account_ids=[own_account[principal]] if watches_account else [],
            ticket_number=ticket,
            last_event_id=None,
        )
    attributes = [
        {"user_id": "maria"},
        {"user_id": app.application.client_id},
        {"user_id": "oscar"},
        {"account_id": "acme"},
        {"account_id": "beta"},
        {"account_id": "gamma"},
        {"account_id": "acme", "ticket_number": "T-1"},
        {"account_id": "beta", "ticket_number": "T-2"},
        {"user_id": "maria", "ticket_number": "T-1"},
        {},
    ]
    kinds = ["newMessage", "newNotification", "accountStatus", "ticket", "loggedOut", "chat"]
    filters = {
        session.pk: StreamFilter(
            principal=session.principal,
            user_id=session.principal_user_id,
            application_id=session.principal_application_id,
            kinds=frozenset(session.kinds),
            account_ids=frozenset(session.account_ids),
            ticket_number=session.ticket_number,
            member_of=member_account_ids(
                user_id=session.principal_user_id,
                application_id=session.principal_application_id,
            ),
        )
        for session in StreamSession.objects.all()
    }
    routed: set[tuple[int, str]] = set()
    for type_id, payload in itertools.product(kinds, attributes):
        event = Event.objects.get(id=ingest(type_id, **payload))
        route = event_route_of(event)
        routed |= {(pk, event.id) for pk, f in filters.items() if f.matches(route)}

    since = timezone.now() - timedelta(minutes=1)
    replayable = {
        (session.pk, event_id)
        for session in StreamSession.objects.all()
        for event_id in stream_session_events(session, after="", since=since).values_list(
            "id", flat=True
        )
    }
    assert routed  # the grid routes something, so agreement is not vacuous
    assert replayable == routed


def test_a_session_never_watches_an_account_its_principal_is_not_a_member_of(member):
    Account.objects.create(id="beta", name="Beta")
    maria = StreamPrincipal(kind="user", name="maria", user_id=member.user.pk, application_id=None)
    with pytest.raises(Forbidden, match="beta"):
        stream_session_open(
            principal=maria,
            client_id="web",
            kinds=["accountStatus"],
            account_ids=["acme", "beta"],
            ticket_number="",
            last_event_id=None,
        )
    assert not StreamSession.objects.exists()
