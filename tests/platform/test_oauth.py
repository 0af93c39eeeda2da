"""OAuth 2.0: tokens by client credentials, per-application allowed scopes, revocation."""

import base64

import pytest
from django.conf import settings

from notifyhub.services import client_create

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.platform.urls")]

ADMIN = settings.SCOPE_ADMINISTRATOR
CONSUMER = settings.SCOPE_CONSUMER


def request_token(client, client_id: str, secret: str, scope: str | None = None):
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return client.post("/o/token/", data, HTTP_AUTHORIZATION=f"Basic {basic}")


def test_client_credentials_token_carries_the_requested_allowed_scope(client):
    created = client_create(name="integration", scopes=[ADMIN, CONSUMER])
    response = request_token(client, created.application.client_id, created.client_secret, CONSUMER)
    assert response.status_code == 200
    body = response.json()
    assert body["scope"] == CONSUMER
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == settings.NOTIFYHUB_ACCESS_TOKEN_TTL == 3600


def test_token_requested_without_scope_carries_exactly_the_allowed_scopes(client):
    created = client_create(name="integration", scopes=[CONSUMER])
    response = request_token(client, created.application.client_id, created.client_secret)
    assert response.status_code == 200
    assert response.json()["scope"].split() == [CONSUMER]


def test_scope_outside_the_applications_allowed_set_is_refused(client):
    created = client_create(name="integration", scopes=[CONSUMER])
    response = request_token(client, created.application.client_id, created.client_secret, ADMIN)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_unknown_scope_is_refused(client):
    created = client_create(name="integration", scopes=[CONSUMER])
    response = request_token(
        client, created.application.client_id, created.client_secret, "everything"
    )
    assert response.json()["error"] == "invalid_scope"


def test_application_with_no_allowed_scope_gets_no_token(client):
    created = client_create(name="integration", scopes=[CONSUMER])
    created.application.allowed_scopes = ""
    created.application.save()
    response = request_token(client, created.application.client_id, created.client_secret)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_wrong_secret_is_refused(client):
    created = client_create(name="integration", scopes=[CONSUMER])
    response = request_token(client, created.application.client_id, "wrong", CONSUMER)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_secrets_are_stored_hashed():
    created = client_create(name="integration", scopes=[CONSUMER])
    created.application.refresh_from_db()
    assert created.application.client_secret != created.client_secret
    assert created.application.client_secret.startswith("client_secret_hmac_sha256$")


def test_missing_token_is_401_with_www_authenticate(client):
    response = client.get("/api/probe/admin")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "NOT000001"


def test_unknown_token_is_401(client):
    response = client.get("/api/probe/admin", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert response.status_code == 401
    assert response.json()["code"] == "NOT000001"


def test_token_without_the_scope_is_403(consumer):
    response = consumer.api().get("/api/probe/admin")
    assert response.status_code == 403
    assert response.json()["code"] == "NOT000002"
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]


def test_token_with_the_scope_is_let_through(administrator):
    response = administrator.api().get("/api/probe/admin")
    assert response.status_code == 200
    assert response.json() == {"client_id": administrator.client_id}


def test_a_view_that_declares_no_scope_is_closed(administrator):
    assert administrator.api().get("/api/probe/undeclared").status_code == 403


def test_revoked_token_is_refused_on_the_next_request(client):
    created = client_create(name="integration", scopes=[ADMIN])
    app = created.application
    token = request_token(client, app.client_id, created.client_secret).json()["access_token"]
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    # The first call validates the token and caches it; revocation must still count at once.
    assert client.get("/api/probe/admin", **bearer).status_code == 200
    assert client.get("/api/probe/admin", **bearer).status_code == 200
    revoked = client.post(
        "/o/revoke_token/",
        {"token": token, "client_id": app.client_id, "client_secret": created.client_secret},
    )
    assert revoked.status_code == 200
    assert client.get("/api/probe/admin", **bearer).status_code == 401


def test_expired_token_is_refused(make_persona, client):
    from django.utils import timezone
    from oauth2_provider.models import AccessToken

    persona = make_persona("short-lived", [ADMIN])
    AccessToken.objects.filter(application=persona.application).update(expires=timezone.now())
    response = persona.api().get("/api/probe/admin")
    assert response.status_code == 401


def basic(persona) -> str:
    return "Basic " + base64.b64encode(f"{persona.client_id}:{persona.secret}".encode()).decode()


def test_a_client_holding_the_introspection_scope_introspects_with_its_credentials(
    make_persona, administrator, client
):
    """Resource servers introspect with their client credentials (RFC 7662)."""
    resource_server = make_persona("resource-server", ["introspection"])
    response = client.post(
        "/o/introspect/", {"token": administrator.token}, HTTP_AUTHORIZATION=basic(resource_server)
    )
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["client_id"] == administrator.client_id


def test_any_other_client_cannot_introspect_a_token(administrator, consumer, client):
    """DOT lets every authenticated client introspect every token; a partner must not learn
    another partner's token's scopes, user and expiry."""
    for caller in (consumer, administrator):
        response = client.post(
            "/o/introspect/", {"token": administrator.token}, HTTP_AUTHORIZATION=basic(caller)
        )
        assert response.status_code == 403
        assert response.json()["error"] == "access_denied"
