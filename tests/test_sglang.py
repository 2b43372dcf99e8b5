"""SGLang 0.5.23 engine (kvcalc/engines/sglang.py; rules and sources in notes/sglang.md).

1. every row SGLang's own code produced on CPU (docs/sglang_validation.json, written by
   scripts/validate_sglang.py): kvcalc must be equal, or refuse where SGLang cannot serve the model;
2. real configs with the bytes written out from SGLang's formulas;
3. hypothesis properties;
4. the command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kvcalc
from kvcalc.deploy.sglang_plan import plan_sglang
from kvcalc.engines import sglang as s
from tests.shared_configs import HF_CONFIGS, hf_config

GIB = 1 << 30
STORED = json.loads((Path(__file__).resolve().parents[1] / "docs" / "sglang_validation.json").read_text())
TORCH_DTYPE = {"bfloat16": "bf16", "float16": "fp16", "float8_e4m3fn": "fp8_e4m3", "float32": "fp32"}
#: Architectures SGLang serves but kvcalc refuses under SGLang, with the reason's key words.
NOT_MODELLED = {
    "WhisperForConditionalGeneration": "encoder-decoder",
    "MambaForCausalLM": "pure-SSM",
}


def model(hf_id: str) -> kvcalc.Model:
    return kvcalc.load_model(hf_config(hf_id), name=hf_id)


def lay(hf_id: str, **kw: object) -> s.Layout:
    return s.layout(model(hf_id), s.Options(**kw))  # type: ignore[arg-type]


# --- 1. SGLang's own code -------------------------------------------------------------------------------


def _row_id(row: dict[str, object]) -> str:
    return f"{row['config']}-tp{row['tp']}-{row['kv_cache_dtype']}"


def test_stored_table_covers_every_config() -> None:
    """Every config in configs/ is either a row or a recorded refusal of SGLang's code."""
    configs = {str(p.parent.relative_to(HF_CONFIGS)) for p in HF_CONFIGS.glob("*/*/config.json")}
    seen = {r["config"] for r in STORED["rows"]} | {r["config"] for r in STORED["refused"]}
    assert configs <= seen
    assert STORED["sglang"] == s.SGLANG_VERSION


@pytest.mark.parametrize("row", STORED["rows"], ids=_row_id)
def test_equal_to_sglang(row: dict) -> None:
    """Cells, context length, cache dtype, page size and the pools of two budgets, exactly."""
    path = HF_CONFIGS / row["config"] / "config.json"
    try:
        m = kvcalc.load_model(path)
    except kvcalc.KVCalcError:
        assert row["config"] == "state-spaces/mamba2-2.7b"  # no attention fields kvcalc could read
        return
    opts = s.Options(tensor_parallel_size=row["tp"], kv_cache_dtype=row["kv_cache_dtype"])
    arch = row["architecture"]
    if not row["servable"] or arch in NOT_MODELLED:
        with pytest.raises(kvcalc.KVCalcError, match=NOT_MODELLED.get(arch, "no model class")):
            s.layout(m, opts)
        return
    if not row["qkv_divisible"]:  # SGLang's QKVParallelLinear cannot split these heads
        with pytest.raises(kvcalc.KVCalcError, match="tensor_parallel_size"):
            s.layout(m, opts)
        return
    got = s.layout(m, opts)
    assert got.cell_bytes == row["cell_bytes"]
    assert got.cell_size == row["cell_size"]
    assert got.context_len == row["context_len"]
    assert got.kv_cache_dtype == TORCH_DTYPE[row["resolved_kv_cache_dtype"]]
    assert got.page_size == row["page_size"]
    for b in row["budgets"]:
        if "error" in b:
            with pytest.raises(kvcalc.KVCalcError):
                s.pool_sizes(got, b["available_bytes"])
            continue
        sizes = s.pool_sizes(got, b["available_bytes"])
        assert sizes.max_total_num_tokens == b["max_total_num_tokens"]
        assert sizes.swa_tokens == b["swa_max_total_num_tokens"]
        assert sizes.max_mamba_cache_size == b["max_mamba_cache_size"]
        assert sizes.max_running_requests == b["max_running_requests"]


@pytest.mark.parametrize(
    "row", STORED["mem_fraction_static"], ids=lambda r: f"{r['gpu_mem_mib']:.0f}-tp{r['tp']}-mla{r['mla']}"
)
def test_mem_fraction_static_equal_to_sglang(row: dict) -> None:
    """handle_gpu_memory_settings' defaults, run as SGLang code."""
    d = s.gpu_defaults(row["gpu_mem_mib"], row["tp"], mla=row["mla"])
    assert (d.mem_fraction_static, d.chunked_prefill_size, d.cuda_graph_max_bs) == (
        row["mem_fraction_static"],
        row["chunked_prefill_size"],
        row["cuda_graph_max_bs"],
    )


# --- 2. real configs, formulas written out -----------------------------------------------------------------

CELLS = [
    # DeepSeek-V3: MLA (kv_lora_rank 512 + rope 64) · 61 layers · 2 B, not split by tp
    ("deepseek-ai/DeepSeek-V3", {"tensor_parallel_size": 8}, {"full": (512 + 64) * 61 * 2}),
    ("deepseek-ai/DeepSeek-V3", {"kv_cache_dtype": "fp8_e4m3"}, {"full": (512 + 64) * 61}),
    # DeepSeek-V3.2 (DSA) on Hopper: auto → bf16 latent + 132 B indexer (128 fp8 + 4 B scale) per layer
    ("deepseek-ai/DeepSeek-V3.2", {}, {"full": (576 * 2 + 128 + 128 // 128 * 4) * 61}),
    # fp8_e4m3: the 656 B layout: 512 fp8 + 512/128·4 scale bytes + 64·2 bf16 rope
    ("deepseek-ai/DeepSeek-V3.2", {"kv_cache_dtype": "fp8_e4m3"}, {"full": (512 + 16 + 128 + 132) * 61}),
    # Llama-3.1-8B: 8 KV heads · (128 + 128) · 32 layers · 2 B, heads split by tp
    ("meta-llama/Llama-3.1-8B", {}, {"full": 8 * 256 * 32 * 2}),
    ("meta-llama/Llama-3.1-8B", {"tensor_parallel_size": 8}, {"full": 1 * 256 * 32 * 2}),
    ("meta-llama/Llama-3.1-8B", {"kv_cache_dtype": "fp8_e4m3"}, {"full": 8 * 256 * 32}),
    # tp 16 > 8 heads: one replicated head per rank
    ("meta-llama/Llama-3.1-70B", {"tensor_parallel_size": 16}, {"full": 1 * 256 * 80 * 2}),
    ("meta-llama/Llama-3.1-70B", {"tensor_parallel_size": 2}, {"full": 4 * 256 * 80 * 2}),
    # Qwen3-Next: 12 full-attention layers of 2 KV heads · (256 + 256); state slot per 36 GDN layers:
    # conv (32·128 + 2·16·128)·3 bf16 + temporal 32·128·128 fp32
    (
        "Qwen/Qwen3-Next-80B-A3B-Thinking",
        {},
        {"full": 2 * 512 * 12 * 2, "mamba": 36 * (8192 * 3 * 2 + 32 * 128 * 128 * 4)},
    ),
    (
        "Qwen/Qwen3-Next-80B-A3B-Thinking",
        {"tensor_parallel_size": 8},
        {"full": 1 * 512 * 12 * 2, "mamba": 36 * (8192 // 8 * 3 * 2 + 4 * 128 * 128 * 4)},
    ),
    # --mamba-ssm-dtype bfloat16 halves the temporal state
    (
        "Qwen/Qwen3-Next-80B-A3B-Thinking",
        {"mamba_ssm_dtype": "bfloat16"},
        {"full": 24576, "mamba": 36 * (8192 * 3 * 2 + 32 * 128 * 128 * 2)},
    ),
    # gpt-oss-120b (no dtype in the config → float16): 18 full + 18 sliding layers, 8 heads · (64 + 64)
    ("openai/gpt-oss-120b", {}, {"full": 8 * 128 * 18 * 2, "swa": 8 * 128 * 18 * 2}),
    # Qwen3.5-27B: 16 full layers of 4 heads · 512; 48 GDN layers: conv (48·128 + 2·16·128)·3·2 + 48·128·128·4
    (
        "Qwen/Qwen3.5-27B",
        {},
        {"full": 4 * 512 * 16 * 2, "mamba": 48 * (10240 * 3 * 2 + 48 * 128 * 128 * 4)},
    ),
    # Nemotron-H-56B: 10 attention layers ('*') of 8 heads · (128 + 128); 54 Mamba2 layers ('M'):
    # conv (256·64 + 2·8·256)·3 bf16 + temporal 256·64·256 fp32; the 54 MLP layers ('-') hold nothing
    (
        "nvidia/Nemotron-H-56B-Base-8K",
        {},
        {"full": 8 * 256 * 10 * 2, "mamba": 54 * ((16384 + 2 * 8 * 256) * 3 * 2 + 256 * 64 * 256 * 4)},
    ),
    # Mistral-7B-v0.1: sliding_window 4096 ignored (not in the hybrid-SWA allowlist): all 32 layers full
    ("mistralai/Mistral-7B-v0.1", {}, {"full": 8 * 256 * 32 * 2}),
]


@pytest.mark.parametrize(("hf_id", "opts", "cells"), CELLS)
def test_cells(hf_id: str, opts: dict[str, object], cells: dict[str, int]) -> None:
    assert lay(hf_id, **opts).cell_bytes == cells


def test_dsa_defaults_by_sm() -> None:
    """DSA: page 64 and bf16 below SM100; fp8_e4m3 from SM100 (with an explicit page size)."""
    hopper = lay("deepseek-ai/DeepSeek-V3.2")
    assert (hopper.page_size, hopper.kv_cache_dtype, hopper.indexer_cell_bytes) == (64, "bf16", 132 * 61)
    blackwell = lay("deepseek-ai/DeepSeek-V3.2", sm_major=10, page_size=64)
    assert (blackwell.kv_cache_dtype, blackwell.cell_size) == ("fp8_e4m3", (656 + 132) * 61)
    with pytest.raises(kvcalc.KVCalcError, match="page_size"):
        lay("meta-llama/Llama-3.1-8B", sm_major=10)


POOLS = [
    # (hf id, options, available bytes, max_total_num_tokens, swa tokens, mamba slots, max_running_requests)
    # 40 GiB / 131072 = 327680 tokens; requests min(max(min(int(327680/131072·512), 4096), 2048), 163840)
    ("meta-llama/Llama-3.1-8B", {}, 40 * GIB, 327680, None, None, 2048),
    # DSA page 64: (10 GiB // 78324) // 64 · 64
    ("deepseek-ai/DeepSeek-V3.2", {}, 10 * GIB, 10 * GIB // 78324 // 64 * 64, None, None, 2048),
    # gpt-oss-120b tp 8: cell 4608 + 0.8·4608 = 8294.4; full = int(8 GiB+12345 // 8294.4); swa = int(full·0.8)
    ("openai/gpt-oss-120b", {"tensor_parallel_size": 8}, 8 * GIB + 12345, 1035632, 828505, None, 4045),
]


@pytest.mark.parametrize(("hf_id", "opts", "budget", "tokens", "swa", "slots", "reqs"), POOLS)
def test_pool_sizes(
    hf_id: str,
    opts: dict[str, object],
    budget: int,
    tokens: int,
    swa: int | None,
    slots: int | None,
    reqs: int,
) -> None:
    sizes = s.pool_sizes(lay(hf_id, **opts), budget)
    assert (sizes.max_total_num_tokens, sizes.swa_tokens, sizes.max_mamba_cache_size) == (tokens, swa, slots)
    assert sizes.max_running_requests == reqs


def test_mamba_split_written_out() -> None:
    """Qwen3-Next tp 8, 40 GiB: _handle_max_mamba_cache's float arithmetic, then the default rule."""
    layout = lay("Qwen/Qwen3-Next-80B-A3B-Thinking", tensor_parallel_size=8)
    slot = 36 * (1024 * 3 * 2 + 4 * 128 * 128 * 4)
    budget = 40 * 0.9 / 1.9 * GIB
    slots = int((budget - slot) // slot)
    rest = int((40 - (slots + 1) * slot / GIB) * GIB)
    sizes = s.pool_sizes(layout, 40 * GIB)
    assert sizes.max_mamba_cache_size == slots == 2105
    assert sizes.max_total_num_tokens == rest // 12288
    assert sizes.max_running_requests == min(2048, slots // 5) == 421


REQUESTS = [
    ("meta-llama/Llama-3.1-8B", {}, 1000, 1000 * 131072),
    # page 64: 1000 tokens take 16 pages
    ("deepseek-ai/DeepSeek-V3.2", {}, 1000, 1024 * 78324),
    # SWA pool: at most window 128 + eviction interval 128 + 2 pages of tokens
    ("openai/gpt-oss-120b", {}, 100_000, 100_000 * 36864 + (128 + 128 + 2) * 36864),
    # state pool: working slot + 2 ping-pong slots
    ("Qwen/Qwen3-Next-80B-A3B-Thinking", {}, 1000, 1000 * 24576 + 3 * 77_266_944),
    ("Qwen/Qwen3-Next-80B-A3B-Thinking", {"disable_radix_cache": True}, 1000, 1000 * 24576 + 77_266_944),
    # the sliding window does not shrink Mistral's cache under SGLang
    ("mistralai/Mistral-7B-v0.1", {}, 32768, 32768 * 131072),
]


@pytest.mark.parametrize(("hf_id", "opts", "seq_len", "expected"), REQUESTS)
def test_request_bytes(hf_id: str, opts: dict[str, object], seq_len: int, expected: int) -> None:
    assert s.request_bytes(model(hf_id), seq_len, s.Options(**opts)) == expected  # type: ignore[arg-type]


def test_gpu_plans() -> None:
    """DeepSeek-V3 on 8 × H200: MLA reserve 512 + 8192·1.5 + 1024 + 512·2 + 1536 = 16384 MiB of 143771."""
    pl = plan_sglang(model("deepseek-ai/DeepSeek-V3"), gpu="H200", num_gpus=8)
    assert pl.mem_fraction_static == round((143771 - 16384) / 143771, 3) == 0.886
    assert (pl.layout.page_size, pl.chunked_prefill_size) == (1, 8192)
    assert pl.available_bytes == s.available_bytes(pl.gpu.memory_bytes, pl.weights_bytes, 0.886)  # type: ignore[union-attr,arg-type]
    assert pl.sizes.max_total_num_tokens == pl.available_bytes // 70272
    assert "max_total_num_tokens=" in pl.log_line and "context_len=163840" in pl.log_line
    with pytest.raises(kvcalc.KVCalcError, match="smallest tp whose weights fit .* is 4"):
        plan_sglang(model("Qwen/Qwen3-Next-80B-A3B-Thinking"), gpu="H100")
    given = plan_sglang(model("meta-llama/Llama-3.1-8B"), gpu="H100", mem_fraction_static=0.5)
    assert (given.mem_fraction_static, given.mem_fraction_static_source) == (0.5, "given")


REFUSED = [
    ("ai21labs/Jamba-v0.1", {}, "no model class"),
    ("tiiuae/falcon-7b", {}, "no model class"),
    ("openai/whisper-large-v3", {}, "encoder-decoder"),
    ("meta-llama/Llama-3.1-8B", {"kv_cache_dtype": "nvfp4"}, "kv_cache_dtype"),
    ("meta-llama/Llama-3.1-8B", {"tensor_parallel_size": 0}, "tensor_parallel_size"),
    ("meta-llama/Llama-3.1-8B", {"swa_full_tokens_ratio": 1.5}, "swa_full_tokens_ratio"),
    ("meta-llama/Llama-3.1-8B", {"context_length": 10**7}, "context_length"),
    # QKVParallelLinear: 28 query heads over 8 ranks; 8 KV heads over 5 ranks; 8 KV heads replicated on 20
    ("Qwen/Qwen2.5-7B-Instruct", {"tensor_parallel_size": 8}, "does not divide num_attention_heads 28"),
    ("Qwen/Qwen2.5-32B", {"tensor_parallel_size": 5}, "does not divide num_key_value_heads 8"),
    ("Qwen/Qwen2.5-32B", {"tensor_parallel_size": 20}, "not a multiple of num_key_value_heads 8"),
    ("deepseek-ai/DeepSeek-V3.2", {"kv_cache_dtype": "fp8_e5m2"}, "kv_cache_dtype"),
]


@pytest.mark.parametrize(("hf_id", "opts", "message"), REFUSED)
def test_refused(hf_id: str, opts: dict[str, object], message: str) -> None:
    with pytest.raises(kvcalc.KVCalcError, match=message):
        lay(hf_id, **opts)


def test_too_little_memory_refused() -> None:
    with pytest.raises(kvcalc.KVCalcError, match="available_bytes"):
        s.pool_sizes(lay("meta-llama/Llama-3.1-8B"), 100_000)
    with pytest.raises(kvcalc.KVCalcError, match="SWA pool"):
        s.pool_sizes(lay("openai/gpt-oss-120b"), 10_000_000)  # 150 full, 120 SWA tokens < 128 + 1
    with pytest.raises(kvcalc.KVCalcError, match="available_bytes"):
        s.pool_sizes(lay("meta-llama/Llama-3.1-8B"), -1)


# --- 3. properties ---------------------------------------------------------------------------------------

MHA = ["meta-llama/Llama-3.1-8B", "Qwen/Qwen3-32B", "mistralai/Mixtral-8x7B-v0.1", "openai/gpt-oss-20b"]


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(MHA), st.sampled_from([1, 2, 4, 8]))
def test_fp8_halves_bf16_and_tp_never_grows_cells(hf_id: str, tp: int) -> None:
    bf16 = lay(hf_id, tensor_parallel_size=tp, kv_cache_dtype="bf16").cell_bytes
    fp8 = lay(hf_id, tensor_parallel_size=tp, kv_cache_dtype="fp8_e4m3").cell_bytes
    assert {k: 2 * v for k, v in fp8.items()} == bf16
    wider = lay(hf_id, tensor_parallel_size=tp * 2, kv_cache_dtype="bf16").cell_bytes
    assert all(wider[k] <= bf16[k] for k in bf16)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from([1, 2, 8, 16]))
def test_mla_not_split_by_tp(tp: int) -> None:
    assert lay("deepseek-ai/DeepSeek-V3", tensor_parallel_size=tp).cell_bytes == {"full": 70272}


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["meta-llama/Llama-3.1-8B", "deepseek-ai/DeepSeek-V3.2", "openai/gpt-oss-120b"]),
    st.integers(4 * GIB, 200 * GIB),
    st.integers(0, 10 * GIB),
)
def test_tokens_monotone_paged_and_within_budget(hf_id: str, budget: int, extra: int) -> None:
    layout = lay(hf_id)
    a, b = s.pool_sizes(layout, budget), s.pool_sizes(layout, budget + extra)
    assert a.max_total_num_tokens <= b.max_total_num_tokens
    assert a.max_total_num_tokens % layout.page_size == 0
    used = sum(p.cell_bytes * (a.swa_tokens if p.name == "swa" else a.full_tokens) for p in layout.pools)
    assert used <= budget
    assert a.max_running_requests <= a.max_total_num_tokens // 2


@settings(max_examples=40, deadline=None)
@given(st.integers(4 * GIB, 200 * GIB))
def test_mamba_state_and_tokens_within_budget(budget: int) -> None:
    layout = lay("Qwen/Qwen3-Next-80B-A3B-Thinking", tensor_parallel_size=4)
    sizes = s.pool_sizes(layout, budget)
    state = (sizes.max_mamba_cache_size + 1) * layout.pool("mamba").cell_bytes  # type: ignore[operator]
    assert state + sizes.max_total_num_tokens * layout.pool("full").cell_bytes <= budget
    assert sizes.max_running_requests <= sizes.max_mamba_cache_size // 5  # type: ignore[operator]


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(MHA + ["Qwen/Qwen3-Next-80B-A3B-Thinking"]), st.integers(0, 300_000), st.integers(1, 64)
)
def test_request_bytes_monotone_and_linear_in_batch(hf_id: str, n: int, batch: int) -> None:
    m = model(hf_id)
    one = s.request_bytes(m, n)
    assert s.request_bytes(m, n + 1) >= one
    assert s.request_bytes(m, n, batch_size=batch) == batch * one


@settings(max_examples=60, deadline=None)
@given(st.floats(8 * 1024, 300 * 1024), st.sampled_from([1, 2, 4, 8]), st.booleans())
def test_mem_fraction_static_falls_with_tp(mib: float, tp: int, mla: bool) -> None:
    a = s.gpu_defaults(mib, tp, mla=mla).mem_fraction_static
    b = s.gpu_defaults(mib, tp * 2, mla=mla).mem_fraction_static
    assert 0 < a < 1 and b <= a + (0.001 if tp == 2 else 0)


# --- 4. command line ---------------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    from kvcalc.cli.main import main

    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_cli_kv_cell_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    out = json.loads(_cli(capsys, "kv", "Qwen3-Next-80B-A3B-Thinking", "--engine", "sglang", "--tp", "8",
                          "--kv-cache-dtype", "fp8_e4m3", "--json"))  # fmt: skip
    assert out["cell_bytes"] == {"full": 6144, "mamba": 36 * (1024 * 3 * 2 + 4 * 128 * 128 * 4)}
    assert (out["sglang_version"], out["kv_cache_dtype"], out["tensor_parallel_size"]) == (
        "0.5.23",
        "fp8_e4m3",
        8,
    )
    out = json.loads(_cli(capsys, "kv", "DeepSeek-V3", "--engine", "sglang", "--seq-len", "1000", "--json"))
    assert (out["cell_bytes"], out["bytes"]) == ({"full": 70272}, 1000 * 70272)


def test_cli_plan_available_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    out = json.loads(_cli(capsys, "plan", "gpt-oss-120b", "--engine", "sglang", "--tp", "8",
                          "--available-bytes", str(8 * GIB + 12345), "--json"))  # fmt: skip
    assert (out["max_total_num_tokens"], out["pool_tokens"]) == (1035632, {"full": 1035632, "swa": 828505})
    assert out["max_running_requests"] == 4045


def test_cli_plan_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    out = json.loads(_cli(capsys, "plan", "Llama-3.1-70B", "--engine", "sglang", "--gpu", "H100", "--tp", "8",
                          "--json"))  # fmt: skip
    assert (out["mem_fraction_static"], out["page_size"], out["gpu_memory_mib"]) == (0.812, 1, 81559.0)
    assert out["max_running_requests"] > 0 and "max_total_num_tokens" in out["estimated"]
    text = _cli(capsys, "plan", "DeepSeek-V3", "--engine", "sglang", "--gpu", "H200", "--num-gpus", "8")
    assert "mem_fraction_static 0.886" in text and "GiB" in text
    assert "SGLang would log: max_total_num_tokens=" in text


def test_cli_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    from kvcalc.cli.main import main

    assert main(["plan", "Llama-3.1-8B", "--engine", "sglang"]) == 2
    assert "available_bytes" in capsys.readouterr().err
    assert main(["kv", "Llama-3.1-8B", "--engine", "vllm"]) == 2
    assert "--seq-len" in capsys.readouterr().err


# --- 5. the engine registry ------------------------------------------------------------------------------


@pytest.mark.parametrize(("hf_id", "opts", "seq_len", "expected"), REQUESTS)
def test_kv_cache_bytes_engine_sglang(
    hf_id: str, opts: dict[str, object], seq_len: int, expected: int
) -> None:
    """kvcalc.kv_cache_bytes(..., engine="sglang") is the request's bytes; layers sum to it."""
    m = model(hf_id)
    kw = {"engine": "sglang", "kv_dtype": "auto", **opts}
    assert kvcalc.kv_cache_bytes(m, seq_len, **kw) == expected
    assert kvcalc.kv_cache_bytes(m, seq_len, batch_size=3, **kw) == 3 * expected
    assert sum(kvcalc.layer_bytes(m, seq_len, **kw)) == expected


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from([*MHA, "deepseek-ai/DeepSeek-V3.2", "nvidia/Nemotron-H-56B-Base-8K", "Qwen/Qwen3.5-27B"]),
    st.sampled_from([1, 2, 4, 8]),
    st.integers(0, 8192),
)
def test_layers_sum_to_the_request(hf_id: str, tp: int, n: int) -> None:
    m = model(hf_id)
    kw = {"engine": "sglang", "kv_dtype": "auto", "tensor_parallel_size": tp}
    assert sum(kvcalc.layer_bytes(m, n, **kw)) == s.request_bytes(m, n, s.Options(tensor_parallel_size=tp))


def test_kv_cache_bytes_engine_sglang_options() -> None:
    m = model("meta-llama/Llama-3.1-70B")
    per_token = 1 * 256 * 80  # tp 8: one KV head per rank, fp8
    assert (
        kvcalc.kv_cache_bytes(m, 5000, engine="sglang", kv_dtype="fp8", tensor_parallel_size=8)
        == 5000 * per_token
    )
    paged = kvcalc.kv_cache_bytes(m, 5000, engine="sglang", kv_dtype="bf16", page_size=64)
    assert paged == 5056 * 8 * 256 * 80 * 2  # 79 pages of 64
    with pytest.raises(kvcalc.KVCalcError, match="kv_dtype"):
        kvcalc.kv_cache_bytes(m, 10, engine="sglang", kv_dtype="fp32")
    with pytest.raises(kvcalc.KVCalcError, match="seq_len"):
        kvcalc.kv_cache_bytes(m, 131073, engine="sglang", kv_dtype="auto")
    with pytest.raises(kvcalc.KVCalcError, match="swa_full_tokens_ratio"):
        kvcalc.kv_cache_bytes(m, 10, engine="sglang", swa_full_tokens_ratio=0)
    assert "sglang" in kvcalc.ENGINES
