"""The one rule of what a stream receives, read two ways.

Live, `StreamFilter.matches` decides in the memory of the process holding a stream whether an
event the bus delivers is for it; on a reconnect, `stream_session_events` reads from the event log
the events a session is owed. tests/streams/test_replay_rule.py checks that both agree. Matching
in memory is what lets routing skip the database for streams altogether.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from events.models import Event
from notifyhub.selectors import memberships_of
from streams.messages import EventRoute
from streams.models import StreamSession

STREAM_KINDS = ("accountStatus", "loggedOut", "newMessage", "newNotification", "ticket")

# A ULID in Crockford base32; the first character is at most 7 (48-bit time). Only an id of
# this form can name an event: any other Last-Event-ID is a position the hub does not know.
EVENT_ID_RE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


def event_id_well_formed(value: str) -> bool:
    """Whether `value` has the form of an event id (a ULID, in upper case)."""
    return EVENT_ID_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """What one stream receives, kept in memory by the process holding the stream."""

    principal: str
    user_id: int | None
    application_id: int | None
    kinds: frozenset[str]
    account_ids: frozenset[str]  # accountIds: the accounts whose `accountStatus` it wants
    ticket_number: str
    member_of: frozenset[str]  # the principal's accounts (refreshed when membership changes)

    def matches(self, event: EventRoute) -> bool:
        type_id = event["type_id"]
        if type_id not in self.kinds:
            return False
        if event["user_id"] != self.principal and event["account_id"] not in self.member_of:
            return False
        if type_id == "accountStatus" and event["account_id"] not in self.account_ids:
            return False
        return not (
            type_id == "ticket"
            and self.ticket_number
            and event["ticket_number"] != self.ticket_number
        )


def stream_session_events(
    session: StreamSession, *, after: str, since: datetime
) -> "QuerySet[Event]":
    """`stream_filter_events` for a session, by the filter it was last opened with."""
    session_filter = StreamFilter(
        principal=session.principal,
        user_id=session.principal_user_id,
        application_id=session.principal_application_id,
        kinds=frozenset(session.kinds),
        account_ids=frozenset(session.account_ids),
        ticket_number=session.ticket_number,
        member_of=frozenset(),  # Unused: the query reads the memberships itself.
    )
    return stream_filter_events(session_filter, after=after, since=since)


def stream_filter_events(
    stream_filter: StreamFilter, *, after: str, since: datetime
) -> "QuerySet[Event]":
    """The events a stream is owed after `after`, created since `since`, oldest first (ULIDs
    sort by time): its kinds, its principal's (the payload's user_id names it, or its
    account_id is one the principal is a member of, as the database holds it now), narrowed by
    its accountIds for `accountStatus` and its ticket number for `ticket`.

    The same rule as `StreamFilter.matches`, read the other way (streams for an event there,
    events for a stream here).
    """
    kinds = stream_filter.kinds
    wanted = Q(type_id__in=sorted(kinds - {"accountStatus", "ticket"}))
    if "accountStatus" in kinds and stream_filter.account_ids:
        wanted |= Q(type_id="accountStatus", account_id__in=sorted(stream_filter.account_ids))
    if "ticket" in kinds:
        wanted |= (
            Q(type_id="ticket", ticket_number=stream_filter.ticket_number)
            if stream_filter.ticket_number
            else Q(type_id="ticket")
        )
    members = memberships_of(
        user_id=stream_filter.user_id, application_id=stream_filter.application_id
    )
    belongs = Q(user_id=stream_filter.principal) | Q(account_id__in=members.values("account_id"))
    return Event.objects.filter(wanted, belongs, id__gt=after, created_at__gte=since).order_by("id")
