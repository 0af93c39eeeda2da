"""API plumbing: the error body on every API path, request ids, never an HTML page or a 500."""

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.platform.urls")]


@pytest.mark.parametrize("path", ["/api/nope", "/v1/nope", "/notification/v1/nope", "/o/nope"])
def test_unknown_api_path_is_a_json_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"code": "NOT000003", "description": "Not found."}


def test_unknown_page_outside_the_api_stays_html(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


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


def test_body_over_the_upload_limit_is_a_json_413(administrator, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = administrator.api().post(
        "/api/probe/admin", data='{"x": "' + "a" * 200 + '"}', content_type="application/json"
    )
    assert response.status_code == 413
    assert response.json()["code"] == "NOT000006"


def test_a_bug_is_a_json_500_without_details(administrator):
    api = administrator.api()
    api.raise_request_exception = False
    response = api.get("/api/probe/crash")
    assert response.status_code == 500
    assert response.json() == {"code": "NOT000010", "description": "Internal error."}


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
