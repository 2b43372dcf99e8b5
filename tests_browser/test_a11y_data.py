"""The log–log chart's text alternative (a "data" toggle: its numbers in a table) and the context
slider's value as Chromium's accessibility tree hands it to a screen reader."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests_browser.test_site import LLAMA8, expected_cache, settle, wait_live

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]
MISTRAL = "mistralai/Mistral-7B-v0.1"


def test_data_toggle_shows_the_lines_numbers(page: Page) -> None:
    page.goto(f"/#m={LLAMA8},{MISTRAL}&ctx=8192&dt=bf16")
    wait_live(page)
    table = page.locator("#line-data-table table")
    expect(table).to_have_count(0)  # built only when opened
    page.get_by_text("Data: the chart's numbers as a table").click()
    expect(table).to_be_visible()
    heads = table.locator("thead th").all_inner_texts()
    assert heads == ["Tokens", "Llama-3.1-8B", "Mistral-7B-v0.1"]
    rows = table.locator("tbody tr")
    first = rows.first.locator("th").inner_text()
    assert first == "1K"
    cells: dict[str, list[Any]] = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        cells[row.locator("th").inner_text()] = row.locator("td").evaluate_all(
            "tds => tds.map((td) => [td.textContent, td.dataset.bytes ? Number(td.dataset.bytes) : null])"
        )
    assert list(cells)[-1] == "128K"  # Llama's max context; Mistral ends at 32K
    assert cells["64K"][1] == ["—", None]
    for ctx, tokens in (("4K", 4096), ("32K", 32768)):
        for col, model_id in enumerate((LLAMA8, MISTRAL)):
            assert cells[ctx][col][1] == expected_cache(model_id, tokens, "bf16")
    assert cells["4K"][0][0] == "0.50 GiB"
    # a batch change updates the open table
    page.fill("#batch", "2")
    settle(page)
    expect(table.locator("caption")).to_contain_text("batch 2")
    two = table.locator("tbody tr").nth(2).locator("td").first.get_attribute("data-bytes")
    assert int(two or 0) == 2 * expected_cache(LLAMA8, 4096, "bf16")


def ax_nodes(page: Page) -> list[dict[str, Any]]:
    """Chromium's accessibility tree (what a screen reader is handed)."""
    return page.context.new_cdp_session(page).send("Accessibility.getFullAXTree")["nodes"]  # type: ignore[no-any-return]


def context_field(page: Page) -> tuple[str, str, str]:
    """(role, value, description) of the "Context length" control in Chromium's accessibility tree."""
    for node in ax_nodes(page):
        if node.get("name", {}).get("value") == "Context length" and not node.get("ignored"):
            return node["role"]["value"], str(node["value"]["value"]), node["description"]["value"]
    raise AssertionError("no accessible control named Context length")


def test_context_length_reads_in_tokens_and_steps_by_keyboard(page: Page) -> None:
    """Chromium reads a range input's bare index ("14"), not its aria-valuetext: the slider is hidden
    from the tree and the labelled text field reads the value and takes ↑/↓ to step the slider."""
    page.goto("/")
    roles = [(n.get("role", {}).get("value"), str(n.get("value", {}).get("value"))) for n in ax_nodes(page)
             if not n.get("ignored")]  # fmt: skip
    assert not [r for r in roles if r[0] == "slider"]  # no control that reads "14"
    assert context_field(page)[:2] == ("textbox", "128K")
    assert "131,072 tokens" in context_field(page)[2]
    wait_live(page)
    page.focus("#ctx-text")
    page.keyboard.press("ArrowUp")
    settle(page)
    assert context_field(page)[:2] == ("textbox", "192K")
    assert page.input_value("#ctx-text") == "192K"
    assert page.evaluate("document.getElementById('ctx-range').value") == "15"
    page.fill("#ctx-text", "128000")
    settle(page)
    assert context_field(page)[1] == "128000"  # as typed
    page.keyboard.press("ArrowUp")  # between stops: up goes to the next stop above, 128K
    settle(page)
    assert context_field(page)[1] == "128K"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    settle(page)
    assert page.input_value("#ctx-text") == "64K"
