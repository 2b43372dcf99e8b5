"""The added panels driven as a person would, in real Chromium, offline: paste a vLLM log, compare
one model under several engines, local mode (llama.cpp), and the validation table as HTML.

Expected verdicts and bytes come from kvcalc in this (Python) process, through the same door."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

import build
import kvcalc
from kvcalc import web
from kvcalc.deploy import llamacpp_plan as P
from kvcalc.engines import ENGINES
from kvcalc.engines import llamacpp as L

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
READY_MS = 60_000
LOGS = Path(build.ROOT) / "bench" / "vllm_logs"


def log_body(name: str) -> str:
    """The log excerpt of a bench/vllm_logs file (below its '---' source header)."""
    return (LOGS / name).read_text(encoding="utf-8").split("---\n", 1)[1]


def explain_expected(log: str, model_id: str | None) -> dict:
    entries = {e["id"]: e for e in build.model_entries()}
    models = [{k: entries[model_id][k] for k in ("id", "name", "config")}] if model_id else []
    return json.loads(web.compute(json.dumps({"op": "explain", "log": log, "models": models})))


def explain(page: Page, log: str) -> None:
    page.goto("/")
    page.get_by_label("vLLM start-up log").fill(log)
    page.get_by_role("button", name="Explain").click()
    expect(page.locator("#explain-result")).to_be_visible(timeout=READY_MS)


def test_pasted_log_is_explained_line_by_line(page: Page) -> None:
    log = log_body("005-qwen3-14b-l40s-tp1.txt")
    want = explain_expected(log, "Qwen/Qwen3-14B")
    assert want["ok"] and [c["status"] for c in want["checks"]].count("exact") == 2
    explain(page, log)
    expect(page.locator("#explain-summary")).to_contain_text("Qwen/Qwen3-14B")
    expect(page.locator("#explain-summary")).to_contain_text("l40s")
    verdicts = page.locator(".explain-verdict")
    expect(verdicts).to_have_count(len(want["checks"]))
    shown = verdicts.evaluate_all("vs => vs.map(v => [v.dataset.kind, v.dataset.status, v.textContent])")
    assert [(k, s) for k, s, _ in shown] == [(c["kind"], c["status"]) for c in want["checks"]]
    tokens = next(t for k, _, t in shown if k == "tokens")
    assert tokens.startswith("✔ reproduced exactly") and "75,824 tokens" in tokens
    lines = page.locator(".explain-line code").all_text_contents()
    assert "GPU KV cache size: 75,824 tokens" in lines
    expect(page.locator("#explain-result")).to_have_attribute("data-outcome", "reproduced")


def test_truncated_log_gets_a_partial_answer(page: Page) -> None:
    """The first lines only (no token line): the numbers that are there are checked, the rest said."""
    log = "\n".join(log_body("005-qwen3-14b-l40s-tp1.txt").splitlines()[:4])
    want = explain_expected(log, "Qwen/Qwen3-14B")
    explain(page, log)
    expect(page.locator(".explain-verdict")).to_have_count(len(want["checks"]))
    assert "GPU KV cache size" not in page.locator("#explain-checks").inner_text()
    expect(page.locator("#explain-error")).to_be_empty()


def test_log_of_unknown_model_and_garbage_never_blank(page: Page) -> None:
    explain(page, "this is not a vLLM log at all\n<img src=x onerror=alert(1)>")
    expect(page.locator("#explain-checks")).to_contain_text("No vLLM memory lines found")
    expect(page.locator("#explain-notes")).to_contain_text("nothing recognised")
    assert page.locator("#explain-checks img").count() == 0
    page.get_by_label("vLLM start-up log").fill("")
    page.get_by_role("button", name="Explain").click()
    expect(page.locator("#explain-error")).to_contain_text("log: paste")


# ------------------------------------------------------------------ engines side by side

MISTRAL = "mistralai/Mistral-7B-v0.1"


def engine_bytes(model_id: str, engine: str, seq: int, batch: int, dtype: str) -> int:
    entry = next(e for e in build.model_entries() if e["id"] == model_id)
    model = kvcalc.load_model(entry["config"], name=entry["name"])
    ctx = seq * batch if engine == "llama.cpp" else seq  # llama.cpp's -c counts every slot
    return kvcalc.kv_cache_bytes(model, ctx, batch_size=batch, kv_dtype=dtype, engine=engine)


def engines_rev(page: Page, after: int) -> None:
    expect(page.locator("#engines-panel")).not_to_have_attribute("data-rev", str(after), timeout=READY_MS)
    expect(page.locator("#engines-panel")).to_have_attribute("data-busy", "false", timeout=READY_MS)


def test_one_model_under_every_engine(page: Page) -> None:
    page.goto("/")
    page.get_by_text("One model, several engines").click()
    engines_rev(page, 0)
    page.locator("#engines-panel").get_by_label("Model", exact=True).select_option(MISTRAL)
    engines_rev(page, 1)
    page.get_by_label("Context per sequence").fill("32k")
    page.get_by_label("Sequences").fill("2")
    page.get_by_role("button", name="Compare engines").click()
    expect(page.locator("#engines-caption")).to_contain_text("2 × 32K tokens", timeout=READY_MS)
    settle = page.locator("#engines-panel")
    expect(settle).to_have_attribute("data-busy", "false", timeout=READY_MS)
    cells = page.eval_on_selector_all(
        "#engines-table tbody tr",
        "rows => rows.map(r => [r.dataset.engine, r.querySelector('[data-col=cache]').dataset.bytes])",
    )
    engines = list(ENGINES)
    assert [e for e, _ in cells] == engines
    for engine, shown in cells:
        assert int(shown) == engine_bytes(MISTRAL, engine, 32768, 2, "bf16"), engine
    bars = page.evaluate("() => document.getElementById('engines-chart').data[0].customdata")
    assert bars == [int(b) for _, b in cells]
    # each engine in its own vocabulary
    table = page.locator("#engines-table")
    expect(table.locator("tr[data-engine='vllm'] code").first).to_contain_text("--max-model-len 32768")
    expect(table.locator("tr[data-engine='vllm']")).to_contain_text("gpu_memory_utilization")
    expect(table.locator("tr[data-engine='sglang'] code").first).to_contain_text("--mem-fraction-static")
    expect(table.locator("tr[data-engine='sglang']")).to_contain_text("page_size")
    expect(table.locator("tr[data-engine='llama.cpp'] code").first).to_contain_text(
        "-c 65536 -np 2 -ctk bf16"
    )
    expect(table.locator("tr[data-engine='trtllm']")).to_contain_text("tokens_per_block")


def test_engines_fp8_and_nothing_ticked(page: Page) -> None:
    page.goto("/")
    page.get_by_text("One model, several engines").click()
    engines_rev(page, 0)
    page.locator("#engines-panel").get_by_label("Cache dtype", exact=True).select_option("fp8")
    engines_rev(page, 1)
    row = page.locator("#engines-table tr[data-engine='llama.cpp']")
    expect(row).to_contain_text("kv_dtypes: llama.cpp's -ctk/-ctv take none of fp8")
    expect(row.locator("[data-col=cache]")).to_have_text("—")
    for box in page.locator("#eng-engines input").all():
        box.uncheck()
    expect(page.locator("#engines-error")).to_have_text("Engines: tick at least one.")


# ------------------------------------------------------------------ local mode (llama.cpp)

LLAMA70 = "meta-llama/Llama-3.1-70B"


def local_plan(model_id: str, machine: P.Machine, ctx: int, np: int = 1, ct: str = "f16") -> dict:
    entry = next(e for e in build.model_entries() if e["id"] == model_id)
    model = kvcalc.load_model(entry["config"], name=entry["name"])
    s = L.Settings(n_ctx=ctx, n_parallel=np, type_k=ct, type_v=ct)
    return P.plan(model, machine, s, quant="Q4_K_M").as_dict()


def local_rev(page: Page, after: int) -> None:
    expect(page.locator("#local-panel")).not_to_have_attribute("data-rev", str(after), timeout=READY_MS)
    expect(page.locator("#local-panel")).to_have_attribute("data-busy", "false", timeout=READY_MS)


def shown_parts(page: Page) -> dict[tuple[str, str], int]:
    rows = page.eval_on_selector_all(
        "#local-table tbody tr",
        "rs => rs.map(r => [r.dataset.part, r.dataset.where, r.cells[2].dataset.bytes])",
    )
    return {(p, w): int(b) for p, w, b in rows}


def test_local_mode_two_gpus_then_a_mac(page: Page) -> None:
    page.goto("/")
    page.get_by_text("Will it fit on my machine?").click()
    local_rev(page, 0)
    page.locator("#local-model").select_option(LLAMA70)
    local_rev(page, 1)
    page.get_by_label("Machine").select_option("gpu:rtx-3090")
    local_rev(page, 2)
    page.get_by_label("GPUs").fill("2")
    page.get_by_label("GPUs").dispatch_event("change")
    local_rev(page, 3)
    want = local_plan(LLAMA70, P.gpu_machine("rtx-3090", 2, 64), 32768)
    expect(page.locator("#local-ngl")).to_have_text(str(want["n_gpu_layers"]))
    expect(page.locator("#local-verdict")).to_contain_text(f"Fits with -ngl {want['n_gpu_layers']}")
    parts = shown_parts(page)
    assert parts["weights", "gpu"] == want["weights_gpu_bytes"] and parts["kv", "gpu"] == want["kv_gpu_bytes"]
    assert parts["weights", "cpu"] == want["weights_cpu_bytes"] and parts["kv", "cpu"] == want["kv_cpu_bytes"]
    assert parts["compute", "gpu"] == 2 * P.FIT_MARGIN
    stacked = page.evaluate(
        "() => document.getElementById('local-chart').data.map(t => [t.name, t.customdata])"
    )
    assert [n for n, _ in stacked] == ["Weights", "KV cache", "Compute buffer (llama.cpp --fit margin)"]
    assert stacked[1][1] == [want["kv_gpu_bytes"], want["kv_cpu_bytes"]]
    expect(page.locator("#local-command")).to_contain_text(
        f"-c 32768 -np 1 -ctk f16 -ctv f16 -ngl {want['n_gpu_layers']}"
    )

    # a Mac: unified memory, the GPU working set instead of VRAM; RAM inputs go away
    page.get_by_label("Machine").select_option("mac:m3-max-64gb")
    local_rev(page, 4)
    expect(page.locator("#local-gpu-extra")).to_be_hidden()
    mac = local_plan(LLAMA70, P.get_machine("m3-max-64gb"), 32768)
    expect(page.locator("#local-ngl")).to_have_text(str(mac["n_gpu_layers"]))
    expect(page.locator("#local-table")).to_contain_text("GPU working set")
    assert shown_parts(page)["kv", "gpu"] == mac["kv_gpu_bytes"]

    # raising the GPU limit (sudo sysctl iogpu.wired_limit_mb=57344) puts every layer on the GPU
    page.get_by_label("GPU limit").fill("57344")
    page.get_by_label("GPU limit").dispatch_event("change")
    local_rev(page, 5)
    raised = local_plan(LLAMA70, P.get_machine("m3-max-64gb", wired_limit_mb=57344), 32768)
    assert raised["n_gpu_layers"] > mac["n_gpu_layers"]
    expect(page.locator("#local-ngl")).to_have_text(str(raised["n_gpu_layers"]))


def test_local_mode_bad_context_and_no_experts(page: Page) -> None:
    page.goto("/")
    page.get_by_text("Will it fit on my machine?").click()
    local_rev(page, 0)
    page.get_by_label("Experts in RAM").select_option("auto")
    local_rev(page, 1)
    expect(page.locator("#local-error")).to_contain_text("n_cpu_moe: the model has no experts")
    page.get_by_label("Experts in RAM").select_option("0")
    local_rev(page, 2)
    page.locator("#local-ctx").fill("lots")
    page.get_by_role("button", name="Plan").click()
    local_rev(page, 3)
    expect(page.locator("#local-error")).to_contain_text("-c: write a token count")
    expect(page.locator("#local-result")).to_be_hidden()


# ------------------------------------------------------------------ validation table as HTML


def test_validation_link_opens_an_html_table(page: Page) -> None:
    page.goto("/")
    with page.expect_navigation():
        page.locator("#validation-link").click()
    assert page.url.endswith("/validation.html")
    expect(page.locator("h1")).to_have_text("kvcalc vs transformers: measured validation")
    assert page.evaluate("document.characterSet") == "UTF-8"
    summary = page.locator("table").first
    expect(summary.locator("tbody tr").first).to_contain_text("✔ measured exact")
    md = (Path(build.ROOT) / "docs" / "validation.md").read_text(encoding="utf-8")
    body = page.locator("body").inner_text()
    assert "Ã" not in body and "|---" not in body  # no mojibake, no raw markdown
    rows = [line for line in md.splitlines() if line.startswith("|") and not set(line) <= set("|-: ")]
    expect(page.locator("tr")).to_have_count(len(rows))
    page.get_by_role("link", name="← back to kvcalc").click()
    expect(page.locator("#app")).to_be_visible()


def test_log_without_model_or_gpu_then_chosen_on_the_page(page: Page) -> None:
    """A log that names neither model nor GPU: nothing checked and the page says what to choose;
    with Model and GPU chosen, the token and concurrency lines reproduce exactly."""
    lines = log_body("005-qwen3-14b-l40s-tp1.txt").splitlines()
    log = "\n".join(line for line in lines if "KV cache" in line or "concurrency" in line)
    explain(page, log)
    expect(page.locator(".explain-verdict[data-status='unchecked']")).to_have_count(3)
    expect(page.locator("#explain-notes")).to_contain_text("choose the Model above")
    expect(page.locator("#explain-notes")).to_contain_text("choose the GPU above")
    panel = page.locator("section.explain")
    panel.get_by_label("Model", exact=True).select_option("Qwen/Qwen3-14B")
    panel.get_by_label("GPU", exact=True).select_option("l40s")
    page.get_by_role("button", name="Explain").click()
    for kind in ("tokens", "concurrency"):
        verdict = page.locator(f".explain-verdict[data-kind='{kind}']")
        expect(verdict).to_have_attribute("data-status", "exact")
    expect(page.locator("#explain-summary")).to_contain_text("Qwen3-14B")
