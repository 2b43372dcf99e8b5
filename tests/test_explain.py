"""`kvcalc explain` over every published vLLM start-up excerpt in bench/vllm_logs/.

The numbers checked are vLLM's own: each excerpt's "GPU KV cache size", "# GPU blocks", "Maximum
concurrency" and "KV cache is needed" lines must come out of kvcalc's page arithmetic exactly, given the
"Available KV cache memory" the same log prints.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvcalc.core.catalog import load_catalog
from kvcalc.deploy.explain import DIFFERS, EXACT, RANGE, UNCHECKED, explain
from kvcalc.deploy.vllm_log import parse_log
from kvcalc.web import compute

ROOT = Path(__file__).resolve().parent.parent
LOGS = sorted((ROOT / "bench" / "vllm_logs").glob("*.txt"))
CATALOG = load_catalog(ROOT / "model_configs.json")
DERIVED = ("tokens", "blocks", "concurrency", "max_tokens", "needed")

# excerpt → (exit code, the derived lines' statuses). Every derived line kvcalc can check is reproduced
# exactly, except 013 (tp 4: the printed budget is one rank's; vLLM keeps the smallest block count).
EXPECTED = {
    "001-qwen3-next-80b-h200-tp2": (0, {"tokens": EXACT, "concurrency": EXACT}),
    "002-llava-mistral-7b-h100-tp1": (1, {"tokens": UNCHECKED, "concurrency": UNCHECKED}),  # no config
    "003-llama-3.1-8b-unknown-gpu-tp1": (0, {"tokens": EXACT, "blocks": EXACT, "concurrency": EXACT}),
    "004-qwen3-30b-a3b-fp8-l40s-tp2": (0, {"tokens": EXACT, "concurrency": EXACT}),
    "005-qwen3-14b-l40s-tp1": (0, {"tokens": EXACT, "concurrency": EXACT}),
    "006-qwen3-14b-awq-l40s-tp1": (0, {"tokens": EXACT, "concurrency": EXACT}),
    "007-qwen3-14b-awq-l40s-tp1-tuned": (0, {"tokens": EXACT, "concurrency": EXACT}),
    "008-qwen3-14b-awq-l4-tp1": (0, {"tokens": EXACT, "concurrency": EXACT}),
    "009-qwen3-14b-awq-l4-tp2": (1, {"tokens": EXACT, "concurrency": EXACT}),  # budget outside the range
    "010-qwen3-14b-awq-l4-pp2": (0, {"tokens": EXACT, "concurrency": EXACT}),
    "011-qwen3-14b-awq-l4-tp1-replica": (1, {"tokens": EXACT, "concurrency": EXACT}),  # second instance
    "012-llama-3.1-8b-eagle-h100-tp1": (0, {"tokens": EXACT, "concurrency": EXACT}),
    "013-qwen3-235b-a22b-fp8-h100-tp4": (1, {"tokens": DIFFERS}),
    "014-qwen3-14b-unknown-gpu-tp1": (0, {"tokens": EXACT, "concurrency": EXACT}),
    "015-llama-3.1-8b-rtx3090-v0-20k": (0, {"blocks": EXACT, "concurrency": EXACT}),
    "016-llama-3.1-8b-rtx3090-v0-29k": (0, {"blocks": EXACT, "concurrency": EXACT, "max_tokens": EXACT}),
    "017-deepseek-v2-lite-mla-tp1": (0, {"needed": EXACT}),
    "018-gpt-oss-20b-h100-tp1": (0, {}),  # mxfp4 weights with vLLM's expert padding: within range
    "019-gpt-oss-120b-h100-tp1": (1, {}),  # the row adds up only at utilization 0.95, not its 0.9
    "020-llama-3.3-70b-fp8-h100-tp2": (0, {}),
    "021-llama-3.1-8b-h100-tp1": (0, {}),
    "022-qwen3-0.6b-h100-tp1": (0, {}),
    "023-qwen3-32b-h100-tp1": (0, {}),
    "024-qwen3-32b-h100-tp2": (0, {}),
    "025-mistral-small-3.2-24b-h100-tp1": (1, {}),  # no config
    # tp 8: eight budgets and eight token lines, each reproduced from its own rank's budget
    "026-qwen3-235b-a22b-fp8-l40s-tp8": (0, {"tokens": EXACT, "concurrency": EXACT, "blocks": EXACT}),
    # MLA under pp 2 × tp 2: the 14-layer first stage binds (its 12.13 GiB → 50,487 blocks)
    "027-deepseek-v2-lite-mla-l4-tp2-pp2": (1, {"tokens": EXACT, "concurrency": EXACT}),
    "028-unknown-model-16gb-v0": (1, {"blocks": UNCHECKED, "concurrency": UNCHECKED}),  # model not named
}


def _explain(path: Path):  # noqa: ANN202
    return explain(path.read_text(encoding="utf-8"), resolve=CATALOG.model)


def test_every_excerpt_has_an_expectation() -> None:
    assert sorted(EXPECTED) == [p.stem for p in LOGS]
    assert len(LOGS) >= 25


@pytest.mark.parametrize("path", LOGS, ids=[p.stem[:3] for p in LOGS])
def test_excerpt(path: Path) -> None:
    code, derived = EXPECTED[path.stem]
    result = _explain(path)
    got = {c.kind: c.status for c in result.checks if c.kind in DERIVED}
    assert got == derived
    assert result.exit_code == code
    json.dumps(result.as_dict(), allow_nan=False)
    text = result.text()
    assert "kvcalc applies its rules for vLLM" in text
    for c in result.checks:
        assert c.detail and c.status in (EXACT, RANGE, DIFFERS, UNCHECKED)


def test_the_tp4_excerpt_names_the_rank_cause() -> None:
    result = _explain(ROOT / "bench/vllm_logs/013-qwen3-235b-a22b-fp8-h100-tp4.txt")
    tokens = next(c for c in result.checks if c.kind == "tokens")
    assert "needs ~8.02 GiB" in tokens.detail and "another rank had less free memory" in tokens.detail


def test_the_hybrid_excerpt_is_derived_with_prefix_caching_off() -> None:
    """vLLM 0.10.2 turned prefix caching off for hybrids: 7,162 blocks // 4 groups × 544 tokens."""
    result = _explain(ROOT / "bench/vllm_logs/001-qwen3-next-80b-h200-tp2.txt")
    tokens = next(c for c in result.checks if c.kind == "tokens")
    assert "12 layers × 557,056-byte pages" in tokens.detail and "// 4 groups × 544" in tokens.detail
    assert result.gpu == "h200" and result.modelled_version == "0.8–0.19"


def test_a_wrong_setting_is_named() -> None:
    """The same tokens with the log's prefix-caching line removed: kvcalc finds the cause."""
    text = (ROOT / "bench/vllm_logs/001-qwen3-next-80b-h200-tp2.txt").read_text(encoding="utf-8")
    text = "\n".join(x for x in text.splitlines() if "prefix caching" not in x and "enable_prefix" not in x)
    text = text.replace("v0.10.2", "v0.28.0").replace("version 0.10.2", "version 0.28.0")
    result = explain(text, resolve=CATALOG.model)
    tokens = next(c for c in result.checks if c.kind == "tokens")
    assert tokens.status == DIFFERS and "reproduced exactly with" in tokens.detail


def test_eagle_draft_layer_is_found_when_the_log_does_not_say() -> None:
    text = (ROOT / "bench/vllm_logs/012-llama-3.1-8b-eagle-h100-tp1.txt").read_text(encoding="utf-8")
    result = explain(text.replace("# speculative:", "# was-speculative:"), resolve=CATALOG.model)
    tokens = next(c for c in result.checks if c.kind == "tokens")
    assert tokens.status == DIFFERS and "1 draft layer(s)" in tokens.detail


@pytest.mark.parametrize("path", LOGS[::3], ids=[p.stem[:3] for p in LOGS[::3]])
def test_truncated_logs_give_partial_answers(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for cut in (0, 40, len(text) // 3, len(text) // 2, len(text) - 7):
        result = explain(text[:cut], resolve=CATALOG.model)
        assert result.exit_code in (0, 1)
        result.text()


@given(st.text(max_size=400))
@settings(max_examples=60, deadline=None)
def test_any_text_is_answered(text: str) -> None:
    result = explain(text)
    assert result.exit_code in (0, 1)
    json.dumps(result.as_dict())


def test_v0_sentence_format_without_a_model() -> None:
    result = _explain(ROOT / "bench/vllm_logs/028-unknown-model-16gb-v0.txt")
    conc = next(c for c in result.checks if c.kind == "concurrency")
    assert "consistent with # GPU blocks: 3,852 × 16 / 40,000 = 1.54" in conc.detail
    assert any("its total 15.77 GiB matches no catalog GPU" in n for n in result.notes)
    assert {c.kind for c in result.checks} >= {"total", "available", "weights", "nontorch", "activation"}


def test_refusal_for_too_little_free_memory() -> None:
    """The refusal line of a real log quoted in a public repository (vLLM's own wording)."""
    text = (
        "Free memory on device cuda:0 (27.28/31.86 GiB) on startup is less than\n"
        "desired GPU memory utilization (0.97, 30.9 GiB).\n"
    ).replace("less than\n", "less than ")
    result = explain(text)
    check = next(c for c in result.checks if c.kind == "free")
    assert check.status == EXACT and "another process holds 4.58 GiB" in check.detail


def test_v0_and_v1_lines_are_parsed() -> None:
    v0 = parse_log((ROOT / "bench/vllm_logs/016-llama-3.1-8b-rtx3090-v0-29k.txt").read_text(encoding="utf-8"))
    assert v0.engine == "v0" and v0.memory["available"] == 2.89 and v0.settings["max_model_len"] == 29000
    assert v0.settings["gpu_memory_utilization"] == 0.9 and v0.first("max_tokens").values == (23648,)
    v1 = parse_log((ROOT / "bench/vllm_logs/001-qwen3-next-80b-h200-tp2.txt").read_text(encoding="utf-8"))
    assert (v1.version, v1.engine, v1.settings["tp"], v1.settings["enable_prefix_caching"]) == (
        "0.10.2",
        "v1",
        2,
        False,
    )
    assert v1.memory["total"] == 139.81 and v1.gpu_name == "H200"


def test_combined_token_line_of_newer_releases() -> None:
    log = parse_log(
        "[gpu_worker.py:701] Available KV cache memory: 10.35 GiB\n"
        "[kv_cache_utils.py:2258] GPU KV cache size: 1,676,933 tokens, Maximum concurrency for 262,144 "
        "tokens per request: 6.40x\n"
    )
    assert log.first("tokens").values == (1676933,) and log.first("concurrency").values == (262144, 6.40)


def test_web_door() -> None:
    entry = CATALOG.get("Qwen/Qwen3-14B")
    log = (ROOT / "bench/vllm_logs/005-qwen3-14b-l40s-tp1.txt").read_text(encoding="utf-8")
    request = {"op": "explain", "log": log, "models": [{"id": entry.id, "config": dict(entry.config)}]}
    answer = json.loads(compute(json.dumps(request)))
    assert answer["ok"] and answer["exit_code"] == 0 and answer["model"] == "Qwen/Qwen3-14B"
    assert [c["status"] for c in answer["checks"] if c["kind"] == "tokens"] == [EXACT]
    releases = json.loads(compute(json.dumps({"op": "catalog"})))["vllm_versions"]
    assert [v["span"] for v in releases][-1] == "0.28+" and releases[0]["v1"] is False
    bad = json.loads(compute(json.dumps({"op": "explain", "log": 5})))
    assert bad == {"ok": False, "error": "log: expected the text of a vLLM start-up log"}


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "kvcalc", "explain", *args]
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False
    )


def test_cli_exit_codes() -> None:
    ok = _cli("bench/vllm_logs/005-qwen3-14b-l40s-tp1.txt")
    assert ok.returncode == 0 and "✔ reproduced exactly" in ok.stdout and not ok.stderr
    differs = _cli("bench/vllm_logs/013-qwen3-235b-a22b-fp8-h100-tp4.txt", "--json")
    assert differs.returncode == 1 and json.loads(differs.stdout)["exit_code"] == 1
    stdin = _cli("-", stdin="hello\n")
    assert stdin.returncode == 1 and "no vLLM memory lines found" in stdin.stdout
    bad_gpu = _cli("bench/vllm_logs/003-llama-3.1-8b-unknown-gpu-tp1.txt", "--gpu", "z9")
    assert bad_gpu.returncode == 2 and "gpu: 'z9' is not in the catalog" in bad_gpu.stderr
    missing = _cli("no/such/log.txt")
    assert missing.returncode == 2 and missing.stderr.startswith("kvcalc: error: log: cannot read")
