"""``kvcalc measure``: shallower copies keep their layer pattern; end to end on real transformers runs.

The pattern tests are pure Python. The ``transformers``-marked tests run ``python -m kvcalc measure``
in a subprocess on a CPU with random weights: the ``small`` preset (predicted bytes == bytes of the cache
``generate()`` returned, and generating 16 tokens after a 512-token prompt is ≥ 3× faster with the cache
— expected ~8-15×: without it every step re-runs the whole prefix, 8,312 token-forwards against 527),
and Qwen3-Next cut to 4 layers (still 3 Gated DeltaNet + 1 full attention, measured exact).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import kvcalc
from kvcalc.core.catalog import load_catalog
from kvcalc.errors import KVCalcError
from kvcalc.measure.shallow import PRESETS, expert_counts, fewer_experts, preset_config, shallow_config

REPO = Path(__file__).resolve().parents[1]
CATALOG = load_catalog()
HAS_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs the measure extra: pip install kvcalc[measure]")


def kvcalc_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 240) -> Any:
    """``python -m kvcalc ARGS`` from the repo root."""
    return subprocess.run(
        [sys.executable, "-m", "kvcalc", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def kinds(config: dict[str, Any]) -> list[str]:
    return [layer.kind for layer in kvcalc.load_model(config).layers]


# ------------------------------------------------------------------------------------------------
# shallower copies (stdlib)


@pytest.mark.parametrize(
    ("name", "n", "expected"),
    [
        ("Qwen3-Next-80B-A3B-Thinking", 4, ["gated_deltanet"] * 3 + ["full"]),
        ("Qwen3-Next-80B-A3B-Thinking", 8, (["gated_deltanet"] * 3 + ["full"]) * 2),
        ("Qwen3.5-35B-A3B", 4, ["gated_deltanet"] * 3 + ["full"]),  # nested text_config + layer_types
        ("gpt-oss-20b", 3, ["sliding", "full", "sliding"]),
        ("Nemotron-H-56B-Base-8K", 5, ["mamba2", "none", "mamba2", "none", "mamba2"]),
        ("Nemotron-H-56B-Base-8K", 8, ["mamba2", "none"] * 3 + ["mamba2", "full"]),
        ("DeepSeek-V3", 2, ["mla", "mla"]),
    ],
)
def test_shallow_copy_keeps_the_layer_pattern(name: str, n: int, expected: list[str]) -> None:
    entry = CATALOG.get(name)
    config, notes = shallow_config(entry.config, n)
    assert kinds(config) == expected == kinds(dict(entry.config))[:n]
    assert notes and f"→ {n}" in notes[0]
    assert kinds(dict(entry.config)) == [layer.kind for layer in entry.model().layers]  # original untouched


def test_shallow_copy_slices_every_pattern_key() -> None:
    nemotron = shallow_config(CATALOG.get("Nemotron-H-56B-Base-8K").config, 8)[0]
    assert nemotron["hybrid_override_pattern"] == "M-M-M-M*" and nemotron["num_hidden_layers"] == 8
    qwen35 = shallow_config(CATALOG.get("Qwen3.5-27B").config, 4)[0]
    assert len(qwen35["text_config"]["layer_types"]) == qwen35["text_config"]["num_hidden_layers"] == 4
    minimax = shallow_config(CATALOG.get("MiniMax-M2.7").config, 3)[0]
    assert len(minimax["attn_type_list"]) == 3


def test_shallow_copy_says_which_kinds_a_prefix_misses() -> None:
    _, notes = shallow_config(CATALOG.get("Nemotron-H-56B-Base-8K").config, 4)
    assert any("no full layer" in n and "--layers 8" in n for n in notes)


@pytest.mark.parametrize("n", [0, 49])
def test_shallow_copy_rejects_impossible_counts(n: int) -> None:
    with pytest.raises(KVCalcError, match="--layers"):
        shallow_config(CATALOG.get("Qwen3-Next-80B-A3B-Thinking").config, n)


def test_fewer_experts_keeps_the_cache_and_the_router_top_k() -> None:
    config = shallow_config(CATALOG.get("DeepSeek-V3").config, 4)[0]
    assert expert_counts(config) == (256, 8)
    small, notes = fewer_experts(config, 8)
    assert expert_counts(small) == (8, 8) and small["n_group"] == small["topk_group"] == 1 and notes
    for n in (1, 300):
        before, after = kvcalc.load_model(config), kvcalc.load_model(small)
        assert kvcalc.kv_cache_bytes(before, n, engine="transformers") == kvcalc.kv_cache_bytes(
            after, n, engine="transformers"
        )
    assert kvcalc.count_params(kvcalc.load_model(small)).total < kvcalc.count_params(before).total
    with pytest.raises(KVCalcError, match="router picks 8"):
        fewer_experts(config, 4)


def test_presets() -> None:
    for name, (hidden, heads, context, layers) in PRESETS.items():
        model = kvcalc.load_model(preset_config(name))
        assert (model.config["hidden_size"], model.config["num_attention_heads"]) == (hidden, heads)
        assert model.max_position_embeddings == context and len(model.layers) == layers
        assert model.kinds() == {"full": layers}
    assert len(kvcalc.load_model(preset_config("small", 2)).layers) == 2


def _fake_report(measured: int, predicted: int) -> dict[str, Any]:
    """A report as measure_cli builds it, for one 512-token case (no torch run)."""
    from kvcalc.cli import measure as measure_cli

    timing = {"seconds": 1.0, "cpu_seconds": 1.0, "tokens_per_s": 16.0, "decode_tokens_per_s": 20.0}
    case = {
        "seq_len": 512, "new_tokens": 16, "cache_tokens": 527, "measured_bytes": measured,
        "predicted_bytes": predicted, "exact": measured == predicted, "bytes_per_next_token": 16384,
        "by_kind": {"full": {"layers": 4, "predicted_bytes": predicted, "measured_bytes": measured,
                             "transformers": ["DynamicLayer"]}},
        "cached": timing, "uncached": {**timing, "seconds": 8.0, "tokens_per_s": 2.0},
        "speedup": 8.0, "decode_speedup": 12.0, "same_tokens": True,
        "token_forwards": {"cached": 527, "uncached": 8312},
    }  # fmt: skip
    report = {
        "model": "small preset", "model_type": "llama", "layers": 4, "kinds": {"full": 4}, "notes": [],
        "dtype": "fp32", "batch_size": 1, "seq_len": 512, "new_tokens": 16, "threads": 1,
        "attn_implementation": "sdpa", "params": 10, "params_kvcalc": 10, "weights_bytes": 40,
        "exact": case["exact"], "cases": [case],
        "rss_bytes": {"start": 1, "built": 2, "cached": 3, "uncached": 4},
        "versions": {"torch": "t", "transformers": "x"},
    }  # fmt: skip
    report["scaling"] = measure_cli._scaling([case])
    return report


def test_report_text_is_loud_about_a_mismatch() -> None:
    from kvcalc.cli.measure import _text

    ok = _text(_fake_report(8_634_368, 8_634_368))
    assert "✔ exact to the byte" in ok and "MISMATCH" not in ok and "8.0×" in ok
    assert "+16,384 bytes per token at 527 tokens)" in ok and "8,312 token-forwards" in ok
    bad = _text(_fake_report(8_634_368, 8_634_400))
    assert (
        "!!! MISMATCH at 527 tokens: transformers holds 8,634,368 bytes, kvcalc predicts 8,634,400 (+32)"
        in bad
    )
    assert "DIFF +32" in bad and "✔" not in bad


# ------------------------------------------------------------------------------------------------
# command line errors (no torch run needed)


@pytest.mark.parametrize(
    "args",
    [
        ["small", "--seq-len", "abc"],
        ["small", "--new-tokens", "0"],
        ["small", "--dtype", "int3"],
        ["small", "--layers", "-1"],
        ["small", "--seq-len", "2k"],  # past the small preset's 1K context
        ["no-such-model-xyz"],
        ["Qwen3-Next-80B-A3B-Thinking", "--layers", "49"],
        ["Qwen3-Next-80B-A3B-Thinking", "--layers", "4", "--experts", "3"],  # fewer than top-k 10
        ["Llama-3.1-405B"],  # weights far larger than memory
        ["small", "--sweep", "64,x"],
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(args: list[str]) -> None:
    result = kvcalc_cli("measure", *args, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_missing_torch_names_the_extra(tmp_path: Path) -> None:
    blocked = tmp_path / "torch"
    blocked.mkdir()
    (blocked / "__init__.py").write_text("raise ImportError('No module named torch (blocked by the test)')\n")
    pythonpath = os.pathsep.join([str(tmp_path), str(REPO)])
    result = kvcalc_cli("measure", "small", env={"PYTHONPATH": pythonpath}, timeout=60)
    assert result.returncode == 2
    assert "pip install kvcalc[measure]" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_importing_the_measure_modules_stays_stdlib_only() -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "sys.modules['transformers'] = None\n"
        "import kvcalc.cli.measure, kvcalc.measure.bench_decode, kvcalc.measure.shallow, kvcalc.cli.main\n"
        "kvcalc.cli.main.build_parser()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_help_works_without_running_anything() -> None:
    result = kvcalc_cli("measure", "--help", timeout=60)
    assert result.returncode == 0 and "--layers" in result.stdout and "small" in result.stdout


# ------------------------------------------------------------------------------------------------
# end to end on real transformers runs


@pytest.mark.transformers
@needs_torch
def test_small_preset_end_to_end() -> None:
    args = ["small", "--json", "--seq-len", "512", "--new-tokens", "16", "--sweep", "256"]
    result = kvcalc_cli("measure", *args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["measured_bytes"] == report["predicted_bytes"] > 0
    assert report["exact"] and report["kinds"] == {"full": 4}
    assert report["params"] == report["params_kvcalc"]
    cases = {c["seq_len"]: c for c in report["cases"]}
    assert sorted(cases) == [256, 512]
    for case in cases.values():
        assert case["measured_bytes"] == case["predicted_bytes"]
        assert case["cache_tokens"] == case["seq_len"] + 15
    # 4 layers × K,V × 8 heads × 64 × fp32, per cached token
    assert cases[512]["measured_bytes"] - cases[256]["measured_bytes"] == 256 * 4 * 2 * 8 * 64 * 4
    # total time to generate 16 tokens after 512: the uncached run does ~16× the token-forwards
    assert cases[512]["speedup"] >= 3, cases[512]
    assert report["speedup"] == cases[512]["speedup"]
    assert cases[512]["uncached"]["seconds"] > cases[512]["cached"]["seconds"]
    assert report["rss_bytes"]["built"] >= report["rss_bytes"]["start"] > 0


@pytest.mark.transformers
@needs_torch
def test_layers_on_a_real_hybrid_keeps_its_pattern() -> None:
    args = ["Qwen3-Next-80B-A3B-Thinking", "--layers", "4", "--json", "--seq-len", "48", "--new-tokens", "3"]
    result = kvcalc_cli("measure", *args, "--sweep", "48", timeout=400)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["kinds"] == {"gated_deltanet": 3, "full": 1}
    by_kind = report["cases"][0]["by_kind"]
    assert by_kind["gated_deltanet"]["transformers"] == ["LinearAttentionLayer"]
    assert by_kind["full"]["transformers"] == ["DynamicLayer"]
    assert report["measured_bytes"] == report["predicted_bytes"] and report["exact"]
    assert any("512 → 10" in n for n in report["notes"])  # routed experts trimmed to the router's top-k
