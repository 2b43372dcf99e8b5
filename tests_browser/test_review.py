"""The first-time-user review of the page (issue 16): privacy, honest GPU marks, readable lines, the
chosen context on both charts, phones, and tensor-parallel sizes the engine refuses.

Each test failed on the page before the fix; expected numbers come from kvcalc in this process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Page, expect

import kvcalc
from kvcalc.deploy.gpus import get_gpu
from kvcalc.deploy.plan import plan
from tests_browser.test_site import DEFAULTS, ENTRIES, GIB, LLAMA8, bar_names, model, settle, wait_live

if TYPE_CHECKING:
    from tests_browser.conftest import BrowserLog

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
LLAMA70 = "meta-llama/Llama-3.1-70B"
QWEN7 = "Qwen/Qwen2.5-7B-Instruct"
DEEPSEEK, KIMI = "deepseek-ai/DeepSeek-V3", "moonshotai/Kimi-K2-Instruct"
CHARTS = ("bar-chart", "line-chart")


def chart(page: Page, name: str, expr: str) -> Any:
    return page.evaluate(f"() => {{ const c = document.getElementById('{name}'); return {expr}; }}")


def room_marks(page: Page) -> dict[str, tuple[float, str]]:
    """{bar label: (x in GiB, marker symbol)} of the bar chart's room-for-KV marks."""
    got = chart(
        page,
        "bar-chart",
        "c.data.filter(t => t.name === 'room for KV')"
        ".flatMap(t => t.y.map((y, i) => [y, t.x[i], t.marker.symbol[i]]))",
    )
    return {y: (x, sym) for y, x, sym in got}


def luminance(hex_colour: str) -> float:
    def lin(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


# ------------------------------------------------------------------ 1. privacy


def test_every_mode_bar_button_stays_on_this_site(page: Page, browser_log: BrowserLog) -> None:
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto("/")
    wait_live(page)
    for name in CHARTS:
        page.hover(f"#{name} .nsewdrag")
        buttons = page.locator(f"#{name} .modebar-btn")
        expect(buttons.first).to_be_attached()
        titles = buttons.evaluate_all("bs => bs.map(b => b.getAttribute('data-title'))")
        for i in range(buttons.count()):
            page.hover(f"#{name} .nsewdrag")
            if titles[i].lower().startswith("download"):
                with page.expect_download():
                    buttons.nth(i).click(force=True)
            else:
                buttons.nth(i).click(force=True)
        page.wait_for_timeout(500)  # a cloud upload would open a window or fetch by now
        assert titles and not [t for t in titles if "share" in t.lower() or "cloud" in t.lower()], titles
    assert len(page.context.pages) == 1
    outside = [u for u in browser_log.requests if not u.startswith(browser_log.origin + "/")]
    assert outside == [] and browser_log.external == []


# ------------------------------------------------------------------ 2. GPU marks from the plan


def test_room_for_kv_follows_the_engine_plan(page: Page) -> None:
    page.goto(f"/#m={LLAMA8},{LLAMA70}&gpu=h100&e=vllm&ctx=131072")
    wait_live(page)
    names = {ENTRIES[i]["name"]: i for i in (LLAMA8, LLAMA70)}
    marks = room_marks(page)
    assert set(marks) == set(names)
    small = plan(model(LLAMA8), gpu="h100", max_model_len=131072, kv_dtype="bf16")
    assert round(marks[ENTRIES[LLAMA8]["name"]][0] * GIB) == small.kv_budget_bytes
    assert marks[ENTRIES[LLAMA8]["name"]][1] == "line-ns"
    # Llama-3.1-70B: 131 GiB of weights on one H100 leave no room at all: an ✕ at 0, and "no".
    assert marks[ENTRIES[LLAMA70]["name"]] == (0, "x-thin")
    fits = page.eval_on_selector_all(
        "#table tbody td[data-col='fits']", "cs => cs.map(c => [c.closest('tr').dataset.id, c.dataset.fits])"
    )
    for model_id, text in fits:
        want = [
            plan(model(model_id), gpu="h100", max_model_len=131072, kv_dtype=d).fits for d in ("bf16", "fp8")
        ]
        assert text == {(True, True): "yes", (False, False): "no", (False, True): "FP8 only"}[tuple(want)]
    note = page.locator("#bar-note")
    expect(note).to_contain_text("vLLM: gpu_memory_utilization 0.92 × NVIDIA H100")
    expect(note).to_contain_text("activation peak")
    # The GPU's whole memory is no longer drawn beside the cache alone.
    assert chart(page, "bar-chart", "(c.layout.shapes || []).length") == 0
    page.select_option("#engine", "ideal")
    settle(page)
    expect(note).to_contain_text("ideal: NVIDIA H100")
    weights = page.locator(f"#table tbody tr[data-id='{LLAMA8}'] td[data-col='weights']").get_attribute(
        "data-bytes"
    )
    assert weights is not None
    room = get_gpu("h100").memory_bytes - int(weights)
    assert round(room_marks(page)[ENTRIES[LLAMA8]["name"]][0] * GIB) == room


# ------------------------------------------------------------------ 3. lines that hide each other


def test_lines_are_told_apart_past_sixteen_models(page: Page) -> None:
    ids = list(ENTRIES)[:24]
    assert len(ids) >= 20
    page.goto(f"/#m={','.join(ids)}&dt=bf16")
    wait_live(page)
    styles = page.evaluate(
        """() => document.getElementById('line-chart').data
            .map(t => [t.meta, t.line.color, (t.marker && t.marker.symbol) || null])"""
    )
    assert len(styles) == len(ids)
    assert len({(c, s) for _, c, s in styles}) == len(ids), "two models share a line style"
    for colour in {c for _, c, _ in styles}:
        assert contrast(colour, "#ffffff") >= 3, colour
        assert contrast(colour, "#171a21") >= 3, colour


def test_coinciding_lines_say_so_and_legend_hover_highlights(page: Page) -> None:
    page.goto("/")
    wait_live(page)
    kimi = page.locator(f"#line-legend button[data-id='{KIMI}']")
    expect(kimi).to_contain_text("same line as DeepSeek-V3")
    templates = page.evaluate(
        "() => document.getElementById('line-chart').data"
        f".filter(t => t.meta === '{DEEPSEEK}').map(t => t.hovertemplate)"
    )
    assert templates and all("same line as Kimi-K2-Instruct" in t for t in templates[:2])
    kimi.hover()
    opacity = page.evaluate(
        f"""() => document.getElementById('line-chart').data
            .map(t => [t.meta === '{KIMI}', t.opacity])"""
    )
    assert {o for mine, o in opacity if mine} == {1} and {o for mine, o in opacity if not mine} == {0.12}
    # Mistral-7B is past its 32K max at the default 128K: its dotted segment fades with its line
    faded = chart(page, "line-chart", "c.layout.shapes.filter(s => s.name).map(s => s.opacity)")
    assert faded and set(faded) == {0.12}
    page.mouse.move(0, 0)
    page.wait_for_function(
        "() => document.getElementById('line-chart').data"
        ".every(t => t.opacity === undefined || t.opacity >= 0.5)"
    )


# ------------------------------------------------------------------ 4. the chosen context


def test_chosen_context_and_past_max_on_both_charts(page: Page) -> None:
    page.goto(f"/#m={LLAMA8},{DEEPSEEK}&ctx=1048576")
    wait_live(page)
    shapes = chart(page, "line-chart", "c.layout.shapes.map(s => [s.x0, s.x1])")
    assert [1048576, 1048576] in shapes
    assert chart(page, "line-chart", "c.layout.xaxis.range[1]") >= 6.02  # log10(1M) inside the axis
    # past max: a dotted segment from the line's last point to the chosen context, and an ✕ there
    past = page.evaluate(
        """() => document.getElementById('line-chart').layout.shapes
            .filter(s => s.name)
            .map(s => [s.name, [s.x0, s.x1], [s.y0, s.y1], s.line.dash, s.xanchor ?? null])"""
    )
    m = model(LLAMA8)
    llama = [p for p in past if p[0] == LLAMA8 and p[4] is None]
    assert llama and llama[0][1] == [131072, 1048576] and llama[0][3] == "dot"
    assert round(llama[0][2][1] * GIB) == kvcalc.kv_cache_bytes(m, 1048576)
    assert len([p for p in past if p[0] == LLAMA8 and p[4] == 1048576]) == 2 * len(llama)  # ✕: two strokes
    assert {p[0] for p in past} == {LLAMA8, DEEPSEEK}  # DeepSeek-V3 ends at 160K
    assert page.locator("#line-chart .shapelayer path").count() >= 1 + 2 * 3  # drawn, not only listed
    patterns = dict(
        zip(
            bar_names(page),
            chart(page, "bar-chart", "c.data[0].marker.pattern.shape"),
            strict=True,
        )
    )
    assert set(patterns.values()) == {"/"}
    ticks = page.eval_on_selector_all("#bar-chart .ytick text", "ts => ts.map(t => t.textContent)")
    assert all(t.endswith("⚠") for t in ticks)
    # a model hidden from the legend keeps its past-max marks hidden when the context moves
    page.locator(f"#line-legend button[data-id='{LLAMA8}']").click()
    page.fill("#ctx-text", "2M")
    settle(page)
    shown = chart(
        page, "line-chart", "c.layout.shapes.filter(s => s.name).map(s => [s.name, s.visible, s.x1])"
    )
    assert {(n, v) for n, v, _ in shown} == {(LLAMA8, False), (DEEPSEEK, True)}
    assert 2097152 in {x for n, _, x in shown if n == DEEPSEEK}
    page.fill("#ctx-text", "64k")
    settle(page)
    assert [65536, 65536] in chart(page, "line-chart", "c.layout.shapes.map(s => [s.x0, s.x1])")
    assert chart(page, "line-chart", "c.layout.shapes.filter(s => s.name).length") == 0
    assert set(chart(page, "bar-chart", "c.data[0].marker.pattern.shape")) == {""}


# ------------------------------------------------------------------ 5. phones


@pytest.mark.browser_context_args(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
def test_phone_scrolls_instead_of_zooming(page: Page) -> None:
    page.goto("/")
    wait_live(page)
    for name in CHARTS:
        assert chart(page, name, "c.layout.dragmode") is False
        assert chart(page, name, "[c.layout.xaxis.fixedrange, c.layout.yaxis.fixedrange]") == [True, True]
        expect(page.locator(f"#{name} .modebar-btn")).to_have_count(0)
    toggle = page.locator("#chips-toggle")
    expect(toggle).to_have_text(f"{len(DEFAULTS)} models selected")
    expect(page.locator("#chips")).to_be_hidden()
    toggle.tap()
    expect(page.locator("#chips")).to_be_visible()
    position = page.evaluate("getComputedStyle(document.querySelector('#table tbody th')).position")
    assert position == "sticky"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


# ------------------------------------------------------------------ 6. tensor parallel sizes refused


@pytest.mark.parametrize(
    ("engine", "tp", "model_id", "heads"), [("vllm", "8", QWEN7, 28), ("ideal", "64", LLAMA8, 32)]
)
def test_refused_tensor_parallel_size_is_said_per_model(
    page: Page, engine: str, tp: str, model_id: str, heads: int
) -> None:
    page.goto("/")
    wait_live(page)
    page.select_option("#engine", engine)
    page.select_option("#tp", tp)
    settle(page)
    refusal = page.locator(f"#model-errors li[data-id='{model_id}'][data-refused='true']")
    expect(refusal).to_contain_text(f"tensor_parallel_size: {tp} does not divide num_attention_heads {heads}")
    expect(page.locator(f"#table tbody tr[data-id='{model_id}']")).to_have_count(0)
    assert ENTRIES[model_id]["name"] not in bar_names(page)


def test_engine_select_lists_every_engine_of_the_registry(page: Page) -> None:
    from kvcalc.engines import ENGINES

    page.goto("/")
    options = page.eval_on_selector_all("#engine option", "os => os.map(o => o.value)")
    assert options == list(ENGINES)


def test_controls_say_why_and_keep_focus(page: Page) -> None:
    """Should-fix items: refused batch sizes say why; focus stays in the chips and on a sorted
    heading; "llama 3.1" finds Llama-3.1 and Enter adds it; the selects show their whole text."""
    page.set_viewport_size({"width": 1280, "height": 1000})
    page.goto(f"/#m={LLAMA8},{QWEN7},{DEEPSEEK}")
    wait_live(page)
    for bad in ("0", "1.5", ""):
        page.fill("#batch", bad)
        expect(page.locator("#batch")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#batch-help")).to_contain_text("Not a batch size")
    page.fill("#batch", "2")
    expect(page.locator("#batch-help")).to_be_empty()
    page.fill("#ctx-text", "10M")
    expect(page.locator("#ctx-help")).to_contain_text("10M = 10,485,760 is past it")
    page.locator("#ctx-text").blur()  # the value reverts to the one shown, and so does the help
    expect(page.locator("#ctx-text")).to_have_value("128K")
    expect(page.locator("#ctx-help")).not_to_have_class("help error")
    page.locator(f"#chips li[data-id='{QWEN7}'] .chip-x").click()
    settle(page)
    assert page.evaluate("document.activeElement.closest('#chips li')?.dataset.id") == DEEPSEEK
    page.click("#table thead button[data-sort='name']")
    assert page.evaluate("document.activeElement.dataset.sort") == "name"
    page.click("#picker summary")
    page.fill("#model-search", "llama 3.1")
    expect(page.locator("#model-search-help")).to_contain_text("match")
    page.press("#model-search", "Enter")
    settle(page)
    expect(page.locator("#table tbody tr")).to_have_count(3)
    page.fill("#model-search", "no such model at all")
    expect(page.locator("#model-search-help")).to_have_text("No matches.")
    room = """(sel) => {
      const s = document.querySelector(sel);
      const span = document.createElement("span");
      span.style.font = getComputedStyle(s).font;
      span.style.whiteSpace = "pre";
      span.textContent = s.options[s.selectedIndex].text;
      document.body.append(span);
      const w = span.getBoundingClientRect().width;
      span.remove();
      return s.clientWidth - w;
    }"""
    for select in ("#engine", "#gpu"):
        page.select_option(select, index=page.locator(f"{select} option").count() - 1)
        settle(page)
        assert page.evaluate(room, select) >= 16, f"{select}: its text is cut off"
    expect(page.locator("#dtype-more")).to_contain_text("Q8_0")
