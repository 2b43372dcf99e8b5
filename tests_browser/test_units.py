"""Units at the extremes, as a person reads them: sizes from 1024 GiB on in TiB/PiB (the page's
format.js and kvcalc.core.units.fmt_gib give the same text), log-axis ticks labelled in GiB/TiB/PiB
(no "1e+6", "100000" or "0.5M"), and a context typed as 128000 shown as 128,000."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from kvcalc.core.units import GIB, fmt_gib
from tests_browser.test_site import settle, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
TIB, PIB = 1 << 40, 1 << 50
SIZES = [
    0, 1, 1 << 20, 1 << 27, 3 * (1 << 28), GIB - 1, GIB, 1234 * GIB + (GIB >> 1), TIB - 1, TIB,
    TIB + (1 << 37), TIB + (1 << 37) - 1, 1000 * TIB, PIB - 1, PIB, 5 * PIB + (PIB >> 1), 7 * PIB + 12345,
    (1 << 53) - 1,
]  # fmt: skip
DEEPSEEK = "deepseek-ai/DeepSeek-V3"


def test_page_and_python_print_sizes_alike(page: Page) -> None:
    page.goto("/")
    got = page.evaluate(
        "async (ns) => { const f = await import('./format.js'); return ns.map((n) => f.fmtGiB(n)); }", SIZES
    )
    assert got == [fmt_gib(n) for n in SIZES]
    assert fmt_gib(TIB + (1 << 37)) == "1.13 TiB" and fmt_gib(5 * PIB + (PIB >> 1)) == "5.50 PiB"


def y_ticks(page: Page) -> list[str]:
    return page.eval_on_selector_all("#line-chart .ytick text", "ts => ts.map((t) => t.textContent)")


@pytest.mark.parametrize("batch", [1, 4096])
def test_log_axis_ticks_name_their_unit(page: Page, batch: int) -> None:
    page.goto(f"/#m={DEEPSEEK}&ctx=131072&b={batch}")
    wait_live(page)
    ticks = y_ticks(page)
    assert len(ticks) >= 2
    assert all(re.fullmatch(r"[\d,.]+ (GiB|TiB|PiB)", t) for t in ticks), ticks
    if batch > 1:  # DeepSeek-V3 at batch 4096 reaches tens of TiB
        assert any(t.endswith("TiB") for t in ticks), ticks
        cell = page.locator("#table tbody tr td[data-col='cache:bf16']").first
        expect(cell).to_contain_text("TiB")
        bar = page.eval_on_selector_all("#bar-chart .xtick text", "ts => ts.map((t) => t.textContent)")
        assert bar[0] == "0" and all(re.fullmatch(r"[\d,.]+", t) for t in bar), bar
        expect(page.locator("#bar-chart .g-xtitle")).to_contain_text("(TiB)")
    else:
        expect(page.locator("#bar-chart .g-xtitle")).to_contain_text("(GiB)")


def test_typed_context_is_shown_as_typed(page: Page) -> None:
    page.goto(f"/#m={DEEPSEEK}")
    wait_live(page)
    page.fill("#ctx-text", "128000")
    settle(page)
    expect(page.locator("#bar-title")).to_contain_text("128,000 tokens")
    expect(page.locator("#line-chart .shape-label-text")).to_have_text("chosen: 128,000")
    assert page.get_attribute("#ctx-range", "aria-valuetext") == "128,000 tokens"


# Every size-axis label of both charts lies inside its chart, and none overlaps the axis title.
LABELS_INSIDE = """() => ["bar-chart", "line-chart"].map((id) => {
  const chart = document.getElementById(id);
  const box = chart.getBoundingClientRect();
  const labels = [...chart.querySelectorAll(".ytick text")].map((t) => t.getBoundingClientRect());
  const title = chart.querySelector(".g-ytitle text")?.getBoundingClientRect() ?? null;
  const apart = (a, b) => a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top;
  return {
    id, n: labels.length,
    inside: labels.every((r) => r.left >= box.left && r.right <= box.right),
    clearOfTitle: !title || labels.every((r) => apart(r, title)),
  };
})"""


@pytest.mark.parametrize(
    "link",
    [
        "",  # the default twelve models, the longest name past its max context ("⚠")
        f"#m={DEEPSEEK}&ctx=131072&b=4096",  # tens of TiB on the log axis
        "#ctx=1048576",  # every model past its max: the axes grow
    ],
)
def test_margins_hold_every_label(page: Page, link: str) -> None:
    """The size axes' margins are set from measured label widths (not Plotly's automargin): no label
    is cut off or runs into the axis title, at the extremes too."""
    page.goto(f"/{link}")
    wait_live(page)
    for chart in page.evaluate(LABELS_INSIDE):
        assert chart["n"] >= 1 and chart["inside"] and chart["clearOfTitle"], chart
