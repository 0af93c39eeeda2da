"""/o/token/ as a target: a wrong secret costs one HMAC, not PBKDF2's million rounds, older
secrets move to the fast hash on their next use, user passwords keep PBKDF2, and the endpoint is
rate limited per client id and per remote address."""

import base64
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth import hashers as django_hashers
from django.contrib.auth.hashers import identify_hasher, make_password

from notifyhub.models import Application
from notifyhub.services import client_create

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.platform.urls")]

CONSUMER = "notification:consent:consumer"


def request_token(client, client_id: str, secret: str, address: str = "192.0.2.10"):
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return client.post(
        "/o/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=f"Basic {basic}",
        REMOTE_ADDR=address,
    )


@pytest.fixture
def pbkdf2_rounds(monkeypatch):
    """How many PBKDF2 rounds Django's hashers ran (Django's function, counted, not replaced)."""
    rounds: list[int] = []
    original = django_hashers.pbkdf2

    def counted(password, salt, iterations, *args, **kwargs):
        rounds.append(iterations)
        return original(password, salt, iterations, *args, **kwargs)

    monkeypatch.setattr(django_hashers, "pbkdf2", counted)
    return rounds


def unique_address() -> str:
    """A remote address no other test counts against (the counters are shared in Redis)."""
    return f"2001:db8::{uuid.uuid4().int % 0xFFFF:x}:{uuid.uuid4().int % 0xFFFF:x}"


def test_a_token_request_with_a_bad_secret_runs_no_key_stretching(client, pbkdf2_rounds):
    created = client_create(name="integration", scopes=[CONSUMER])
    stored = Application.objects.get(pk=created.application.pk).client_secret
    assert identify_hasher(stored).algorithm == "client_secret_hmac_sha256"

    response = request_token(client, created.application.client_id, "x" * 128, unique_address())

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert pbkdf2_rounds == []


def test_a_secret_hashed_with_pbkdf2_moves_to_the_fast_hash_on_its_next_use(client, pbkdf2_rounds):
    created = client_create(name="legacy", scopes=[CONSUMER])
    legacy = make_password(created.client_secret, hasher="pbkdf2_sha256")
    Application.objects.filter(pk=created.application.pk).update(client_secret=legacy)
    pbkdf2_rounds.clear()

    first = request_token(client, created.application.client_id, created.client_secret)
    assert first.status_code == 200
    assert pbkdf2_rounds == [1_000_000]  # the one last stretched check, by the rightful client
    stored = Application.objects.get(pk=created.application.pk).client_secret
    assert identify_hasher(stored).algorithm == "client_secret_hmac_sha256"

    pbkdf2_rounds.clear()
    again = request_token(client, created.application.client_id, created.client_secret)
    wrong = request_token(client, created.application.client_id, "y" * 128)
    assert again.status_code == 200
    assert wrong.status_code == 401
    assert pbkdf2_rounds == []


def test_user_passwords_keep_pbkdf2_and_the_fast_hasher_refuses_short_secrets():
    user = get_user_model().objects.create_user(username="pat", password="correct horse")
    assert identify_hasher(user.password).algorithm == "pbkdf2_sha256"
    with pytest.raises(ValueError, match="at least 32"):
        make_password("correct horse", hasher="client_secret_hmac_sha256")


def test_token_requests_over_the_per_client_limit_get_429_in_oauths_error_format(client, settings):
    created = client_create(name="integration", scopes=[CONSUMER])
    client_id = created.application.client_id
    limit = settings.NOTIFYHUB_TOKEN_RATE_PER_CLIENT
    answers = [
        request_token(client, client_id, "z" * 128, unique_address()).status_code
        for _ in range(limit)
    ]
    assert answers == [401] * limit

    # Another address, the right secret: the client id has spent its window.
    refused = request_token(client, client_id, created.client_secret, unique_address())

    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/json"
    assert 1 <= int(refused["Retry-After"]) <= settings.NOTIFYHUB_TOKEN_RATE_WINDOW
    body = refused.json()
    assert body["error"] == "slow_down"
    assert set(body) == {"error", "error_description"}


def test_token_requests_over_the_per_address_limit_get_429_whatever_client_they_name(
    client, settings
):
    address = unique_address()
    limit = settings.NOTIFYHUB_TOKEN_RATE_PER_ADDRESS
    answers = {
        request_token(client, f"unknown-{n}", "z" * 128, address).status_code for n in range(limit)
    }
    assert answers == {401}

    created = client_create(name="integration", scopes=[CONSUMER])
    refused = request_token(client, created.application.client_id, created.client_secret, address)
    assert refused.status_code == 429
    assert refused.json()["error"] == "slow_down"
    elsewhere = request_token(
        client, created.application.client_id, created.client_secret, unique_address()
    )
    assert elsewhere.status_code == 200
