"""The hub as `make run` starts it: daphne and a Celery worker as real processes, over HTTP."""

import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection

from notifyhub.services import client_create
from tests import servers

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_client_gets_a_token_and_the_hub_is_ready(daphne, celery_worker):
    created = client_create(name="e2e", scopes=[settings.SCOPE_CONSUMER])
    basic = base64.b64encode(
        f"{created.application.client_id}:{created.client_secret}".encode()
    ).decode()
    token = httpx.post(
        f"{daphne.url}/o/token/",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == settings.SCOPE_CONSUMER

    ready = httpx.get(f"{daphne.url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "database": {"status": "ok", "detail": "ok"},
        "redis": {"status": "ok", "detail": "ok"},
    }


def test_readyz_stays_ready_and_names_the_worker_down_when_none_beats(log_dir):
    # A Redis database no worker beats in: the web tier can still take and queue events, so a
    # load balancer must keep it; the worker's absence is reported, not made an outage.
    lonely_redis = settings.REDIS_URL.rsplit("/", 1)[0] + "/15"
    process = servers.start_daphne(log_dir, REDIS_URL=lonely_redis)
    try:
        ready = httpx.get(f"{process.url}/readyz", timeout=10)
    finally:
        process.stop()
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "ok"
    assert body["detail"]["worker"] == {"status": "down", "detail": "down: no heartbeat seen"}


def test_api_errors_over_http_are_json(daphne):
    response = httpx.get(f"{daphne.url}/api/does-not-exist", timeout=10)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == "NOT000003"
    assert response.headers["x-request-id"]


def test_a_malformed_multipart_body_gets_the_api_error_body_not_twisted_html(daphne, producer):
    # Twisted parsed every POST form body itself before daphne passed it on, and answered a
    # multipart body it could not parse with its own HTML 400; daphne now leaves bodies to
    # Django, so the API answers in its error format (a 422 on this surface, whose contract
    # answers every refusal of its data so).
    response = httpx.post(
        f"{daphne.url}/v1/notifications",
        content=b'{"event": {"type": "chat", "payload": {}}}',  # no multipart at all
        headers={
            "Authorization": f"Bearer {producer.token}",
            "Api-Version": "3.0",
            "Content-Type": "multipart/form-data; boundary=x",
        },
        timeout=10,
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == "NOT000005"


def thread_ids(pid: int) -> set[str]:
    return {entry.name for entry in Path(f"/proc/{pid}/task").iterdir()}


def web_threads(pid: int) -> set[str]:
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return {task.name for task in tasks if (task / "comm").read_text().startswith("web-")}


def test_api_requests_reuse_the_web_threads_instead_of_starting_one_each(daphne, consumer):
    # Django's stock ASGI handler starts (and joins) a thread per request; the hub's runs
    # requests on NOTIFYHUB_WEB_THREADS long-lived threads, so after a warm-up no new thread
    # shows up, however often the process is looked at while requests run.
    headers = {"Authorization": f"Bearer {consumer.token}"}
    url = f"{daphne.url}/notification/v1/event-types"
    with httpx.Client(headers=headers, timeout=10) as client, ThreadPoolExecutor(8) as pool:
        # A web thread starts with the first request it gets, and sequential requests may all
        # go to the first one: warm up concurrently until every web thread is running.
        for _ in range(20):
            assert all(r.status_code == 200 for r in pool.map(lambda _: client.get(url), range(40)))
            if len(web_threads(daphne.popen.pid)) == settings.NOTIFYHUB_WEB_THREADS:
                break
        before = thread_ids(daphne.popen.pid)
        seen: set[str] = set()
        answers = [pool.submit(client.get, url) for _ in range(200)]
        while not all(answer.done() for answer in answers):
            seen |= thread_ids(daphne.popen.pid)
        assert all(answer.result().status_code == 200 for answer in answers)
    assert seen <= before, f"threads started by requests: {len(seen - before)}"


def other_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "select count(*) from pg_stat_activity"
            " where datname = current_database() and pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


@pytest.mark.postgres
def test_a_web_thread_keeps_its_connection_while_busy_and_closes_it_once_idle(log_dir, consumer):
    process = servers.start_daphne(log_dir, NOTIFYHUB_WEB_DB_IDLE="2")
    try:
        headers = {"Authorization": f"Bearer {consumer.token}"}
        url = f"{process.url}/notification/v1/event-types"  # Reads the database.
        with httpx.Client(headers=headers, timeout=10) as client:
            for _ in range(20):
                assert client.get(url).status_code == 200
            # Twenty requests on the web threads: a connection each at most, still open.
            assert 1 <= other_connections() <= settings.NOTIFYHUB_WEB_THREADS
        servers.wait_until(
            lambda: other_connections() == 0,
            timeout=15,
            what="the web threads closing their idle connections",
            process=process,
        )
    finally:
        process.stop()
