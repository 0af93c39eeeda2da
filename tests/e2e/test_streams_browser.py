"""A real browser (Debian's Chromium driven by Playwright) watches the admin's live events page
while an event is ingested."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connections

from tests.streams.support import (
    ingest,
    push_event_types,  # noqa: F401
    stream_bus_of_this_run,  # noqa: F401
)

CHROMIUM = Path("/usr/bin/chromium")

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
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page()
            page.goto(f"{daphne.url}/admin/login/?next=/admin/subscriptions/streamsession/live/")
            page.fill("#id_username", "op")
            page.fill("#id_password", "pw-operator")
            page.click("input[type=submit]")
            page.wait_for_url("**/admin/subscriptions/streamsession/live/")
            sync_api.expect(page.locator("#live-status")).to_have_text("connected")
            event_id = ingest_off_the_loop("newMessage", user_id="maria", text="seen in a browser")
            row = page.locator(f'tr.live-event[data-event-id="{event_id}"]')
            sync_api.expect(row).to_be_visible(timeout=15_000)
            sync_api.expect(row).to_contain_text("newMessage")
            sync_api.expect(row).to_contain_text("seen in a browser")
        finally:
            browser.close()
