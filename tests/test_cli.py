"""The command line through subprocesses: output, --json parsed back, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kvcalc.cli.main import COMMANDS, build_parser, parse_tokens

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / "configs"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}


def run(*args: str, prog: str = "kvcalc") -> subprocess.CompletedProcess[str]:
    if prog == "kvcalc":
        cmd = [sys.executable, "-m", "kvcalc", *args]
    else:  # the seed-compatible console script kv-cache-calc = kvcalc.cli.main:seed_main
        cmd = [
            sys.executable,
            "-c",
            "import sys; from kvcalc.cli.main import seed_main; sys.exit(seed_main())",
            *args,
        ]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=ENV, timeout=120)


def run_json(*args: str) -> object:
    out = run(*args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("32768", 32_768),
        ("32k", 32_768),
        ("128K", 131_072),
        ("1M", 1_048_576),
        ("1.5k", 1536),
        ("2,048", 2048),
    ],
)
def test_parse_tokens(text: str, tokens: int) -> None:
    assert parse_tokens(text) == tokens


@pytest.mark.parametrize("text", ["", "12x", "1.3k", "k", "-5"])
def test_parse_tokens_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_tokens(text)


def test_help_states_k_is_1024() -> None:
    out = run("kv", "--help")
    assert out.returncode == 0 and "128k = 131,072" in out.stdout


def test_kv_deepseek_v3_128k_table_and_json() -> None:
    out = run("kv", "DeepSeek-V3", "--seq-len", "128k")
    assert out.returncode == 0
    assert "9,210,691,584" in out.stdout and "8.58" in out.stdout and "GiB = 2^30 bytes" in out.stdout
    data = run_json("kv", "deepseek-ai/DeepSeek-V3", "--seq-len", "131072")
    assert data["bytes"] == 70_272 * 131_072 and data["bytes_per_token"] == 70_272
    assert data["by_kind"] == {"mla": {"layers": 61, "bytes": 70_272 * 131_072}}


def test_kv_vllm_fp8_tp_batch() -> None:
    data = run_json(
        "kv",
        "gpt-oss-120b",
        "--seq-len",
        "128k",
        "--kv-dtype",
        "fp8",
        "--engine",
        "vllm",
        "--tp",
        "8",
        "--batch-size",
        "2",
        "--per-layer",
    )
    page = 16 * 1 * (64 + 64) * 1  # tp 8 → one KV head per rank, fp8
    full, sliding = 131_072 // 16, 1033
    assert data["bytes"] == 2 * 18 * (full + sliding) * page
    assert len(data["layers"]) == 36 and data["tensor_parallel_size"] == 8 and data["kv_dtype"] == "fp8"


def test_kv_from_a_config_path(tmp_path: Path) -> None:
    cfg = {
        "model_type": "llama",
        "num_hidden_layers": 2,
        "hidden_size": 64,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "torch_dtype": "bfloat16",
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    for spec in (tmp_path, tmp_path / "config.json"):
        data = run_json("kv", str(spec), "--seq-len", "1k")
        assert data["bytes"] == 2 * 2 * 2 * 16 * 2 * 1024  # layers · (K,V) · kv heads · head_dim · bf16 · L


def test_plan_deepseek_v3_8_h200() -> None:
    out = run("plan", "DeepSeek-V3", "--gpu", "H200", "--num-gpus", "8")
    assert out.returncode == 0, out.stderr
    assert (
        "KV cache budget" in out.stdout
        and "GPU KV cache size:" in out.stdout
        and "✔ fits on 8 ×" in out.stdout
    )
    data = run_json("plan", "DeepSeek-V3", "--gpu", "H200", "--num-gpus", "8")
    assert data["fits"] and data["tensor_parallel_size"] == 8 and data["page_bytes"] == 18_432
    assert data["kv_tokens"] == int(data["num_blocks"] / data["blocks_per_request"] * data["max_model_len"])


def test_plan_does_not_fit_is_not_an_error() -> None:
    out = run("plan", "Llama-3.1-8B-Instruct", "--gpu", "rtx-4090")
    assert out.returncode == 0
    assert "✘ does not fit" in out.stdout and "need ≥ 2 × NVIDIA GeForce RTX 4090 24GB" in out.stdout
    data = run_json("plan", "Llama-3.1-8B-Instruct", "--gpu", "4090", "--max-model-len", "32k")
    assert data["fits"] and data["max_model_len"] == 32_768


def test_recommend() -> None:
    data = run_json("recommend", "Llama-3.1-70B-Instruct", "--max-model-len", "32k", "--gpus", "h100,b200")
    assert [(p["gpu"], p["num_gpus"]) for p in data] == [("b200", 1), ("h100", 4)]


def test_compare() -> None:
    data = run_json("compare", "DeepSeek-V3", "Llama-3.1-70B", "--seq-len", "128k")
    assert [r["bytes"] for r in data] == [70_272 * 131_072, 327_680 * 131_072]
    out = run("compare", "DeepSeek-V3", "Llama-3.1-70B", "--seq-len", "128k")
    assert "MLA" in out.stdout and "40.00" in out.stdout


def test_models() -> None:
    data = run_json("models")
    names = {r["name"] for r in data}
    assert {"DeepSeek-V3", "gpt-oss-120b", "Qwen3-Next-80B-A3B-Thinking", "Kimi-K2-Instruct"} <= names
    row = next(r for r in data if r["name"] == "DeepSeek-V3")
    assert (row["params"], row["active_params"], row["bytes_per_token"]) == (
        671_026_404_352,
        37_552_282_624,
        70_272,
    )
    assert "hash ok" in run("models").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["kv", "no-such-model", "--seq-len", "1k"],
            "kvcalc: error: model: 'no-such-model' is not a preloaded model",
        ),
        (
            ["kv", "DeepSeek-V3", "--seq-len", "12x"],
            "kvcalc kv: error: argument --seq-len: not a token count",
        ),
        (["kv", "DeepSeek-V3"], "the following arguments are required: --seq-len"),
        (
            ["kv", "DeepSeek-V3", "--seq-len", "1k", "--kv-dtype", "fp7"],
            "kvcalc: error: kv_dtype: unknown dtype",
        ),
        (["kv", "DeepSeek-V3", "--seq-len", "1k", "--batch-size", "0"], "expected a positive integer"),
        (["plan", "DeepSeek-V3", "--gpu", "x100"], "kvcalc: error: gpu: 'x100' is not in the catalog"),
        (
            ["plan", "Llama-3.1-8B", "--gpu", "h100", "--num-gpus", "3"],
            "tensor_parallel_size: 3 does not divide",
        ),
        (
            ["plan", "Llama-3.1-8B", "--gpu", "h100", "--gpu-memory-utilization", "2"],
            "expected a number in (0, 1]",
        ),
        (
            ["kv", "nobody/nothing", "--seq-len", "1k"],
            "model: nobody/nothing: HF_HUB_OFFLINE is set and config.json is not in the Hub cache",
        ),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_arguments_one_line_exit_2(args: list[str], message: str) -> None:
    out = run(*args)
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1 and message in out.stderr
    assert "Traceback" not in out.stderr


def test_seed_kv_cache_calc() -> None:
    out = run(
        "--num-layers", "32", "--hidden-size", "4096", "--num-heads", "32", "--seq-len", "2048", prog="seed"
    )
    assert out.returncode == 0
    assert "KV Cache Size: 1.000 GiB (1,073,741,824 bytes = 1,024.00 MiB)" in out.stdout
    out = run(
        "--num-layers",
        "32",
        "--hidden-size",
        "4096",
        "--num-heads",
        "32",
        "--num-kv-heads",
        "8",
        "--seq-len",
        "2048",
        "--batch-size",
        "4",
        "--precision-bits",
        "8",
        "--json",
        prog="seed",
    )
    assert json.loads(out.stdout)["bytes"] == 2 * 32 * 4 * 2048 * 8 * 128 * 8 // 8
    bad = run(
        "--num-layers",
        "32",
        "--hidden-size",
        "4096",
        "--num-heads",
        "32",
        "--num-kv-heads",
        "5",
        "--seq-len",
        "2k",
        prog="seed",
    )
    assert bad.returncode == 2 and "num_kv_heads: 5 must divide num_attention_heads (32)" in bad.stderr
    assert bad.stderr.count("\n") == 1


def test_config_subcommand_offline() -> None:
    pytest.importorskip("transformers")
    out = run("config", str(SHARED / "Qwen" / "Qwen3-8B"), "--offline")
    assert out.returncode == 0, out.stdout
    entry = json.loads(out.stdout)
    assert entry["id"] == "Qwen/Qwen3-8B" and entry["normalised"]["layers"] == 36


def test_subcommand_registry_has_a_measure_slot() -> None:
    names = [name for name, _ in COMMANDS]
    assert names[:6] == ["kv", "plan", "recommend", "compare", "models", "config"] and "measure" in names
    assert build_parser().prog == "kvcalc"
