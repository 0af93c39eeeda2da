"""Push API: `GET /api/push/subscribe` (server-sent events) and `POST /api/push/tickets`.

Why not django-eventstream's stock view: it is a sync view whose stream keeps a thread and a
database connection per idle client, it replays nothing to a connection without an id, answers
forbidden requests with HTTP 200, and lets a malformed Last-Event-ID raise after the status is
sent (which stops daphne reaping connections). Its channel model has no per-event predicate
(kinds, accounts, ticket numbers) and its ids are per channel. This view validates everything
before the response starts, touches the database only in short bursts on the shared pool (closing
the connection after each), and replays from the hub's own event log by each session's position
and filters, within the reconnect window, instead of storing events per channel. From the
library it uses the SSE framing (`sse_encode_event`) and the same `Last-Event-ID` sources
(header first, then `?lastEventId=`).
"""

import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, QueryDict
from django.http.response import HttpResponseBase
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifyhub import errors
from notifyhub.auth import BearerTokenAuthentication, TokenInfo, token_validate
from notifyhub.openapi import ErrorOutput, HubAutoSchema
from streams.connection import (
    EventStreamResponse,
    db_burst,
    release_request_connection,
    session_stream,
)
from streams.hub import StreamConnection, hub
from streams.principals import (
    StreamPrincipal,
    principal_for_token,
    principal_for_user,
    stream_principal_active,
)
from streams.rules import STREAM_KINDS
from streams.services import StreamOpened, stream_session_open
from streams.tickets import stream_ticket_create, stream_ticket_redeem

logger = logging.getLogger(__name__)


OLDEST_HEADER = "Stream-Oldest-Event-ID"


def _values(query: QueryDict, *names: str) -> list[str] | None:
    """Every value of a parameter under any of its names, repeated or comma-separated."""
    raw = [value for name in names for value in query.getlist(name)]
    if not raw:
        return None
    return [part.strip() for value in raw for part in value.split(",") if part.strip()]


def _single(query: QueryDict, *names: str) -> str | None:
    for name in names:
        values = query.getlist(name)
        if values:
            return values[-1].strip()
    return None


def _printable(value: str) -> bool:
    """No control character: a query parameter is stored with the stream's session."""
    return not any(ord(ch) < 32 for ch in value)


class StreamParams:
    """The validated parameters of one subscribe request."""

    def __init__(self, request: HttpRequest) -> None:
        query = request.GET
        client_id = _single(query, "clientId", "client_id")
        if not client_id:
            raise errors.Unprocessable("clientId: this parameter is required", field="clientId")
        if len(client_id) > 200 or not _printable(client_id):
            raise errors.Unprocessable(
                "clientId: at most 200 printable characters", field="clientId"
            )
        kinds = _values(query, "kinds")
        if not kinds:
            raise errors.Unprocessable(
                "kinds: this parameter is required (any of " + ", ".join(STREAM_KINDS) + ")",
                field="kinds",
            )
        unknown = [kind for kind in kinds if kind not in STREAM_KINDS]
        if unknown:
            raise errors.Unprocessable(
                f"kinds: unknown kind {unknown[0]!r} (any of {', '.join(STREAM_KINDS)})",
                field="kinds",
            )
        account_ids = _values(query, "accountIds", "account_ids") or []
        if "accountStatus" in kinds and not account_ids:
            raise errors.Unprocessable(
                "accountIds: required when kinds has accountStatus", field="accountIds"
            )
        if any(len(account) > 128 or not _printable(account) for account in account_ids):
            raise errors.Unprocessable(
                "accountIds: at most 128 printable characters each", field="accountIds"
            )
        ticket_number = _single(query, "ticketNumber", "ticket_number") or ""
        if len(ticket_number) > 128 or not _printable(ticket_number):
            raise errors.Unprocessable(
                "ticketNumber: at most 128 printable characters", field="ticketNumber"
            )
        # The header wins: an EventSource reconnecting sends it, and its URL keeps the
        # lastEventId it was first opened with. Any value is accepted: one that names no event
        # the hub knows (another server's id, a number, garbage) is a lost position, answered
        # with `reset` on a stream that opens, because an EventSource never retries a refusal.
        # It is only ever compared with event ids, never stored (see stream_session_open).
        last_event_id = request.headers.get("Last-Event-ID")
        if last_event_id is None:
            last_event_id = _single(query, "lastEventId", "last_event_id")
        if last_event_id is not None:
            last_event_id = last_event_id.strip().upper() or None
        self.client_id = client_id
        self.kinds = sorted(set(kinds), key=STREAM_KINDS.index)
        self.account_ids = sorted(set(account_ids))
        self.ticket_number = ticket_number
        self.last_event_id = last_event_id


def _principal_for_bearer(raw: str) -> StreamPrincipal:
    info = token_validate(raw)
    if info is None:
        raise errors.NotAuthenticated("The access token is invalid, expired or revoked.")
    if not info.has_scope(settings.SCOPE_CONSUMER):
        raise errors.ScopeMissing(f"The access token needs the scope {settings.SCOPE_CONSUMER}.")
    principal = principal_for_token(token=info)
    if principal is None:
        raise errors.NotAuthenticated("The token's user is inactive.")
    return principal


async def _authenticate(request: HttpRequest, client_id: str | None) -> StreamPrincipal | str:
    """The principal of a ticket (bound to `client_id` on its first use; None: the request is
    refused for its parameters, so bind nothing) or browser session, or the raw bearer token to
    check (in the same database burst as opening the session)."""
    ticket = request.GET.get("ticket")
    if ticket:
        # The sync client: bound to no event loop (see StreamHub.publish).
        principal = await sync_to_async(stream_ticket_redeem, thread_sensitive=False)(
            ticket=ticket, client_id=client_id
        )
        if principal is None:
            raise errors.NotAuthenticated(
                "The ticket is unknown, expired, revoked or bound to another clientId."
            )
        return principal
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, raw_token = header.partition(" ")
        if scheme.lower() != "bearer" or not raw_token.strip():
            raise errors.NotAuthenticated("Send Authorization: Bearer <token>.")
        return raw_token.strip()
    user = await request.auser()
    if user.is_authenticated and user.is_active:
        # Reads the session's stored expiry: its stream ends then.
        return await sync_to_async(_session_principal)(user, request.session)
    # Loading the session ran on the shared sync thread; do not leave it holding a connection.
    await sync_to_async(release_request_connection)()
    raise errors.NotAuthenticated()


def _session_principal(user: Any, session: Any) -> StreamPrincipal:
    try:
        return principal_for_user(user=user, session=session)
    finally:
        release_request_connection()


def _open(
    *,
    who: StreamPrincipal | str,
    from_ticket: bool,
    params: "StreamParams | None",
    params_error: errors.HubError | None,
) -> tuple[StreamPrincipal, StreamOpened]:
    """One database burst: authenticate a bearer token (or check that a ticket's credential
    still stands), then (401 before 422 before 403) validate and open the session."""
    principal = _principal_for_bearer(who) if isinstance(who, str) else who
    if from_ticket and not stream_principal_active(principal=principal):
        raise errors.NotAuthenticated("The ticket's token or session has ended.")
    if params_error is not None or params is None:
        raise params_error or errors.Unprocessable()
    opened = stream_session_open(
        principal=principal,
        client_id=params.client_id,
        kinds=params.kinds,
        account_ids=params.account_ids,
        ticket_number=params.ticket_number,
        last_event_id=params.last_event_id,
        members_known=hub.members_known,
    )
    return principal, opened


# Exempt so that any other method meets the JSON 405 below, not a CSRF refusal: a POST here
# changes nothing, and a GET (what opens a stream) is never checked for CSRF.
@csrf_exempt
async def push_subscribe(request: HttpRequest) -> HttpResponseBase:
    """`GET /api/push/subscribe`: validate, authenticate and authorize, then stream."""
    try:
        if request.method != "GET":
            raise errors.MethodNotAllowed("Use GET.")
        params: StreamParams | None = None
        params_error: errors.HubError | None = None
        try:
            params = StreamParams(request)
        except errors.HubError as error:
            params_error = error
        # A 401 still comes before the 422 (the parameters' error waits in `_open`).
        who = await _authenticate(request, params.client_id if params else None)
        principal, opened = await db_burst(
            _open,
            who=who,
            from_ticket=bool(request.GET.get("ticket")),
            params=params,
            params_error=params_error,
        )
    except errors.HubError as error:
        return errors.json_error(error)
    except Exception:
        logger.exception("could not open a stream")
        return errors.json_error(errors.ServiceUnavailable())
    connection = StreamConnection(
        session_id=opened.session_id,
        connection_id=opened.connection_id,
        filter=opened.filter,
        token_id=principal.token_id,
        session_key=principal.session_key,
        user_id=principal.user_id,
        expires_at=principal.expires_at,
        members_changes=opened.members_changes,
    )
    response = EventStreamResponse(session_stream(request, connection, opened))
    if opened.reset:
        response[OLDEST_HEADER] = opened.oldest_event_id
    return response


# The contract's own words (docs: the contract's PushApi), then what notifyhub adds.
CLIENT_ID_TEXT = (
    "An id generated by the client. This id is valid for the authenticated used, indicating a "
    "single session. As event streams can timeout and be reconnected, subsequent subscriptions "
    "with the same user and client id are considered the same subscription, and missed events "
    "since the last timeout will be immediately delivered. Missed events are enqueued up to a "
    "few minutes after the connection timeout. After that window, any enqueued events are "
    "discarded."
)

KINDS_TEXT = (
    "The event kinds for which the client desires to subscribe Possible values for each array "
    "element are: * accountStatus: The account status (balance, reserved amount, etc) has "
    "changed * loggedOut: The current session has been invalidated * newMessage: New message "
    "on the user's inbox * newNotification: New received notification * ticket: A ticket "
    "status has changed. Comma-separated (`kinds=a,b`) or repeated (`kinds=a&kinds=b`)."
)

ACCOUNT_IDS_TEXT = (
    "When subscribing to `accountStatus` events, this parameter must be informed to select the "
    "accounts to be watched for. Each must be an account the caller is a member of (else 403)."
)

TICKET_NUMBER_TEXT = (
    "When subscribing to `ticket` events, this parameter can be used to filter which ticket to "
    "monitor."
)

LAST_EVENT_ID_TEXT = (
    "The last received event id, in case of reconnections. May also be passed as the standard "
    "header `Last-Event-ID`. An id the hub does not know (or no longer keeps) opens the stream "
    "with a `reset` frame first, and it starts at the newest event."
)

SUBSCRIBE_DESCRIPTION = """Returns an event stream of server-sent events.

Each event is one frame: `id:` the event's id (a ULID), `event:` its kind, `data:` the payload the
producer posted, unmodified (JSON). The first frame is `retry:`; `: keep-alive` comments keep an
idle stream open; `event: reset` (no `id:`) comes first when the client's position is lost
(response header `Stream-Oldest-Event-ID`); `event: loggedOut` ends the stream when its token
or browser session ends. A reconnect with the same `clientId` (and `Last-Event-ID`) resumes
without loss within the reconnect window.

Credentials: `Authorization: Bearer` (scope `notification:consent:consumer`), a browser session
cookie, or `ticket` (from `POST /api/push/tickets`, for an `EventSource`). Errors come before the
stream opens, as JSON: 401, then 422, then 403, then 429 (too many streams or sessions for the
caller)."""


class PushSubscribeSchema(HubAutoSchema):
    """The stream's error answers are its own (401, 403, 405, 422, 429, 503), listed on the
    operation: it negotiates no media type (no 406) and its parameter errors are 422s."""

    def _error_statuses(self) -> dict[str, str]:
        return {}


class PushSubscribeApi(APIView):
    """Describes `GET /api/push/subscribe` in the schema. Never routed: the stream is
    `push_subscribe`, an async view a DRF view cannot be; `push_subscribe_schema_endpoint`
    lists this class in its place."""

    openapi_tag = "Push API"

    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    schema = PushSubscribeSchema()

    @extend_schema(
        operation_id="subscribe_for_push_notifications",
        summary="Subscribes for receiving push notifications of specific types",
        description=SUBSCRIBE_DESCRIPTION,
        parameters=[
            OpenApiParameter("clientId", str, required=True, description=CLIENT_ID_TEXT),
            OpenApiParameter(
                "kinds",
                str,
                required=True,
                many=True,
                explode=False,
                enum=list(STREAM_KINDS),
                description=KINDS_TEXT,
            ),
            OpenApiParameter(
                "accountIds", str, many=True, explode=False, description=ACCOUNT_IDS_TEXT
            ),
            OpenApiParameter("ticketNumber", str, description=TICKET_NUMBER_TEXT),
            OpenApiParameter("lastEventId", str, description=LAST_EVENT_ID_TEXT),
            OpenApiParameter(
                "ticket",
                str,
                description="A ticket from `POST /api/push/tickets`, instead of a token or "
                "session (an `EventSource` cannot send headers).",
            ),
            OpenApiParameter(
                "Last-Event-ID",
                str,
                location=OpenApiParameter.HEADER,
                description="As `lastEventId`, and wins over it (an EventSource sends it when "
                "it reconnects).",
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR,
                description="The event stream (`text/event-stream`), open until the client "
                "leaves, another connection takes its `clientId` over, or its credential ends.",
                examples=[
                    OpenApiExample(
                        "One newMessage event",
                        value="retry: 2000\n\nevent: newMessage\nid: 01KBR2Y7T3V7J6X8Q9W0E1R2T3\n"
                        'data: {"id": "msg-42", "type": "sms", "text": "hello"}\n\n',
                        media_type="text/event-stream",
                    )
                ],
            ),
            401: OpenApiResponse(
                ErrorOutput,
                description="No credential, or an unknown, expired or revoked one; a ticket "
                "bound to another clientId.",
            ),
            403: OpenApiResponse(
                ErrorOutput,
                description="The token lacks the consumer scope, or `accountIds` names an "
                "account the caller may not watch.",
            ),
            405: OpenApiResponse(ErrorOutput, description="Not a GET."),
            422: OpenApiResponse(
                ErrorOutput, description="A missing or invalid parameter; `field` names it."
            ),
            429: OpenApiResponse(
                ErrorOutput,
                description="The caller has its most open streams, or (for a new `clientId`) "
                "its most stream sessions; retry after `Retry-After` seconds.",
            ),
            503: OpenApiResponse(ErrorOutput, description="The stream could not be opened."),
        },
    )
    def get(self, request: Request) -> Response:
        raise errors.MethodNotAllowed("Served by push_subscribe.")


def push_subscribe_schema_endpoint(
    *, endpoints: list[tuple[str, str, str, Any]]
) -> list[tuple[str, str, str, Any]]:
    """drf-spectacular's PREPROCESSING_HOOKS seam: its generator lists DRF views only, so the
    stream's operation is added here, described by PushSubscribeApi."""
    path = reverse("push-subscribe")
    return [*endpoints, (path, path.lstrip("/"), "GET", PushSubscribeApi.as_view())]


class PushTicketOutput(serializers.Serializer):
    ticket = serializers.CharField(
        help_text="Pass as `?ticket=` to `GET /api/push/subscribe`, instead of a token."
    )
    expires_in = serializers.IntegerField(
        help_text="Seconds left to use the ticket for the first time. Its first use binds it to "
        "that request's clientId; it then opens that clientId's stream again (an EventSource "
        "reconnecting) until the token or browser session it was made from ends."
    )


class IsConsumerOrSessionUser(BasePermission):
    """A consumer-scoped bearer token, or a logged-in browser session."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if isinstance(request.auth, TokenInfo):
            if not request.auth.has_scope(settings.SCOPE_CONSUMER):
                raise errors.ScopeMissing(
                    f"The access token needs the scope {settings.SCOPE_CONSUMER}."
                )
            return True
        if request.user.is_authenticated and not isinstance(request.user, AnonymousUser):
            return True
        raise errors.NotAuthenticated()


class PushTicketCreateApi(APIView):
    """`POST /api/push/tickets`: a ticket for a browser's EventSource URL, so that no bearer
    token ever appears in a URL."""

    openapi_tag = "Push API"

    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [IsConsumerOrSessionUser]

    @extend_schema(
        operation_id="push_tickets_create",
        summary="Creates a ticket to open a stream from a browser",
        description=(
            "A ticket stands in for the caller's credential in the URL of an `EventSource` "
            "(which cannot send an `Authorization` header): "
            "`GET /api/push/subscribe?clientId=...&kinds=...&ticket=...`. Use it within "
            "`expires_in` seconds. Its first use binds it to that request's `clientId`; from "
            "then on it opens that `clientId`'s stream again, as the browser reconnects with "
            "the same URL (after a server restart, for instance), and is refused (401) for any "
            "other `clientId`. It ends with the token or browser session it was made from: "
            "at its expiry, and at once when the token is revoked or the session logs out."
        ),
        request=None,
        responses={
            201: OpenApiResponse(
                PushTicketOutput,
                description="The ticket.",
                examples=[
                    OpenApiExample(
                        "A ticket",
                        value={
                            "ticket": "Jx0b5b3dGvQm6mJ1cXJm2yJQq4f2b8r9oXn1kqzv0Qw",
                            "expires_in": 60,
                        },
                    )
                ],
            ),
            401: OpenApiResponse(description="No token or session."),
            403: OpenApiResponse(description="The token lacks the consumer scope."),
        },
    )
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, TokenInfo):
            principal = principal_for_token(token=request.auth)
            if principal is None:
                raise errors.NotAuthenticated("The token's user is inactive.")
            valid_until = request.auth.expires.timestamp()
        else:
            principal = principal_for_user(user=request.user, session=request.session)
            valid_until = principal.expires_at or request.session.get_expiry_date().timestamp()
        issued = stream_ticket_create(principal=principal, valid_until=valid_until)
        return Response(
            PushTicketOutput({"ticket": issued.ticket, "expires_in": issued.expires_in}).data,
            status=201,
        )
