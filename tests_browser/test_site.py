"""The comparison page driven as a person would, in real Chromium, offline.

Expected numbers come from kvcalc in this (Python) process; the page shows exact bytes in each byte
cell's data-bytes and in the charts' data (GiB = bytes / 2^30, exact in a double).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.request
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Page, Route, expect

import build
import kvcalc

if TYPE_CHECKING:
    from tests_browser.conftest import BrowserLog

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
READY_MS = 60_000
GIB = 1 << 30
HOSTILE = "<img src=x onerror=alert(1)>"
MISTRAL = "mistralai/Mistral-7B-v0.1"
LLAMA8 = "meta-llama/Llama-3.1-8B"
DOCS = Path(build.ROOT) / "docs"
BAR = "document.getElementById('bar-chart')"


# ------------------------------------------------------------------ helpers


ENTRIES = {e["id"]: e for e in build.model_entries()}
DEFAULTS = build.default_ids(list(ENTRIES.values()))


def model(model_id: str) -> kvcalc.Model:
    entry = ENTRIES[model_id]
    return kvcalc.load_model(entry["config"], name=entry["name"])


def expected_cache(model_id: str, seq: int, dtype: str, **kw: Any) -> int:
    return kvcalc.kv_cache_bytes(model(model_id), seq, kv_dtype=dtype, **kw)


def wait_live(page: Page) -> None:
    """Pyodide ready and the page showing numbers it computed (not the build-time ones)."""
    app = page.locator("#app")
    expect(app).to_have_attribute("data-state", "ready", timeout=READY_MS)
    expect(app).to_have_attribute("data-source", "live", timeout=READY_MS)
    expect(app).to_have_attribute("data-busy", "false", timeout=READY_MS)


def settle(page: Page) -> None:
    """Wait until the last control change has been computed and drawn."""
    expect(page.locator("#app")).to_have_attribute("data-busy", "false", timeout=READY_MS)


def table_bytes(page: Page, column: str) -> dict[str, int]:
    """{model id: exact bytes} of one byte column (e.g. "cache:bf16")."""
    cells = page.eval_on_selector_all(
        f"#table tbody td[data-col='{column}']",
        "cells => cells.map(c => [c.closest('tr').dataset.id, c.dataset.bytes])",
    )
    return {i: int(b) for i, b in cells}


def bars(page: Page) -> dict[str, list[float]]:
    """{trace name (dtype): GiB values} of the bar chart, in bar order."""
    js = "() => Object.fromEntries(BAR().data.filter(t => t.type === 'bar').map(t => [t.name, t.x]))"
    return page.evaluate(js.replace("BAR()", BAR))


def bar_names(page: Page) -> list[str]:
    return page.evaluate(f"() => {BAR}.data[0].y")


def line(page: Page, model_id: str, dash: str = "solid") -> tuple[list[int], list[float]]:
    return page.evaluate(
        """([id, dash]) => {
            const chart = document.getElementById('line-chart');
            const t = chart.data.find(t => t.meta === id && t.line.dash === dash);
            return [t.x, t.y];
        }""",
        [model_id, dash],
    )


def config_text(model_id: str, **changes: Any) -> str:
    cfg = dict(ENTRIES[model_id]["config"])
    for key, value in changes.items():
        if value is ...:
            cfg.pop(key, None)
        else:
            cfg[key] = value
    return json.dumps(cfg, indent=1)


def paste(page: Page, text: str, name: str = "") -> None:
    page.fill("#paste", text)
    page.fill("#paste-name", name)
    page.click("#paste-form button[type=submit]")


def no_dialogs(page: Page) -> list[str]:
    seen: list[str] = []
    page.on("dialog", lambda d: (seen.append(d.message), d.dismiss()))
    return seen


# ------------------------------------------------------------------ tests


def test_defaults_before_and_after_ready_match_python(page: Page, browser_log: BrowserLog) -> None:
    page.goto("/")
    app = page.locator("#app")
    expect(app).to_have_attribute("data-source", "precomputed")
    want = {d: {i: expected_cache(i, 131072, d) for i in DEFAULTS} for d in ("bf16", "fp8")}
    assert len(DEFAULTS) == 12
    if app.get_attribute("data-state") == "loading":  # usually: Pyodide takes seconds
        assert table_bytes(page, "cache:bf16") == want["bf16"]
    precomputed = {d: table_bytes(page, f"cache:{d}") for d in ("bf16", "fp8")}
    before_bars = bars(page)
    assert precomputed == want
    wait_live(page)
    assert {d: table_bytes(page, f"cache:{d}") for d in ("bf16", "fp8")} == want
    assert bars(page) == before_bars
    rows = page.eval_on_selector_all("#table tbody tr", "rows => rows.map(r => r.dataset.id)")
    names = {ENTRIES[i]["name"]: i for i in DEFAULTS}
    for dtype, values in bars(page).items():
        d = dtype.lower()
        assert [round(v * GIB) for v in values] == [want[d][names[n]] for n in bar_names(page)]
    assert sorted(rows) == sorted(DEFAULTS)
    bpt = page.eval_on_selector_all(
        "#table tbody td[data-col='token_bytes']",
        "cs => cs.map(c => [c.closest('tr').dataset.id, +c.dataset.value])",
    )
    for model_id, value in bpt:
        m = model(model_id)
        assert value == kvcalc.kv_cache_bytes(m, 2) - kvcalc.kv_cache_bytes(m, 1)
    insights = page.locator("#insights li")
    expect(insights.first).to_be_visible()
    assert "DeepSeek-V3" in page.locator("#insights").inner_text()
    outside = [u for u in browser_log.requests if not u.startswith(browser_log.origin + "/")]
    assert outside == []


def test_fp8_toggle_halves_full_attention_bars(page: Page) -> None:
    page.goto("/")
    wait_live(page)
    page.uncheck("#dt-fp8")
    settle(page)
    bf16 = dict(zip(bar_names(page), bars(page)["BF16"], strict=True))
    assert set(bars(page)) == {"BF16"}
    page.check("#dt-fp8")
    page.uncheck("#dt-bf16")
    settle(page)
    assert set(bars(page)) == {"FP8"}
    fp8 = dict(zip(bar_names(page), bars(page)["FP8"], strict=True))
    full = [ENTRIES[i]["name"] for i in DEFAULTS if set(model(i).kinds()) == {"full"}]
    assert len(full) >= 5
    for name in full:
        assert fp8[name] * 2 == bf16[name], name
    expect(page.locator("#dt-bf16")).not_to_be_checked()
    page.click("#dt-fp8")  # the last dtype cannot be switched off
    expect(page.locator("#dt-fp8")).to_be_checked()


def test_context_change_updates_table(page: Page) -> None:
    page.goto("/")
    wait_live(page)
    page.fill("#ctx-text", "32k")
    settle(page)
    expect(page.locator("#ctx-help")).to_contain_text("32,768 tokens")
    assert table_bytes(page, "cache:bf16") == {i: expected_cache(i, 32768, "bf16") for i in DEFAULTS}
    expect(page.locator("#table thead")).to_contain_text("@ 32K")
    page.fill("#ctx-text", "1M")
    settle(page)
    assert table_bytes(page, "cache:fp8")[LLAMA8] == expected_cache(LLAMA8, 1 << 20, "fp8")
    page.fill("#ctx-text", "lots")
    expect(page.locator("#ctx-help")).to_contain_text("Not a context length")
    page.focus("#ctx-range")
    page.keyboard.press("ArrowLeft")
    settle(page)
    assert page.input_value("#ctx-text") == "768K"
    assert table_bytes(page, "cache:bf16")[LLAMA8] == expected_cache(LLAMA8, 768 * 1024, "bf16")
    page.fill("#batch", "4")
    page.select_option("#engine", "vllm")
    page.select_option("#tp", "2")
    settle(page)
    got = table_bytes(page, "cache:bf16")
    assert got[LLAMA8] == expected_cache(
        LLAMA8, 768 * 1024, "bf16", batch_size=4, engine="vllm", tensor_parallel_size=2
    )


def test_mistral_flattens_past_4096(page: Page) -> None:
    page.goto("/")
    wait_live(page)
    xs, ys = line(page, MISTRAL)
    at = dict(zip(xs, (round(y * GIB) for y in ys), strict=True))
    plateau = expected_cache(MISTRAL, 4096, "bf16")
    assert at[4096] == plateau and at[4095] < plateau
    assert {v for x, v in at.items() if x >= 4096} == {plateau}
    assert max(xs) == 32768
    assert "Mistral-7B-v0.1 stops growing at 4,096 tokens" in page.locator("#insights").inner_text()


def test_paste_config_adds_row_and_errors_name_the_field(page: Page) -> None:
    page.goto("/")
    wait_live(page)
    paste(page, "{ this is not json")
    expect(page.locator("#paste-error")).to_contain_text("config: not valid JSON")
    paste(page, config_text(LLAMA8, num_hidden_layers=...))
    expect(page.locator("#paste-error")).to_contain_text("num_hidden_layers: required field missing")
    expect(page.locator("#paste")).to_have_attribute("aria-invalid", "true")
    paste(page, config_text(LLAMA8, num_hidden_layers=16), "Half Llama")
    expect(page.locator("#paste-error")).to_be_empty()
    settle(page)
    row = page.locator("#table tbody tr", has_text="Half Llama")
    expect(row).to_have_count(1)
    custom_id = row.get_attribute("data-id")
    half = kvcalc.load_model(json.loads(config_text(LLAMA8, num_hidden_layers=16)))
    want = kvcalc.kv_cache_bytes(half, 131072)
    assert table_bytes(page, "cache:bf16")[custom_id] == want == expected_cache(LLAMA8, 131072, "bf16") // 2
    expect(page.locator("#chips")).to_contain_text("Half Llama")
    page.wait_for_function("() => location.hash.includes('c=')")


def test_measured_exact_badge_and_validation_link(page: Page, site_server: str) -> None:
    validation = json.loads((DOCS / "validation.json").read_text())
    assert validation["models"][LLAMA8]["exact"]
    page.goto("/")
    wait_live(page)
    badge = page.locator(f"#table tbody tr[data-id='{LLAMA8}'] th .badge.exact")
    expect(badge).to_have_text("✔ measured exact")
    title = badge.get_attribute("title") or ""
    assert f"transformers {validation['transformers']}" in title
    assert "1, 300 and 5000 tokens in bf16 and fp32" in title
    expect(page.locator("#table tbody .badge.exact")).to_have_count(len(DEFAULTS))
    badge.focus()  # reachable without hover: focused, it says what was measured
    assert "match transformers" in badge.evaluate("b => getComputedStyle(b, '::after').content")
    page.select_option("#engine", "vllm")  # the validation measured transformers' cache, not vLLM's
    settle(page)
    expect(page.locator("#table tbody .badge.exact")).to_have_count(0)
    page.select_option("#engine", "ideal")
    settle(page)
    paste(page, config_text(LLAMA8), "Pasted Llama")
    settle(page)
    row = page.locator("#table tbody tr", has_text="Pasted Llama")
    expect(row).to_have_count(1)
    expect(row.locator(".badge.exact")).to_have_count(0)
    link = page.locator("#validation-link")
    expect(link).to_have_text("validation table")
    href = link.evaluate("a => a.href")
    assert href == f"{site_server}/validation.html"
    with urllib.request.urlopen(href) as response:
        assert response.status == 200
        assert "measured exact" in response.read().decode()


def _hf_route(status: int | None, body: str = "") -> Any:
    def handle(route: Route) -> None:
        if status is None:
            route.abort("internetdisconnected")
        else:
            route.fulfill(status=status, body=body, headers={"access-control-allow-origin": "*"})

    return handle


@pytest.mark.console_errors_expected  # Chromium logs each failed fetch; only those are allowed below
def test_hf_fetch_mocked(page: Page, browser_log: BrowserLog) -> None:
    page.goto("/")
    wait_live(page)
    hf = "https://huggingface.co/**"
    error = page.locator("#hf-error")
    cases = [
        (404, "Not found: huggingface.co has no config.json for “acme/missing”"),
        (401, "“acme/missing” is gated or private (HTTP 401)"),
        (403, "is gated or private (HTTP 403)"),
        (None, "Could not reach huggingface.co"),
    ]
    for status, message in cases:
        page.route(hf, _hf_route(status, "Entry not found"))
        page.fill("#hf-id", "acme/missing")
        page.click("#hf-fetch")
        expect(error).to_contain_text(message)
        page.unroute(hf)
    page.fill("#hf-id", "not an id")
    page.click("#hf-fetch")
    expect(error).to_contain_text("expected owner/model")
    page.route(hf, _hf_route(200, config_text(LLAMA8)))
    page.fill("#hf-id", "acme/Llama-copy")
    page.click("#hf-fetch")
    settle(page)
    row = page.locator("#table tbody tr", has_text="acme/Llama-copy")
    expect(row).to_have_count(1)
    expect(error).to_be_empty()
    got = table_bytes(page, "cache:bf16")[row.get_attribute("data-id")]
    assert got == expected_cache(LLAMA8, 131072, "bf16")
    unexpected = [e for e in browser_log.errors if "https://huggingface.co/acme/missing/" not in e]
    assert unexpected == []
    fetched = [u for u in browser_log.requests if u.startswith("https://huggingface.co/")]
    assert fetched and set(fetched) == {
        "https://huggingface.co/acme/missing/resolve/main/config.json",
        "https://huggingface.co/acme/Llama-copy/resolve/main/config.json",
    }


def test_url_round_trip(page: Page) -> None:
    page.goto("/")
    wait_live(page)
    page.locator("#chips li", has_text="GLM-5").get_by_role("button").click()
    page.fill("#ctx-text", "48k")
    page.fill("#batch", "3")
    page.select_option("#engine", "vllm")
    page.select_option("#tp", "4")
    page.select_option("#gpu", "h200")
    page.uncheck("#dt-bf16")
    paste(page, config_text(LLAMA8, num_key_value_heads=4), "Llama kv4")
    settle(page)
    expect(page.locator("#table tbody tr", has_text="Llama kv4")).to_have_count(1)
    page.wait_for_function("() => location.hash.includes('c=')")
    url = page.url
    shown = {col: table_bytes(page, col) for col in ("cache:fp8", "total:fp8")}
    assert "GLM-5" not in page.locator("#table").inner_text()

    other = page.context.new_page()
    other.goto(url)
    wait_live(other)
    assert other.input_value("#ctx-text") == "48K" and other.input_value("#batch") == "3"
    assert other.input_value("#engine") == "vllm" and other.input_value("#tp") == "4"
    assert other.input_value("#gpu") == "h200"
    assert not other.is_checked("#dt-bf16") and other.is_checked("#dt-fp8")
    assert {col: table_bytes(other, col) for col in ("cache:fp8", "total:fp8")} == shown
    expect(other.locator("#notice")).to_be_hidden()
    other.close()


def test_hostile_hash_is_ignored_field_by_field(page: Page) -> None:
    dialogs = no_dialogs(page)
    bad = (
        f"#m=<script>x</script>,{LLAMA8}&ctx=abc&b=-1&e=vllm&tp=3"
        f"&gpu={HOSTILE}&dt=fp8,bogus&zz=1&c=!!notbase64"
    )
    page.goto("/" + bad)
    wait_live(page)
    notice = page.locator("#notice")
    expect(notice).to_be_visible()
    for field in ("ctx (", "b (", "tp (", "gpu (", "dt (", "c (", "“zz”", "m (unknown model"):
        expect(notice).to_contain_text(field)
    expect(notice).to_contain_text(HOSTILE)
    assert page.input_value("#engine") == "vllm"
    assert page.eval_on_selector_all("#table tbody tr", "rs => rs.map(r => r.dataset.id)") == [LLAMA8]
    assert page.input_value("#ctx-text") == "128K"
    assert page.locator("img").count() == 0 and dialogs == []


def custom_blob(models: list[dict[str, str]]) -> str:
    """The hash's `c` field: deflate-raw compressed JSON, base64url (as site/state.js writes it)."""
    packer = zlib.compressobj(wbits=-15)
    raw = packer.compress(json.dumps(models).encode()) + packer.flush()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_one_bad_custom_model_does_not_blank_the_others(page: Page) -> None:
    blob = custom_blob(
        [
            {"id": "custom-1", "name": "Broken", "text": config_text(LLAMA8, num_hidden_layers=...)},
            {"id": "custom-2", "name": "Fine", "text": config_text(LLAMA8)},
        ]
    )
    page.goto(f"/#m=custom-1,custom-2,{MISTRAL}&c={blob}")
    wait_live(page)
    error = page.locator("#model-errors li[data-id='custom-1']")
    expect(error).to_contain_text("Broken: num_hidden_layers: required field missing")
    rows = page.eval_on_selector_all("#table tbody tr", "rs => rs.map(r => r.dataset.id)")
    assert sorted(rows) == sorted(["custom-2", MISTRAL])
    assert table_bytes(page, "cache:bf16")["custom-2"] == expected_cache(LLAMA8, 131072, "bf16")
    assert len(bars(page)["BF16"]) == 2


def test_hostile_model_name_is_shown_as_text(page: Page) -> None:
    dialogs = no_dialogs(page)
    page.goto("/")
    wait_live(page)
    paste(page, config_text(LLAMA8), HOSTILE)
    settle(page)
    cell = page.locator("#table tbody th .model-name", has_text=HOSTILE)
    expect(cell).to_have_text(HOSTILE)
    expect(page.locator("#chips")).to_contain_text(HOSTILE)
    expect(page.locator("#line-legend")).to_contain_text(HOSTILE)
    ticks = page.eval_on_selector_all("#bar-chart .ytick text", "ts => ts.map(t => t.textContent)")
    assert HOSTILE in ticks
    assert page.locator("img").count() == 0 and dialogs == []
    bad = {**json.loads(config_text(LLAMA8)), "num_hidden_layers": HOSTILE}
    paste(page, json.dumps(bad))
    message = f"num_hidden_layers: expected an integer, got '{HOSTILE}'"
    expect(page.locator("#paste-error")).to_contain_text(message)
    assert page.locator("img").count() == 0 and dialogs == []


@pytest.mark.console_errors_expected
def test_blocked_worker_keeps_precomputed_charts(page: Page) -> None:
    page.route(re.compile(r".*/worker\.js$"), lambda route: route.abort("blockedbyclient"))
    page.goto("/")
    app = page.locator("#app")
    expect(app).to_have_attribute("data-state", "error", timeout=READY_MS)
    expect(page.locator("#status")).to_contain_text("Could not start the calculator")
    expect(page.locator("#status")).to_contain_text("computed when the site was built")
    expect(app).to_have_attribute("data-source", "precomputed")
    assert table_bytes(page, "cache:bf16") == {i: expected_cache(i, 131072, "bf16") for i in DEFAULTS}
    assert set(bars(page)) == {"BF16", "FP8"}
    page.locator("#chips li", has_text="GLM-5").get_by_role("button").click()  # a subset still redraws
    expect(page.locator("#table tbody tr")).to_have_count(11)
    page.fill("#ctx-text", "64k")
    expect(page.locator("#notice")).to_contain_text("could not start")
    page.click("#table thead button[data-sort='name']")
    expect(page.locator("#table thead th[aria-sort='ascending']")).to_have_text("Model")


def test_picker_search_sort_and_csv(page: Page) -> None:
    page.goto("/")
    wait_live(page)
    page.click("#picker summary")
    page.fill("#model-search", "qwen3-8")
    visible = page.locator("#model-groups label:visible")
    expect(visible).to_have_count(1)
    visible.locator("input").check()
    settle(page)
    expect(page.locator("#table tbody tr[data-id='Qwen/Qwen3-8B']")).to_have_count(1)
    page.click("#table thead button[data-sort='name']")
    names = page.eval_on_selector_all("#table tbody .model-name", "ns => ns.map(n => n.textContent)")
    assert names == sorted(names, key=str.lower) or names == sorted(names)
    sorted_by = page.locator("#table thead th[aria-sort='ascending'] button")
    expect(sorted_by).to_have_attribute("data-sort", "name")
    with page.expect_download() as info:
        page.click("#csv")
    raw = Path(info.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte-order mark, for spreadsheet apps
    text = raw.decode("utf-8-sig")
    header, *lines = text.strip().splitlines()
    assert header.startswith("id,model,attention") and len(lines) == 13
    cols = header.split(",")
    llama = next(line.split(",") for line in lines if line.startswith(LLAMA8))
    assert int(llama[cols.index("cache_bytes_bf16")]) == expected_cache(LLAMA8, 131072, "bf16")
    assert llama[cols.index("gpu")] == "h100" and llama[cols.index("engine")] == "ideal"
    names = page.eval_on_selector_all("#table tbody tr", "rs => rs.map(r => r.dataset.id)")
    assert [line.split(",")[0] for line in lines] == names  # the table's sort order


def test_narrow_screen_and_dark_theme(page: Page) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.emulate_media(color_scheme="dark")
    page.goto("/")
    wait_live(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg == "rgb(15, 17, 21)"
    page.click("#theme")
    page.click("#theme")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    for control in ("#ctx-text", "#batch", "#engine", "#tp", "#gpu", "#dt-bf16", "#paste", "#hf-id"):
        label = page.evaluate(
            "(sel) => { const el = document.querySelector(sel); return (el.labels && el.labels.length) ? "
            "el.labels[0].textContent : el.getAttribute('aria-label'); }",
            control,
        )
        assert label and label.strip(), control


def test_screenshot_for_readme(page: Page) -> None:
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.emulate_media(color_scheme="light")
    page.goto("/")
    wait_live(page)
    page.wait_for_timeout(300)  # let Plotly finish its transitions
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "screenshot.png"), clip={"x": 0, "y": 0, "width": 1280, "height": 1000})
    assert (DOCS / "screenshot.png").stat().st_size > 20_000


@pytest.mark.browser_context_args(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
def test_phone_dark_screenshot_for_readme(page: Page) -> None:
    page.emulate_media(color_scheme="dark")
    page.goto("/")
    wait_live(page)
    page.wait_for_timeout(300)
    DOCS.mkdir(exist_ok=True)
    clip = {"x": 0, "y": 0, "width": 390, "height": 1600}
    page.screenshot(path=str(DOCS / "screenshot-phone-dark.png"), full_page=True, clip=clip)
    assert (DOCS / "screenshot-phone-dark.png").stat().st_size > 20_000


def test_dragging_the_context_slider_ends_on_its_last_value(page: Page) -> None:
    """300 input events, one per task as a drag fires them: the table and the link (written once
    the slider rests) end on the last position, and the link reopens there."""
    page.goto("/")
    wait_live(page)
    last = page.evaluate("""async () => {
      const range = document.getElementById("ctx-range");
      const stops = Number(range.max) + 1;
      for (let i = 0; i < 300; i++) {
        range.value = String((7 * i) % stops);
        range.dispatchEvent(new Event("input", { bubbles: true }));
        await new Promise((resolve) => setTimeout(resolve, 1));  // one event per task, as a drag
      }
      return range.value;
    }""")
    settle(page)
    page.wait_for_function("() => /ctx=\\d+/.test(location.hash)")
    ctx = int(page.evaluate("new URLSearchParams(location.hash.slice(1)).get('ctx')"))
    llama = "meta-llama/Llama-3.1-8B"
    assert table_bytes(page, "cache:bf16")[llama] == expected_cache(llama, ctx, "bf16")
    other = page.context.new_page()
    other.goto(page.url)
    wait_live(other)
    assert other.evaluate("document.getElementById('ctx-range').value") == last
    assert table_bytes(other, "cache:bf16")[llama] == expected_cache(llama, ctx, "bf16")
