"""Your own models (issue 16, "should fix"): a pasted or fetched config.json gets a useful, unique name,
the same config is not added twice, and each form confirms what it did in a polite status line.

Driven as a person does (paste, type, click); each test failed on the page before the fix. The configs
are the real ones under configs/ (phi-2's carries its own "_name_or_path").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

import build
from tests_browser.test_site import (
    ENTRIES,
    HOSTILE,
    LLAMA8,
    MISTRAL,
    READY_MS,
    bar_names,
    config_text,
    no_dialogs,
    paste,
    settle,
    wait_live,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
QWEN7 = "Qwen/Qwen2.5-7B-Instruct"
PHI2 = Path(build.ROOT) / "configs" / "microsoft" / "phi-2" / "config.json"
HF = "https://huggingface.co/**"


def architecture(model_id: str) -> str:
    return str(ENTRIES[model_id]["config"]["architectures"][0])


def row_names(page: Page) -> list[str]:
    return page.eval_on_selector_all("#table tbody th .model-name", "ns => ns.map(n => n.textContent)")


def status(page: Page, form: str) -> Any:
    """The form's live status line, found by its role as assistive technology finds it."""
    return page.locator(f"#{form}").get_by_role("status")


def serve_configs(page: Page, bodies: dict[str, str]) -> list[str]:
    """Answer Hub fetches of config.json for the given ids (others 404); returns the fetched URLs."""
    fetched: list[str] = []

    def handle(route: Route) -> None:
        url = route.request.url
        fetched.append(url)
        hub_id = "/".join(url.split("/")[3:5])
        body = bodies.get(hub_id)
        headers = {"access-control-allow-origin": "*"}
        route.fulfill(status=200 if body else 404, body=body or "Entry not found", headers=headers)

    page.route(HF, handle)
    return fetched


def focus_in(page: Page, form: str) -> bool:
    return bool(page.evaluate(f"() => !!document.activeElement?.closest('#{form}')"))


# ------------------------------------------------------------------ a. useful, unique names


def test_pasted_configs_get_useful_unique_names(page: Page) -> None:
    """No name typed: "Custom N (architecture)", or the config's own _name_or_path; a typed name stays
    as typed, made unique against the models on the page."""
    page.goto("/")
    wait_live(page)
    llama = f"Custom 1 ({architecture(LLAMA8)})"
    qwen = f"Custom 2 ({architecture(QWEN7)})"
    phi = json.loads(PHI2.read_text())["_name_or_path"]
    assert llama == "Custom 1 (LlamaForCausalLM)" and phi == "microsoft/phi-2"
    for text, typed, want in (
        (config_text(LLAMA8), "", llama),
        (config_text(QWEN7), "", qwen),
        (PHI2.read_text(), "", phi),
        # Llama-3.1-8B is on the page already (a default model): the typed name gets " (2)"
        (config_text(MISTRAL), "Llama-3.1-8B", "Llama-3.1-8B (2)"),
    ):
        paste(page, text, typed)
        expect(status(page, "paste-form")).to_have_text(f"Added “{want}” to the charts.", timeout=READY_MS)
        settle(page)
        expect(page.locator("#table tbody th .model-name", has_text=want)).to_have_count(1)
    names = row_names(page)
    assert len(names) == len(set(names)) and {llama, qwen, phi, "Llama-3.1-8B (2)"} <= set(names)
    assert architecture(LLAMA8) not in names
    assert {llama, qwen, phi, "Llama-3.1-8B (2)"} <= set(bar_names(page))
    expect(page.locator("#chips")).to_contain_text(qwen)


# ------------------------------------------------------------------ b. not added twice


def test_the_same_config_is_not_added_twice(page: Page) -> None:
    """The same config, however indented or ordered, is found (normalised JSON), selected again if it
    was removed, and not added a second time; a Hub id already fetched is not fetched again."""
    page.goto("/")
    wait_live(page)
    paste(page, config_text(LLAMA8), "Mine")
    # the status line first: until it shows, the model may still be loading and nothing is busy yet
    expect(status(page, "paste-form")).to_have_text("Added “Mine” to the charts.", timeout=READY_MS)
    settle(page)
    rows = len(row_names(page))
    same = json.dumps(json.loads(config_text(LLAMA8)), sort_keys=True, separators=(",", ":"))
    assert same != config_text(LLAMA8)
    paste(page, same, "Again")
    expect(status(page, "paste-form")).to_contain_text("Already added as “Mine”")
    settle(page)
    assert len(row_names(page)) == rows and "Again" not in row_names(page)
    # removed from the charts, then pasted again: selected again, still once
    page.locator("#chips li", has_text="Mine").get_by_role("button").click()
    settle(page)
    assert "Mine" not in row_names(page)
    paste(page, same)
    expect(status(page, "paste-form")).to_contain_text("Already added as “Mine”")
    settle(page)
    assert row_names(page).count("Mine") == 1 and len(row_names(page)) == rows
    assert page.locator("#model-groups label", has_text="Mine").count() == 1

    fetched = serve_configs(page, {"acme/Qwen-copy": config_text(QWEN7), "acme/Llama-copy": same})
    page.fill("#hf-id", "acme/Qwen-copy")
    page.click("#hf-fetch")
    expect(status(page, "hf-form")).to_have_text("Added “acme/Qwen-copy” to the charts.", timeout=READY_MS)
    settle(page)
    page.fill("#hf-id", "https://huggingface.co/acme/Qwen-copy")  # the same id, as a link
    page.click("#hf-fetch")
    expect(status(page, "hf-form")).to_contain_text("Already added as “acme/Qwen-copy”")
    assert len(fetched) == 1  # the second time nothing was fetched
    page.fill("#hf-id", "acme/Llama-copy")  # another id, the same content as "Mine"
    page.click("#hf-fetch")
    expect(status(page, "hf-form")).to_contain_text("Already added as “Mine”")
    settle(page)
    assert row_names(page).count("acme/Qwen-copy") == 1 and "acme/Llama-copy" not in row_names(page)


# ------------------------------------------------------------------ c. a confirmation near the form


def test_each_form_confirms_in_a_status_line_and_keeps_focus(page: Page) -> None:
    """A polite live status line beside each form says what was added (as text, never HTML), clears on
    the next submit, and focus stays on the form."""
    dialogs = no_dialogs(page)
    page.goto("/")
    wait_live(page)
    line = status(page, "paste-form")
    expect(line).to_have_attribute("role", "status")
    expect(line).to_be_empty()
    paste(page, config_text(QWEN7), HOSTILE)
    expect(line).to_have_text(f"Added “{HOSTILE}” to the charts.", timeout=READY_MS)
    settle(page)
    assert focus_in(page, "paste-form")
    assert page.locator("img").count() == 0 and dialogs == []
    paste(page, "{ not json")
    expect(page.locator("#paste-error")).to_contain_text("config: not valid JSON")
    expect(line).to_be_empty()

    serve_configs(page, {"acme/Mistral-copy": config_text(MISTRAL)})
    hf_line = status(page, "hf-form")
    page.fill("#hf-id", "acme/Mistral-copy")
    page.press("#hf-id", "Enter")
    expect(hf_line).to_have_text("Added “acme/Mistral-copy” to the charts.", timeout=READY_MS)
    settle(page)
    assert focus_in(page, "hf-form")
    page.fill("#hf-id", "not an id")
    page.click("#hf-fetch")
    expect(page.locator("#hf-error")).to_contain_text("expected owner/model")
    expect(hf_line).to_be_empty()
    assert focus_in(page, "hf-form")
