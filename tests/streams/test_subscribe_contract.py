"""GET /api/push/subscribe: every parameter rule and error, answered before a stream opens."""

import pytest
from django.conf import settings

from notifyhub.models import Account
from tests.streams.support import SUBSCRIBE

pytestmark = pytest.mark.django_db(transaction=True)


def subscribe(persona, **params):
    client = persona.api() if persona is not None else None
    if client is None:
        from rest_framework.test import APIClient

        client = APIClient()
    return client.get(SUBSCRIBE, params)


def assert_error(response, status, code, field=None):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["code"] == code
    if field is not None:
        assert body["field"] == field


def test_without_credentials_is_401(db):
    assert_error(subscribe(None, clientId="c", kinds="newMessage"), 401, "NOT000001")


def test_an_unknown_token_is_401(consumer):
    consumer.token = "not-a-token"
    assert_error(subscribe(consumer, clientId="c", kinds="newMessage"), 401, "NOT000001")


def test_a_token_without_the_consumer_scope_is_403(producer):
    assert_error(subscribe(producer, clientId="c", kinds="newMessage"), 403, "NOT000002")


def test_client_id_is_required(consumer):
    assert_error(subscribe(consumer, kinds="newMessage"), 422, "NOT000013", "clientId")


def test_kinds_are_required(consumer):
    assert_error(subscribe(consumer, clientId="c"), 422, "NOT000013", "kinds")


def test_an_unknown_kind_is_422_and_named(consumer):
    response = subscribe(consumer, clientId="c", kinds="newMessage,bogus")
    assert_error(response, 422, "NOT000013", "kinds")
    assert "bogus" in response.json()["description"]


def test_account_status_needs_account_ids(member):
    assert_error(
        subscribe(member, clientId="c", kinds="accountStatus"), 422, "NOT000013", "accountIds"
    )


def test_account_ids_the_principal_may_not_watch_are_403(member):
    Account.objects.create(id="globex")
    response = subscribe(member, clientId="c", kinds="accountStatus", accountIds="acme,globex")
    assert_error(response, 403, "NOT000012")
    assert "globex" in response.json()["description"]


def test_an_outsider_may_not_watch_any_account(outsider, member):
    response = subscribe(outsider, clientId="c", kinds="accountStatus", account_ids="acme")
    assert_error(response, 403, "NOT000012")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"clientId": "c\x00"}, "clientId"),
        ({"kinds": "accountStatus", "accountIds": "acme\x00"}, "accountIds"),
        ({"ticketNumber": "T-1\x00"}, "ticketNumber"),
    ],
)
def test_a_nul_in_a_stored_parameter_is_422_not_a_server_error(member, params, field):
    # Each is stored with the stream's session, and PostgreSQL's text cannot hold NUL.
    response = subscribe(member, **{"clientId": "c", "kinds": "newMessage", **params})
    assert_error(response, 422, "NOT000013", field)


def test_an_unknown_ticket_is_401(db):
    from rest_framework.test import APIClient

    response = APIClient().get(SUBSCRIBE, {"clientId": "c", "kinds": "newMessage", "ticket": "x"})
    assert_error(response, 401, "NOT000001")


def test_other_methods_are_405_json(consumer):
    response = consumer.api().post(SUBSCRIBE + "?clientId=c&kinds=newMessage")
    assert_error(response, 405, "NOT000004")


def test_a_ticket_is_issued_to_a_consumer_token(consumer):
    response = consumer.api().post("/api/push/tickets")
    assert response.status_code == 201, response.content
    assert response.json()["expires_in"] == settings.NOTIFYHUB_STREAM_TICKET_TTL
    assert len(response.json()["ticket"]) >= 32


def test_a_ticket_needs_the_consumer_scope(producer):
    assert_error(producer.api().post("/api/push/tickets"), 403, "NOT000002")


def test_a_ticket_needs_credentials(db):
    from rest_framework.test import APIClient

    assert_error(APIClient().post("/api/push/tickets"), 401, "NOT000001")
