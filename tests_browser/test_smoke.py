"""Smoke tests of the built site in real Chromium: Pyodide starts, kvcalc loads, failures show."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, Route, expect

import kvcalc

if TYPE_CHECKING:
    from tests_browser.conftest import BrowserLog

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
READY_MS = 60_000  # cold Pyodide start is ~3.5 s; leave room for a loaded CI machine


def test_page_loads_kvcalc_in_pyodide(page: Page) -> None:
    page.goto("/")
    app = page.locator("#app")
    expect(app).to_have_attribute("data-state", "ready", timeout=READY_MS)
    expect(page.locator("#kvcalc-version")).to_have_text(kvcalc.__version__)
    assert page.evaluate("() => window.kvcalc.call({op: 'version'})") == {
        "ok": True,
        "version": kvcalc.__version__,
    }
    bad = page.evaluate("() => window.kvcalc.call({op: 'no-such-op'})")
    assert bad["ok"] is False and "op" in bad["error"]


@pytest.mark.console_errors_expected
def test_missing_wheel_shows_error(page: Page, browser_log: BrowserLog) -> None:
    page.route(re.compile(r".*/wheels/kvcalc-.*\.whl$"), lambda route: route.fulfill(status=404))
    page.goto("/")
    expect(page.locator("#app")).to_have_attribute("data-state", "error", timeout=READY_MS)
    status = page.locator("#status")
    expect(status).to_be_visible()
    expect(status).to_contain_text("kvcalc")
    assert browser_log.errors, "the failure should be reported on the console too"


@pytest.mark.console_errors_expected
def test_aborted_wasm_shows_error(page: Page) -> None:
    page.route("**/pyodide.asm.wasm", lambda route: route.abort("failed"))
    page.goto("/")
    expect(page.locator("#app")).to_have_attribute("data-state", "error", timeout=READY_MS)
    expect(page.locator("#status")).to_contain_text("Pyodide")


@pytest.mark.console_errors_expected
def test_hung_start_times_out_with_error(page: Page) -> None:
    """A .wasm with the wrong MIME type makes loadPyodide hang silently: the page must time out."""

    def wrong_mime(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, headers={**response.headers, "content-type": "text/plain"})

    page.add_init_script("globalThis.kvcalcLoadTimeoutMs = 3000;")
    page.route("**/pyodide.asm.wasm", wrong_mime)
    page.goto("/")
    expect(page.locator("#app")).to_have_attribute("data-state", "error", timeout=READY_MS)
    expect(page.locator("#status")).to_contain_text("timed out after 3 s")


def test_no_request_leaves_localhost(page: Page, browser_log: BrowserLog) -> None:
    page.goto("/")
    expect(page.locator("#app")).to_have_attribute("data-state", "ready", timeout=READY_MS)
    assert browser_log.requests, "requests should have been recorded"
    outside = [url for url in browser_log.requests if not url.startswith(browser_log.origin + "/")]
    assert outside == [] and browser_log.external == []
    served = {url.removeprefix(browser_log.origin) for url in browser_log.requests}
    assert "/pyodide/pyodide.asm.wasm" in served
    assert any(path.startswith("/wheels/kvcalc-") for path in served)


@pytest.mark.console_errors_expected
def test_missing_wasm_is_reported_at_once_with_its_cause(page: Page) -> None:
    """A 404 on Pyodide's wasm names the file and status as soon as it happens, not after the
    load timeout (set to a minute here, so only an immediate report passes)."""
    page.add_init_script("globalThis.kvcalcLoadTimeoutMs = 60000;")
    page.route("**/pyodide.asm.wasm", lambda route: route.fulfill(status=404, body="not here"))
    page.goto("/")
    expect(page.locator("#app")).to_have_attribute("data-state", "error", timeout=15_000)
    expect(page.locator("#status")).to_contain_text("could not download pyodide.asm.wasm (HTTP 404)")
