"""Tickets: what a browser's EventSource URL carries instead of a bearer token.

A ticket names its principal and never outlives the credential it was made from (the token's
expiry, the browser session's). Unused, it lives at most NOTIFYHUB_STREAM_TICKET_TTL; its first
subscribe binds it to that request's clientId, and from then on it opens that one session's
stream, as often as the browser reconnects (EventSource reuses its URL, so a single-use ticket
would end the stream at the first restart), and refuses every other clientId. Revoking the
token or logging the session out deletes its tickets at once: each credential keeps the set of
its tickets, and each redemption checks in the database that the credential still stands.
"""

import json
import logging
import re
import secrets
import time
from dataclasses import asdict, dataclass

from django.conf import settings

from notifyhub.redis import redis_client, redis_key
from streams.principals import StreamPrincipal

logger = logging.getLogger(__name__)


# What token_urlsafe(32) makes (43 characters of URL-safe base64), with room to spare: anything
# else is no ticket, and is refused without a Redis round trip.
TICKET_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")

# Atomic, so two connections racing to be a ticket's first cannot both bind it.
# KEYS[1]: the ticket's hash. ARGV[1]: the clientId ("": only tell whether the ticket stands).
_REDEEM_LUA = """
local principal = redis.call('HGET', KEYS[1], 'principal')
if not principal or ARGV[1] == '' then
  return principal
end
local bound = redis.call('HGET', KEYS[1], 'client_id')
if not bound then
  redis.call('HSET', KEYS[1], 'client_id', ARGV[1])
  redis.call('EXPIREAT', KEYS[1], redis.call('HGET', KEYS[1], 'valid_until'))
  return principal
end
if bound == ARGV[1] then
  return principal
end
return false
"""

# Atomic, so no ticket is listed but left undeleted. One made after the revocation read the set
# is refused at redemption, by the database check of its credential.
# KEYS[1]: the credential's set of tickets. ARGV[1]: the prefix of a ticket's key.
_REVOKE_LUA = """
local tickets = redis.call('SMEMBERS', KEYS[1])
for _, ticket in ipairs(tickets) do
  redis.call('DEL', ARGV[1] .. ticket)
end
redis.call('DEL', KEYS[1])
return #tickets
"""


def _ticket_key(ticket: str) -> str:
    return redis_key("streams", "ticket", ticket)


def _credential_tickets_key(*, token_id: int | None, session_key: str | None) -> str:
    if token_id is not None:
        return redis_key("streams", "tickets", "token", str(token_id))
    return redis_key("streams", "tickets", "session", session_key or "")


@dataclass(frozen=True, slots=True)
class StreamTicketIssued:
    """A ticket just made, as POST /api/push/tickets answers it."""

    ticket: str
    # Seconds left to use it for the first time.
    expires_in: int


def stream_ticket_create(*, principal: StreamPrincipal, valid_until: float) -> StreamTicketIssued:
    """A ticket that opens `principal`'s stream for the first clientId it is used with, first
    used within NOTIFYHUB_STREAM_TICKET_TTL, and usable until `valid_until` (a POSIX time: the
    end of the token or browser session it is made from), never later."""
    now = time.time()
    # Whole seconds, rounded down: the ticket may end a little early, never late.
    end = int(valid_until)
    first_use_by = min(int(now) + settings.NOTIFYHUB_STREAM_TICKET_TTL, end)
    ticket = secrets.token_urlsafe(32)
    key = _ticket_key(ticket)
    credential = _credential_tickets_key(
        token_id=principal.token_id, session_key=principal.session_key
    )
    pipe = redis_client().pipeline()
    pipe.hset(key, mapping={"principal": json.dumps(asdict(principal)), "valid_until": end})
    pipe.expireat(key, first_use_by)
    pipe.sadd(credential, ticket)
    # Every ticket of a credential ends with it, so its set may end then too.
    pipe.expireat(credential, end)
    pipe.execute()
    return StreamTicketIssued(ticket=ticket, expires_in=max(0, first_use_by - int(now)))


def stream_ticket_redeem(*, ticket: str, client_id: str | None) -> StreamPrincipal | None:
    """The principal a ticket opens a stream as, binding the ticket to `client_id` if this is
    its first use; None if it is unknown, expired, revoked or bound to another clientId. With
    `client_id` None (a request refused for its parameters anyway) nothing is bound."""
    if not TICKET_RE.fullmatch(ticket):
        return None
    client = redis_client()
    raw = client.eval(_REDEEM_LUA, 1, _ticket_key(ticket), client_id or "")
    if not raw:
        return None
    return StreamPrincipal(**json.loads(raw))


def stream_tickets_revoke(*, token_id: int | None = None, session_key: str | None = None) -> int:
    """Delete every ticket made from a token or a browser session; returns how many."""
    if token_id is None and not session_key:
        return 0
    credential = _credential_tickets_key(token_id=token_id, session_key=session_key)
    try:
        return int(redis_client().eval(_REVOKE_LUA, 1, credential, _ticket_key("")))
    except Exception:
        # Not fatal: every redemption also checks the credential in the database.
        logger.exception("could not delete the stream tickets of a revoked credential")
        return 0
