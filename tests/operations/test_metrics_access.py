"""/metrics answers only the networks it allows, with the token when one is set, and refuses in
the platform's JSON error body."""

import pytest


@pytest.mark.django_db
def test_metrics_are_served_to_loopback_by_default(client):
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert b"# TYPE notifyhub_ingest_seconds histogram" in response.content


@pytest.mark.django_db
def test_metrics_are_refused_outside_the_allow_list(client):
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 403
    assert response.json()["code"] == "NOT000012"


@pytest.mark.django_db
def test_an_allowed_network_opens_metrics_to_it(client, settings):
    settings.NOTIFYHUB_METRICS_ALLOW = ["203.0.113.0/24"]
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "metrics-secret"])
def test_metrics_without_the_token_are_refused_when_one_is_set(client, settings, authorization):
    settings.NOTIFYHUB_METRICS_TOKEN = "metrics-secret"
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **headers)
    assert response.status_code == 401
    assert response.json()["code"] == "NOT000001"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_the_token_opens_metrics_from_anywhere_when_the_allow_list_is_empty(client, settings):
    settings.NOTIFYHUB_METRICS_TOKEN = "metrics-secret"
    settings.NOTIFYHUB_METRICS_ALLOW = []
    response = client.get(
        "/metrics", REMOTE_ADDR="198.51.100.7", HTTP_AUTHORIZATION="Bearer metrics-secret"
    )
    assert response.status_code == 200


def test_metrics_take_no_other_method(client):
    response = client.post("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 405
    assert response.json()["code"] == "NOT000004"
