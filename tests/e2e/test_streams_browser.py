"""A real browser (Debian's Chromium driven by Playwright): the admin's live events page while an
event is ingested, and a page's own EventSource, opened with a ticket, across a server restart."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from tests import servers
from tests.streams.support import (
    ingest,
    push_event_types,  # noqa: F401
    stream_bus_of_this_run,  # noqa: F401
)

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium: apt-get install -y chromium"
    ),
]


def ingest_off_the_loop(type_id: str, **payload: object) -> str:
    """Playwright's sync API runs an event loop on this thread, where Django refuses database
    calls: ingest from a thread of its own."""

    def run() -> str:
        try:
            return ingest(type_id, **payload)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=30)


def test_the_admin_live_page_shows_an_event_as_it_is_ingested(daphne):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs pip install playwright")
    get_user_model().objects.create_superuser("op", "op@example.com", "pw-operator")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{daphne.url}/admin/login/?next=/admin/streams/streamsession/live/")
            page.fill("#id_username", "op")
            page.fill("#id_password", "pw-operator")
            page.click("input[type=submit]")
            page.wait_for_url("**/admin/streams/streamsession/live/")
            sync_api.expect(page.locator("#live-status")).to_have_text("connected")
            event_id = ingest_off_the_loop("newMessage", user_id="maria", text="seen in a browser")
            row = page.locator(f'tr.live-event[data-event-id="{event_id}"]')
            sync_api.expect(row).to_be_visible(timeout=15_000)
            sync_api.expect(row).to_contain_text("newMessage")
            sync_api.expect(row).to_contain_text("seen in a browser")
        finally:
            browser.close()


def test_a_ticket_opened_event_source_survives_a_server_restart_missing_nothing(
    transactional_db, log_dir, member
):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs pip install playwright")
    # A short retry hint: the browser reconnects 0.2 s after losing the stream.
    env = {"NOTIFYHUB_STREAM_RETRY_MS": "200"}
    server = servers.start_daphne(log_dir, **env)
    try:
        ticket = httpx.post(
            f"{server.url}/api/push/tickets",
            headers={"Authorization": f"Bearer {member.token}"},
            timeout=10,
        ).json()["ticket"]
        query = urlencode({"clientId": "tab", "kinds": "newMessage", "ticket": ticket})
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
            try:
                page = browser.new_page()
                # Same origin as the stream (an EventSource across origins needs CORS).
                page.goto(f"{server.url}/healthz")
                # The page's only code: listen, and note what arrives. No reconnect logic.
                page.evaluate(
                    """url => {
                        window.received = [];
                        window.source = new EventSource(url);
                        window.source.addEventListener("newMessage", message => {
                            window.received.push([message.lastEventId, message.data]);
                        });
                    }""",
                    f"/api/push/subscribe?{query}",
                )
                page.wait_for_function("window.source.readyState === EventSource.OPEN")
                sent = [ingest_off_the_loop("newMessage", user_id="maria", n=n) for n in range(5)]
                page.wait_for_function("window.received.length === 5", timeout=15_000)

                server.stop()  # SIGTERM: the process holding the stream ends.
                sent += [
                    ingest_off_the_loop("newMessage", user_id="maria", n=n) for n in range(5, 10)
                ]
                server = servers.start_daphne(
                    log_dir, port=int(server.url.rsplit(":", 1)[1]), **env
                )
                sent += [
                    ingest_off_the_loop("newMessage", user_id="maria", n=n) for n in range(10, 15)
                ]
                page.wait_for_function("window.received.length >= 15", timeout=30_000)
                # Anything repeated would arrive right behind the rest.
                page.wait_for_timeout(500)
                received = page.evaluate("window.received")
                assert [event_id for event_id, _ in received] == sent
                assert [json.loads(body) for _, body in received] == [
                    {"user_id": "maria", "n": n} for n in range(15)
                ]
                # EventSource's own reconnect, with Last-Event-ID, on the same URL and ticket.
                assert page.evaluate("window.source.readyState") == 1
            finally:
                browser.close()
    finally:
        server.stop()
