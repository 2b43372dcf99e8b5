"""Browser-test harness: the built site on a local port, Chromium via pytest-playwright.

Every test that uses `page` is guarded: any request outside the local server is aborted and fails
the test, and so does any console error or uncaught page error (unless the test is marked
`console_errors_expected`, and then they are available as `browser_log.errors`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Error, Page, Request, Route

import build
from tools import devenv


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "console_errors_expected: the test expects console errors")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def site_dir() -> Path:
    """The built site: the one test.py built, else built here into _site/ (incremental)."""
    built = os.environ.get(build.SITE_DIR_ENV)
    return Path(built) if built else build.build_site(build.DEFAULT_OUT)


@pytest.fixture(scope="session")
def site_server(site_dir: Path) -> Iterator[str]:
    """Serve the site from a free localhost port in a thread; yields its origin."""
    server = build.make_server(site_dir, host="127.0.0.1", port=0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def base_url(site_server: str) -> str:
    """pytest-playwright's base_url: page.goto("/") opens the site."""
    return site_server + "/"


def launch_options(base: dict | None = None) -> dict:
    """Chromium launch options: Playwright's own browser when installed, else the system one with the
    flags it needs (also used by bench/site_bench.py, so both launch the same way)."""
    base = dict(base or {})
    choice = devenv.ensure_browser()
    if choice == devenv.PLAYWRIGHT:
        return base
    return {**base, "executable_path": choice, "args": list(devenv.CHROMIUM_ARGS)}


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """Playwright's own Chromium when installed, else the system one with the flags it needs."""
    return launch_options(browser_type_launch_args)


@dataclass
class BrowserLog:
    """What one test's page did: every request URL, blocked outside requests, console errors."""

    origin: str
    requests: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def on_route(self, route: Route) -> None:
        url = route.request.url
        if url.startswith(self.origin + "/"):
            route.fallback()
        else:
            self.external.append(url)
            route.abort("blockedbyclient")

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console.error: {message.text} ({message.location.get('url', '')})")

    def on_page_error(self, error: Error) -> None:
        self.errors.append(f"pageerror: {error.message}")


@pytest.fixture(autouse=True)
def browser_log(request: pytest.FixtureRequest, site_server: str) -> Iterator[BrowserLog]:
    """Guard every page test: block and fail outside requests; fail on console/page errors."""
    log = BrowserLog(origin=site_server)
    if "page" in request.fixturenames:
        page: Page = request.getfixturevalue("page")
        page.context.route("**/*", log.on_route)
        page.context.on("request", log.on_request)
        page.on("console", log.on_console)
        page.on("pageerror", log.on_page_error)
    yield log
    assert not log.external, f"requests outside {site_server} (blocked): {log.external}"
    if request.node.get_closest_marker("console_errors_expected") is None:
        assert not log.errors, "browser errors:\n" + "\n".join(log.errors)
