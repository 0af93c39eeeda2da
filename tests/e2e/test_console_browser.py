"""A real browser against a production-like web process (DEBUG off, static files collected by
`manage.py collectstatic`, served by daphne itself): the landing page, the admin's styling and
the API docs render, and no page asks anything of a host other than the hub."""

import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests import servers
from tests.e2e.test_streams_browser import BROWSER_ARGS, CHROMIUM

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium: apt-get install -y chromium"
    ),
]

LOOPBACK = {"127.0.0.1", "localhost", "[::1]"}


@pytest.fixture(scope="module")
def web(django_db_setup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Process]:
    """daphne with DEBUG off, serving what `collectstatic` put in a var directory of its own."""
    var_dir = tmp_path_factory.mktemp("var")
    env = {"NOTIFYHUB_VAR_DIR": str(var_dir), "DEBUG": "0"}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=servers.ROOT,
        env=servers.process_env(**env),
        check=True,
        timeout=300,
    )
    assert (var_dir / "static" / "admin" / "css" / "base.css").exists()
    process = servers.start_daphne(var_dir / "logs", **env)
    yield process
    process.stop()


@pytest.fixture
def browser_page(web: servers.Process) -> Iterator[tuple[object, list[str]]]:
    """A Chromium page, and every URL it requested (a request off loopback is aborted)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs pip install playwright")
    requested: list[str] = []

    def only_loopback(route, request) -> None:  # type: ignore[no-untyped-def]
        requested.append(request.url)
        if urlsplit(request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            route.abort()

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_loopback)
            yield page, requested
        finally:
            browser.close()


def off_loopback(requested: list[str]) -> list[str]:
    return [url for url in requested if urlsplit(url).hostname not in LOOPBACK]


def stylesheets(page, url: str) -> list[tuple[str, int, str]]:  # type: ignore[no-untyped-def]
    """Load `url` and answer each stylesheet the page fetched: its URL, status and type."""
    answered = []
    page.on(
        "response",
        lambda response: (
            answered.append(response) if response.request.resource_type == "stylesheet" else None
        ),
    )
    page.goto(url, wait_until="load")
    return [
        (response.url, response.status, response.headers.get("content-type", ""))
        for response in answered
    ]


def test_the_landing_page_is_styled_and_links_what_an_operator_needs(web, browser_page):
    page, requested = browser_page
    sheets = stylesheets(page, f"{web.url}/")
    assert [(url, status) for url, status, _ in sheets] == [
        (f"{web.url}/static/notifyhub/hub.css", 200)
    ]
    assert sheets[0][2].startswith("text/css")
    # hub.css colours the heading with the admin's blue; unstyled it would be black.
    color = page.eval_on_selector("h1", "h => getComputedStyle(h).color")
    assert color == "rgb(65, 118, 144)"

    hrefs = {
        link: page.get_attribute(f"#link-{link}", "href")
        for link in ("console", "docs", "redoc", "schema", "healthz", "readyz")
    }
    assert hrefs == {
        "console": "/admin/",
        "docs": "/api/docs/",
        "redoc": "/api/redoc/",
        "schema": "/api/schema/",
        "healthz": "/healthz",
        "readyz": "/readyz",
    }
    for link, href in hrefs.items():
        answer = page.request.get(f"{web.url}{href}")
        # No worker runs here: /readyz is still ready (database and Redis answer).
        assert answer.status == 200, (link, answer.status)
    assert page.request.get(f"{web.url}/readyz").json()["checks"]["database"]["status"] == "ok"

    page.click("#link-console")
    page.wait_for_url("**/admin/login/?next=/admin/")
    assert page.title().startswith("Log in")
    assert off_loopback(requested) == []


def test_the_admin_login_page_loads_its_stylesheets(web, browser_page):
    page, requested = browser_page
    sheets = stylesheets(page, f"{web.url}/admin/login/")
    assert sheets, "the login page links no stylesheet"
    for url, status, content_type in sheets:
        assert status == 200, url
        assert content_type.startswith("text/css"), url
    # The admin's base.css gives the header a background; unstyled it is transparent.
    header = page.eval_on_selector("#header", "h => getComputedStyle(h).backgroundColor")
    assert header not in ("rgba(0, 0, 0, 0)", "transparent")
    assert off_loopback(requested) == []

    # collectstatic wrote a compressed copy, and it is what a browser that accepts it gets.
    css = httpx.get(f"{web.url}/static/admin/css/base.css", headers={"Accept-Encoding": "gzip"})
    assert css.status_code == 200
    assert css.headers["content-encoding"] == "gzip"


def test_the_api_docs_render_every_operation_offline(web, browser_page):
    page, requested = browser_page
    page.goto(f"{web.url}/api/docs/")
    page.wait_for_selector(".opblock", timeout=30_000)
    operations = page.locator(".opblock").count()
    schema = httpx.get(f"{web.url}/api/schema/", headers={"Accept": "application/json"}).json()
    expected = sum(
        1
        for item in schema["paths"].values()
        for method in item
        if method in {"get", "put", "post", "delete", "patch"}
    )
    assert operations == expected
    assert any(url.endswith("swagger-ui-bundle.js") for url in requested)
    assert off_loopback(requested) == []


def test_redoc_renders_the_schema_offline(web, browser_page):
    page, requested = browser_page
    page.goto(f"{web.url}/api/redoc/")
    page.wait_for_selector("[data-section-id]", timeout=30_000)
    assert off_loopback(requested) == []
