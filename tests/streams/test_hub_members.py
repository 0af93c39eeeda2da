"""A process's streams share their principal's memberships with the streams opening beside them
(streams/hub.py `members_known`), and a change seen while one opens is never kept stale."""

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from notifyhub.models import Account, AccountMember
from streams.hub import StreamConnection, StreamHub
from streams.rules import StreamFilter
from tests.streams.support import stream_bus_of_this_run  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def stream(user_id: int, member_of: set[str], members_changes: int) -> StreamConnection:
    return StreamConnection(
        session_id=1,
        connection_id=uuid.uuid4(),
        filter=StreamFilter(
            principal="maria",
            user_id=user_id,
            application_id=None,
            kinds=frozenset({"newMessage"}),
            account_ids=frozenset(),
            ticket_number="",
            member_of=frozenset(member_of),
        ),
        members_changes=members_changes,
    )


async def eventually(check, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("never happened")


def test_a_change_seen_while_a_stream_opened_is_read_again_for_it(member):
    user_id = member.user.pk
    key = (user_id, None)

    async def scenario() -> None:
        hub = StreamHub()
        first = stream(user_id, {"acme"}, members_changes=0)
        await hub.attach(first)
        assert hub.members_known(key) == (0, frozenset({"acme"}))

        # The change lands (its bus message comes from the membership's signal) and the
        # process's streams of the principal read it back.
        await sync_to_async(join_gamma)()
        await eventually(lambda: first.filter.member_of == {"acme", "gamma"})
        assert hub.members_known(key) == (1, frozenset({"acme", "gamma"}))

        # A stream whose open took the memberships before the change attaches only now.
        late = stream(user_id, {"acme"}, members_changes=0)
        await hub.attach(late)
        await eventually(lambda: late.filter.member_of == {"acme", "gamma"})
        assert late.members_changes == 1

        hub.detach(first)
        hub.detach(late)
        # No stream of the principal left here: nothing to vouch for.
        assert hub.members_known(key) == (1, None)
        for task in (hub._task, hub._heartbeat_task, hub._keepalive_task):
            if task is not None:
                task.cancel()
        await hub.client().aclose()

    def join_gamma() -> None:
        try:
            Account.objects.create(id="gamma", name="Gamma")
            AccountMember.objects.create(user=member.user, account_id="gamma")
        finally:
            connections.close_all()

    asyncio.run(scenario())
