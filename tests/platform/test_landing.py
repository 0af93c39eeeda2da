"""The page at `/` and the static files the web process serves itself."""

import logging

import pytest
from django.core.handlers.asgi import ASGIHandler

LINKS = ["/admin/", "/api/docs/", "/api/redoc/", "/api/schema/", "/healthz", "/readyz"]


def test_the_landing_page_links_the_console_the_docs_the_schema_and_the_probes(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    for link in LINKS:
        assert f'href="{link}"' in page
    assert 'href="/static/notifyhub/hub.css"' in page
    assert "http://" not in page
    assert "https://" not in page  # Nothing fetched from elsewhere.


def test_the_landing_page_only_answers_reads(client):
    assert client.post("/").status_code == 405


@pytest.mark.parametrize("path", ["/api/nothing-here", "/v1/nothing-here", "/notification/x"])
def test_api_paths_nothing_matched_are_still_the_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


@pytest.fixture
def static_from_the_apps(settings):
    """As with DEBUG on: files found in the apps as they are asked for (no collectstatic)."""
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True


def test_a_static_file_is_served_with_its_type_and_caching(client, static_from_the_apps):
    response = client.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert "Cache-Control" in response
    assert b"--header-bg" in response.content
    assert int(response["Content-Length"]) == len(response.content)


def test_a_head_or_a_range_of_a_static_file(client, static_from_the_apps):
    head = client.head("/static/notifyhub/hub.css")
    assert head.status_code == 200
    assert head.content == b""
    assert int(head["Content-Length"]) > 0

    part = client.get("/static/notifyhub/hub.css", HTTP_RANGE="bytes=0-9")
    assert part.status_code == 206
    assert len(part.content) == 10


def test_swagger_ui_and_redoc_are_served_from_the_hub(client, static_from_the_apps):
    docs = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in docs
    redoc = client.get("/api/redoc/").content.decode()
    assert "fonts.googleapis.com" not in redoc
    for path in (
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
        "/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js",
    ):
        assert client.get(path).status_code == 200, path


def test_the_streams_async_chain_runs_without_a_thread_for_static_files(caplog):
    """Django adapts a sync-only middleware in an async chain by running the rest of the chain,
    the stream view included, on a thread: the stream handler must need no adaptation."""
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        ASGIHandler()  # Loads the middleware as the stream handler does (is_async=True).
    adapted = [record.getMessage() for record in caplog.records if "adapted" in record.getMessage()]
    assert adapted == []
