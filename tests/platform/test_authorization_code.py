"""Authorization code with PKCE: an app acting for a user gets a token that acts as that user."""

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlparse

import pytest
from django.conf import settings

from notifyhub.auth import token_validate
from notifyhub.services import client_create

pytestmark = pytest.mark.django_db

REDIRECT = "https://app.example.com/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


@pytest.fixture
def app_client(django_user_model):
    owner = django_user_model.objects.create_user("owner")
    return client_create(
        name="phone app",
        scopes=[settings.SCOPE_DEVICES],
        grant="authorization-code",
        username=owner.username,
        redirect_uris=REDIRECT,
    )


def authorize(client, app, challenge: str, method: str = "S256"):
    return client.post(
        "/o/authorize/",
        {
            "client_id": app.client_id,
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": settings.SCOPE_DEVICES,
            "code_challenge": challenge,
            "code_challenge_method": method,
            "state": "xyz",
            "allow": "Authorize",
        },
    )


def test_a_user_authorizes_an_app_and_its_token_acts_as_the_user(
    client, app_client, django_user_model
):
    maria = django_user_model.objects.create_user("maria", password="pw")
    client.force_login(maria)
    verifier, challenge = pkce_pair()
    app = app_client.application
    response = authorize(client, app, challenge)
    assert response.status_code == 302, response.content
    query = parse_qs(urlparse(response["Location"]).query)
    assert query["state"] == ["xyz"]
    token = client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": app.client_id,
            "client_secret": app_client.client_secret,
        },
    )
    assert token.status_code == 200, token.content
    info = token_validate(token.json()["access_token"])
    assert info.user_id == maria.pk
    assert info.scopes == {settings.SCOPE_DEVICES}


def test_a_code_without_the_right_verifier_is_refused(client, app_client, django_user_model):
    client.force_login(django_user_model.objects.create_user("maria"))
    _, challenge = pkce_pair()
    app = app_client.application
    code = parse_qs(urlparse(authorize(client, app, challenge)["Location"]).query)["code"][0]
    token = client.post(
        "/o/token/",
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": "wrong-" + secrets.token_urlsafe(40),
            "client_id": app.client_id,
            "client_secret": app_client.client_secret,
        },
    )
    assert token.status_code == 400
    assert token.json()["error"] == "invalid_grant"


def test_the_plain_pkce_method_is_refused(client, app_client, django_user_model):
    client.force_login(django_user_model.objects.create_user("maria"))
    verifier, _ = pkce_pair()
    response = authorize(client, app_client.application, verifier, method="plain")
    assert "code=" not in response.get("Location", "")
