"""API plumbing: the error body on every API path, request ids, never an HTML page or a 500."""

import pytest
from django.test import Client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.platform.urls")]


@pytest.fixture(params=[False, True], ids=["debug-off", "debug-on"])
def debug(request, settings) -> bool:
    """Both modes: `make run` runs with DEBUG on, where Django renders HTML debug pages."""
    settings.DEBUG = request.param
    return request.param


# `/v2/` is the Kazoo device API's, which answers in its own envelope (tests/devices).
@pytest.mark.parametrize(
    "path", ["/api/nope", "/v1/nope", "/notification/v1/nope", "/o/nope", "/healthzz"]
)
@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_path_is_a_json_404(client, debug, path, method):
    response = getattr(client, method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "NOT000003", "description": "Not found."}


def test_an_api_path_missing_its_slash_is_a_json_404_not_a_redirect(debug):
    # APPEND_SLASH would redirect a GET (a POST cannot follow it; with DEBUG on Django raises).
    # CSRF checks on, as a real client meets them: the 404 needs no token.
    client = Client(enforce_csrf_checks=True)
    for response in (client.get("/o/token"), client.post("/o/token", {"grant_type": "x"})):
        assert response.status_code == 404
        assert response.json()["code"] == "NOT000003"


def test_a_csrf_failure_on_an_api_path_is_a_json_403(debug):
    # DOT's authorization page is a form view under /o/: a POST without the CSRF token.
    response = Client(enforce_csrf_checks=True).post("/o/authorize/", {"allow": "Authorize"})
    assert response.status_code == 403
    assert response.json() == {"code": "NOT000012", "description": "Not allowed."}


def test_a_csrf_failure_outside_the_api_stays_html(debug):
    response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "x"})
    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")


def test_unknown_page_outside_the_api_stays_html(client, debug):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_page_outside_the_api_keeps_its_slash_redirect(client, debug):
    response = client.get("/admin")
    assert response.status_code == 301
    assert response["Location"] == "/admin/"


def test_too_many_form_fields_are_a_json_400(client, debug):
    fields = {f"field{n}": "x" for n in range(1001)}  # DATA_UPLOAD_MAX_NUMBER_FIELDS is 1000
    response = client.post("/o/token/", fields)
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "NOT000007", "description": "Bad request."}


def test_wrong_method_is_a_json_405(administrator):
    response = administrator.api().delete("/api/probe/admin")
    assert response.status_code == 405
    assert response.json()["code"] == "NOT000004"


def test_wrong_media_type_is_a_json_415(administrator):
    response = administrator.api().post("/api/probe/admin", data="hello", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["code"] == "NOT000005"


def test_malformed_json_is_a_json_400(administrator):
    response = administrator.api().post(
        "/api/probe/admin", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "NOT000008"


def test_body_over_the_upload_limit_is_a_json_413(administrator, settings, debug):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = administrator.api().post(
        "/api/probe/admin", data='{"x": "' + "a" * 200 + '"}', content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["code"] == "NOT000006"


def test_a_bug_is_a_json_500_without_details(administrator, debug, caplog):
    api = administrator.api()
    api.raise_request_exception = False
    response = api.get("/api/probe/crash")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "NOT000010", "description": "Internal error."}
    # Logged once, with its traceback, as Django logs an uncaught exception.
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.levelname == "ERROR"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == "a bug"


def test_every_response_carries_a_request_id(client):
    response = client.get("/healthz")
    assert len(response["X-Request-ID"]) == 32


def test_a_plain_caller_request_id_is_echoed(client):
    response = client.get("/api/nope", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"


def test_a_forged_request_id_is_replaced(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad\nid")
    assert response["X-Request-ID"] != "bad\nid"
    assert len(response["X-Request-ID"]) == 32
