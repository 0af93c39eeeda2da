"""The Push API as its contract describes it (the swagger-codegen client's PushApi:
`subscribe_for_push_notifications`), sent exactly as that generated Python client sends it, to a
real daphne.

What the generated client sends: `GET {base}/push/subscribe` with the query parameters in the
order of its signature (clientId, kinds, accountIds, ticketNumber, lastEventId), arrays joined
with commas (Swagger 2.0's default collectionFormat, csv; `multi` repeats them), the query
encoded by urllib3 (`urllib.parse.urlencode`), `User-Agent: Swagger-Codegen/1.0.0/python`, no
Content-Type, and the Accept the contract lists (`application/json, text/event-stream`; the
client's select_header_accept narrows such a list to `application/json`, so both are sent). The
contract says "No authorization required"; the hub requires a credential, which such a client
is given as a default header (`api_client.set_default_header("Authorization", ...)`), or as
`?ticket=` from `POST /api/push/tickets`.
"""

import json
from http import HTTPStatus
from urllib.parse import urlencode

import httpx
import pytest
import schemathesis
from django.test import Client

from tests.streams.support import (
    data,
    ingest,
    open_stream,
    push_event_types,  # noqa: F401
    stream_bus_of_this_run,  # noqa: F401
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CONTRACT_ACCEPT = "application/json, text/event-stream"
CODEGEN_USER_AGENT = "Swagger-Codegen/1.0.0/python"


def codegen_query(
    *,
    client_id: str,
    kinds: list[str],
    account_ids: list[str] | None = None,
    ticket_number: str | None = None,
    last_event_id: str | None = None,
    collection_format: str = "csv",
    extra: list[tuple[str, str]] | None = None,
) -> str:
    """The query string of subscribe_for_push_notifications, as the generated client builds it
    (ApiClient.parameters_to_tuples, then urllib3's urlencode)."""
    params: list[tuple[str, object]] = [("clientId", client_id), ("kinds", kinds)]
    if account_ids is not None:
        params.append(("accountIds", account_ids))
    if ticket_number is not None:
        params.append(("ticketNumber", ticket_number))
    if last_event_id is not None:
        params.append(("lastEventId", last_event_id))
    tuples: list[tuple[str, str]] = []
    for name, value in params:
        if isinstance(value, list):
            if collection_format == "multi":
                tuples.extend((name, item) for item in value)
            else:
                tuples.append((name, ",".join(value)))
        else:
            tuples.append((name, str(value)))
    return urlencode([*tuples, *(extra or [])])


def codegen_headers(*, token: str | None, accept: str = CONTRACT_ACCEPT) -> dict[str, str]:
    headers = {"Accept": accept, "User-Agent": CODEGEN_USER_AGENT}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def subscribe(url: str, *, token: str | None = None, accept: str = CONTRACT_ACCEPT, **query):
    return open_stream(
        url,
        query=codegen_query(**query),
        headers=codegen_headers(token=token, accept=accept),
        headers_as_given=True,
    )


def ticket_for(url: str, token: str) -> str:
    response = httpx.post(
        f"{url}/api/push/tickets", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert response.status_code == 201, response.text
    return response.json()["ticket"]


def assert_json_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    # daphne's own table lacks some (422 went out as `Unknown Status`): notifyhub/asgi.py.
    assert response.reason_phrase == HTTPStatus(status).phrase
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == code
    assert body["description"]
    return body


# --- The contract's example request ---


@pytest.mark.parametrize("collection_format", ["csv", "multi"])
@pytest.mark.parametrize(
    "accept", [CONTRACT_ACCEPT, "application/json"], ids=["contract-accept", "client-accept"]
)
def test_the_contract_example_opens_an_event_stream_with_the_payload_unmodified(
    daphne, member, collection_format, accept
):
    stream = subscribe(
        daphne.url,
        token=member.token,
        accept=accept,
        client_id="client_id_example",
        kinds=["newMessage", "newNotification"],
        collection_format=collection_format,
    )
    try:
        assert stream.status == 200
        assert stream.response.headers["content-type"].split(";")[0] == "text/event-stream"
        assert stream.next().retry == 2000
        payload = {"id": "msg-42", "type": "sms", "created_at": "2020-01-01", "user_id": "maria"}
        message = ingest("newMessage", **payload)
        notification = ingest("newNotification", user_id="maria", text="a notification")
        frames = stream.events(2)
        assert [(frame.id, frame.event) for frame in frames] == [
            (message, "newMessage"),
            (notification, "newNotification"),
        ]
        assert data(frames[0]) == payload
        assert data(frames[1]) == {"user_id": "maria", "text": "a notification"}
    finally:
        stream.close()


def test_the_example_with_every_parameter_receives_what_they_select(daphne, member):
    stream = subscribe(
        daphne.url,
        token=member.token,
        client_id="client_id_example",
        kinds=["accountStatus", "ticket"],
        account_ids=["acme"],
        ticket_number="ticket_number_example",
    )
    try:
        assert stream.status == 200
        ingest("ticket", user_id="maria", ticket_number="another ticket")
        wanted = [
            ingest("accountStatus", account_id="acme", balance=10),
            ingest("ticket", user_id="maria", ticket_number="ticket_number_example"),
        ]
        frames = stream.events(2)
        assert [frame.id for frame in frames] == wanted
        assert [frame.event for frame in frames] == ["accountStatus", "ticket"]
        assert data(frames[0]) == {"account_id": "acme", "balance": 10}
    finally:
        stream.close()


def test_the_example_last_event_id_is_unknown_so_the_stream_opens_with_reset(daphne, member):
    # `last_event_id_example`, the contract's own example value, is no event id of this hub.
    stream = subscribe(
        daphne.url,
        token=member.token,
        client_id="client_id_example",
        kinds=["newMessage"],
        last_event_id="last_event_id_example",
    )
    try:
        assert stream.status == 200
        assert stream.response.headers["content-type"].split(";")[0] == "text/event-stream"
        reset = stream.next()
        assert (reset.event, reset.id, reset.retry) == ("reset", "", 2000)
        fresh = ingest("newMessage", user_id="maria", text="after the reset")
        [frame] = stream.events(1)
        assert (frame.id, data(frame)) == (fresh, {"user_id": "maria", "text": "after the reset"})
    finally:
        stream.close()


def test_a_reconnect_with_the_last_event_id_header_replays_what_was_missed(daphne, member):
    query = {"client_id": "client_id_example", "kinds": ["newMessage"]}
    first = subscribe(daphne.url, token=member.token, **query)
    seen = ingest("newMessage", user_id="maria", n=0)
    assert [frame.id for frame in first.events(1)] == [seen]
    first.close()
    missed = [ingest("newMessage", user_id="maria", n=n) for n in (1, 2)]
    again = open_stream(
        daphne.url,
        query=codegen_query(**query),
        headers={**codegen_headers(token=member.token), "Last-Event-ID": seen},
        headers_as_given=True,
    )
    try:
        assert again.status == 200
        frames = again.events(2)
        assert [frame.id for frame in frames] == missed
        assert [data(frame) for frame in frames] == [{"user_id": "maria", "n": n} for n in (1, 2)]
    finally:
        again.close()


# --- Tickets ---


def test_a_ticket_is_created_as_documented(daphne, member, settings):
    response = httpx.post(
        f"{daphne.url}/api/push/tickets",
        headers={"Authorization": f"Bearer {member.token}", "Accept": "application/json"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"ticket", "expires_in"}
    assert body["expires_in"] == settings.NOTIFYHUB_STREAM_TICKET_TTL


def test_a_ticket_opens_its_client_ids_stream_again_and_is_refused_for_another(daphne, member):
    ticket = ticket_for(daphne.url, member.token)
    query = {"client_id": "tab-1", "kinds": ["newMessage"], "extra": [("ticket", ticket)]}
    first = subscribe(daphne.url, **query)
    try:
        assert first.status == 200
        seen = ingest("newMessage", user_id="maria", n=1)
        assert [frame.id for frame in first.events(1)] == [seen]
    finally:
        first.close()
    reused = subscribe(daphne.url, **query)
    try:
        assert reused.status == 200
        live = ingest("newMessage", user_id="maria", n=2)
        assert [frame.id for frame in reused.events(1)] == [live]
    finally:
        reused.close()
    other = subscribe(daphne.url, **{**query, "client_id": "tab-2"})
    body = assert_json_error(other.response, 401, "NOT000001")
    assert "clientId" in body["description"]
    other.close()


def test_a_revoked_tokens_tickets_are_refused_used_or_not(daphne, member):
    used = ticket_for(daphne.url, member.token)
    unused = ticket_for(daphne.url, member.token)
    query = {"client_id": "tab", "kinds": ["newMessage"]}
    stream = subscribe(daphne.url, **query, extra=[("ticket", used)])
    assert stream.status == 200
    revoked = httpx.post(
        f"{daphne.url}/o/revoke_token/",
        data={"token": member.token, "client_id": member.client_id, "client_secret": member.secret},
        timeout=10,
    )
    assert revoked.status_code == 200, revoked.text
    assert stream.ended()
    assert stream.seen[-1].event == "loggedOut"
    stream.close()
    for ticket in (used, unused):
        refused = subscribe(daphne.url, **query, extra=[("ticket", ticket)])
        assert_json_error(refused.response, 401, "NOT000001")
        refused.close()


def test_a_logged_out_sessions_tickets_are_refused_used_or_not(daphne, member):
    browser = Client()
    browser.force_login(member.user)
    used, unused = (browser.post("/api/push/tickets").json()["ticket"] for _ in range(2))
    query = {"client_id": "tab", "kinds": ["newMessage"]}
    stream = subscribe(daphne.url, **query, extra=[("ticket", used)])
    assert stream.status == 200
    wanted = ingest("newMessage", user_id="maria", text="before the logout")
    assert [frame.id for frame in stream.events(1)] == [wanted]
    browser.logout()
    assert stream.ended()
    assert stream.seen[-1].event == "loggedOut"
    stream.close()
    for ticket in (used, unused):
        refused = subscribe(daphne.url, **query, extra=[("ticket", ticket)])
        assert_json_error(refused.response, 401, "NOT000001")
        refused.close()


def test_a_deactivated_users_ticket_is_refused(daphne, member):
    ticket = ticket_for(daphne.url, member.token)
    member.user.is_active = False
    member.user.save(update_fields=["is_active"])
    refused = subscribe(
        daphne.url, client_id="tab", kinds=["newMessage"], extra=[("ticket", ticket)]
    )
    assert_json_error(refused.response, 401, "NOT000001")
    refused.close()


# --- Bad input: the platform's JSON error, never a 500, never HTML ---


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"client_id": "", "kinds": ["newMessage"]}, 422, "NOT000013"),
        ({"client_id": "c", "kinds": []}, 422, "NOT000013"),
        ({"client_id": "c", "kinds": ["kinds_example"]}, 422, "NOT000013"),
        ({"client_id": "c" * 201, "kinds": ["newMessage"]}, 422, "NOT000013"),
        ({"client_id": "c\x00", "kinds": ["newMessage"]}, 422, "NOT000013"),
        ({"client_id": "c\x1b[31m", "kinds": ["newMessage"]}, 422, "NOT000013"),
        ({"client_id": "c", "kinds": ["accountStatus"]}, 422, "NOT000013"),
        (
            {"client_id": "c", "kinds": ["accountStatus"], "account_ids": ["globex"]},
            403,
            "NOT000012",
        ),
        ({"client_id": "c", "kinds": ["ticket"], "ticket_number": "x" * 129}, 422, "NOT000013"),
    ],
    ids=[
        "no-client-id",
        "no-kinds",
        "unknown-kind",
        "long-client-id",
        "nul",
        "escape",
        "account-status-alone",
        "foreign-account",
        "long-ticket-number",
    ],
)
def test_bad_parameters_get_the_platforms_json_error(daphne, member, query, status, code):
    response = subscribe(daphne.url, token=member.token, **query)
    assert_json_error(response.response, status, code)
    response.close()


@pytest.mark.parametrize(
    "ticket",
    ["", "x", "x" * 10_000, "\x00", "../../etc", "%ff"],
    ids=["empty", "short", "huge", "nul", "path", "percent"],
)
def test_a_ticket_that_is_not_one_is_401_json(daphne, ticket):
    response = subscribe(
        daphne.url, client_id="c", kinds=["newMessage"], extra=[("ticket", ticket)]
    )
    assert_json_error(response.response, 401, "NOT000001")
    response.close()


def test_other_methods_are_405_json(daphne, member):
    response = httpx.post(
        f"{daphne.url}/api/push/subscribe?{codegen_query(client_id='c', kinds=['newMessage'])}",
        headers=codegen_headers(token=member.token),
        timeout=10,
    )
    assert_json_error(response, 405, "NOT000004")


# --- The schema: a client generated from it calls the stream ---


def test_the_schema_describes_the_stream_and_a_request_built_from_it_opens_one(daphne, member):
    published = httpx.get(f"{daphne.url}/api/schema/?format=json", timeout=10)
    assert published.status_code == 200
    document = published.json()
    operation = document["paths"]["/api/push/subscribe"]["get"]
    assert operation["operationId"] == "subscribe_for_push_notifications"
    assert operation["summary"] == "Subscribes for receiving push notifications of specific types"
    assert operation["description"].startswith("Returns an event stream of server-sent events")
    parameters = {(p["in"], p["name"]): p for p in operation["parameters"]}
    assert set(parameters) == {
        ("query", "clientId"),
        ("query", "kinds"),
        ("query", "accountIds"),
        ("query", "ticketNumber"),
        ("query", "lastEventId"),
        ("query", "ticket"),
        ("header", "Last-Event-ID"),
    }
    assert parameters["query", "clientId"]["required"] is True
    kinds = parameters["query", "kinds"]
    assert kinds["required"] is True
    assert kinds["schema"]["items"]["enum"] == [
        "accountStatus",
        "loggedOut",
        "newMessage",
        "newNotification",
        "ticket",
    ]
    assert "accountStatus: The account status" in kinds["description"]
    assert parameters["query", "accountIds"]["schema"]["type"] == "array"
    assert list(operation["responses"]["200"]["content"]) == ["text/event-stream"]
    for status in ("401", "403", "422"):
        assert list(operation["responses"][status]["content"]) == ["application/json"]
    tickets = document["paths"]["/api/push/tickets"]["post"]
    assert tickets["responses"]["201"]["content"]["application/json"]["examples"]

    # The request as a schema-driven client serializes it (style, explode, headers).
    schema = schemathesis.openapi.from_dict(document)
    case = schema["/api/push/subscribe"]["GET"].Case(
        query={"clientId": "generated", "kinds": ["newMessage", "ticket"]},
        headers={"Authorization": f"Bearer {member.token}"},
    )
    sent = case.as_transport_kwargs(base_url=daphne.url)
    with httpx.stream(
        "GET",
        sent["url"],
        params=sent.get("params"),
        headers=sent.get("headers"),
        timeout=httpx.Timeout(10, read=30),
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] == "text/event-stream"
        lines = response.iter_lines()
        assert next(lines).startswith("retry:")
        wanted = ingest("ticket", user_id="maria", ticket_number="7")
        frame = []
        for line in lines:
            if line:
                frame.append(line)
            if line.startswith("data:"):
                break
        assert frame[:2] == ["event: ticket", f"id: {wanted}"]
        assert json.loads(frame[2].removeprefix("data: ")) == {
            "user_id": "maria",
            "ticket_number": "7",
        }
