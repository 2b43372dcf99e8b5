"""Seed-compatible API: the hand-entered formula, memory reports, comparisons, batch search."""

from __future__ import annotations

import json

import pytest

from kvcalc import KVCalcError
from kvcalc.compat import (
    NOT_APPLICABLE,
    ModelVariant,
    analyze_attention_efficiency,
    calculate_kv_cache_size,
    calculate_memory,
    compare_models,
    estimate_max_batch_size,
    kv_cache_bytes,
)
from kvcalc.core.catalog import load_catalog
from kvcalc.core.params import count_params

CATALOG = load_catalog()
LLAMA2_7B = ModelVariant(num_layers=32, hidden_size=4096, num_heads=32)
GIB = 1 << 30


def gqa(layers: int, hidden: int, heads: int, **kw: object) -> ModelVariant:
    return ModelVariant(num_layers=layers, hidden_size=hidden, num_attention_heads=heads, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("variant", "tokens", "batch", "bits", "expected"),
    [
        (LLAMA2_7B, 2048, 1, 16, 2 * 32 * 1 * 2048 * 32 * 128 * 2),  # 1 GiB
        (LLAMA2_7B, 4096, 8, 16, 2 * 32 * 8 * 4096 * 32 * 128 * 2),
        (gqa(32, 4096, 32, num_kv_heads=8), 131_072, 1, 16, 131_072 * 131_072),  # 128 KiB per token
        (gqa(32, 4096, 32, num_kv_heads=8), 1000, 1, 4, 2 * 32 * 1000 * 8 * 128 // 2),
        (gqa(80, 8192, 64, num_kv_heads=8, num_experts=8, num_experts_per_tok=2), 10, 3, 8,
         2 * 80 * 3 * 10 * 8 * 128),
        (gqa(2, 100, 4, head_dim=32), 7, 1, 32, 2 * 2 * 7 * 4 * 32 * 4),
        (ModelVariant("seed order", 32, 4096, 32, 8, 32, 2), 2048, 1, 16, GIB),  # experts: no effect
    ],
)  # fmt: skip
def test_calculate_kv_cache_size(
    variant: ModelVariant, tokens: int, batch: int, bits: int, expected: int
) -> None:
    assert kv_cache_bytes(variant, tokens, batch, bits) == expected
    assert calculate_kv_cache_size(variant, tokens, batch, bits) == expected / GIB  # GiB, as the seed printed


def test_experts_do_not_change_kv() -> None:
    dense = gqa(48, 2048, 32, num_kv_heads=4)
    moe = gqa(
        48, 2048, 32, num_kv_heads=4, num_experts=128, num_experts_per_tok=8, expert_intermediate_size=768
    )
    assert calculate_kv_cache_size(dense, 4096) == calculate_kv_cache_size(moe, 4096)
    assert moe.active_experts == 8


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"num_layers": 0, "hidden_size": 64, "num_heads": 4}, "num_layers: must be ≥ 1"),
        ({"num_layers": 2, "hidden_size": 64, "num_heads": 4, "num_kv_heads": 3}, "num_kv_heads: 3 must"),
        ({"num_layers": 2, "hidden_size": 65, "num_heads": 4}, "head_dim: hidden_size 65 is not divisible"),
        ({"num_layers": 2, "hidden_size": 64}, "num_attention_heads: required"),
        (
            {"num_layers": 2, "hidden_size": 64, "num_heads": 4, "num_attention_heads": 8},
            "num_heads: 4 disagrees",
        ),
    ],
)
def test_variant_validation(kw: dict, message: str) -> None:
    with pytest.raises(KVCalcError, match=message):
        ModelVariant(**kw)


def test_calculate_memory_llama_8b() -> None:
    r = calculate_memory("Llama-3.1-8B-Instruct", batch_size=1, seq_length=4096, precision="fp16")
    assert r.parameter_count == 8_030_261_248
    assert r.weight_memory_bytes == 2 * 8_030_261_248
    assert r.kv_cache_bytes == 32 * 2 * 8 * 128 * 2 * 4096  # exact (ideal engine)
    assert r.state_memory_bytes == 0 and r.kv_cache_applicable and r.attention_type == "gqa"
    runtime = r.kv_cache_bytes + r.activation_memory_bytes
    assert (
        r.extra_work_bytes == round(runtime * 1.2) - runtime
    )  # overhead 1.2 on runtime memory, as in the seed
    assert r.total_memory_bytes == r.weight_memory_bytes + runtime + r.extra_work_bytes
    assert r.kv_cache_gb == r.kv_cache_bytes / GIB == 0.5  # GiB
    # the L4's CUDA-reported total (torch: 22.17 GiB), no longer nvidia-smi's 23,034 MiB
    assert r.recommended_gpu == "l4" and r.recommended_gpu_memory_gb == 22.17
    text = str(r)
    assert "KV cache:" in text and "0.50 GiB  (536,870,912 bytes)" in text
    assert text.count("activations and framework overhead are estimates") == 1
    assert r["total_memory_gb"] == r.total_memory_gb
    json.dumps(r.as_dict(), allow_nan=False)


def test_precisions() -> None:
    m = CATALOG.model("Qwen3-8B")
    fp16, int4 = calculate_memory(m, precision="fp16"), calculate_memory(m, precision="int4")
    assert int4.weight_memory_bytes < fp16.weight_memory_bytes / 2  # bf16 embeddings and lm_head stay
    assert int4.kv_cache_bytes == fp16.kv_cache_bytes  # integer weights keep an fp16 cache
    assert calculate_memory(m, precision="fp8").kv_cache_bytes == fp16.kv_cache_bytes // 2
    with pytest.raises(KVCalcError, match="precision: unknown 'int2'"):
        calculate_memory(m, precision="int2")


def test_hybrid_reports_state_memory() -> None:
    r = calculate_memory("Qwen3-Next-80B-A3B-Thinking", seq_length=4096, precision="bf16")
    assert r.attention_type == "hybrid" and r.state_memory_bytes > 0 and r.kv_cache_bytes > 0


def test_vision_tower_weights_shown_separately() -> None:
    r = calculate_memory("Qwen3.5-27B", precision="bf16")
    assert r.vision_memory_bytes == 2 * 460_730_096
    assert r.parameter_count == count_params(CATALOG.model("Qwen3.5-27B")).total_with_towers


def test_models_without_kv_cache_are_not_applicable() -> None:
    unet = {"_class_name": "UNet2DConditionModel", "_diffusers_version": "0.21.0", "sample_size": 64}
    r = calculate_memory(unet)
    assert not r.kv_cache_applicable and r.kv_cache_bytes is None and r.kv_cache_gb is None
    assert r.kv_cache_display == NOT_APPLICABLE
    assert analyze_attention_efficiency(unet)["efficiency_rating"] == NOT_APPLICABLE
    assert estimate_max_batch_size(unet, 80) == 0
    mamba = {"model_type": "mamba", "num_hidden_layers": 4, "hidden_size": 64, "vocab_size": 100}
    r = calculate_memory(mamba)
    assert not r.kv_cache_applicable and r.kv_cache_bytes is None and r.state_memory_bytes > 0


def test_compare_models() -> None:
    names = ["DeepSeek-V3", "Llama-3.1-70B", "gpt-oss-120b"]
    rows = compare_models([*names, "nobody/not-preloaded"], seq_length=131_072, precision="bf16")
    assert [r.get("model") for r in rows] == ["DeepSeek-V3", "Llama-3.1-70B", "gpt-oss-120b", None]
    assert rows[0]["kv_cache_bytes"] == 70_272 * 131_072 and rows[0]["attention_type"] == "mla"
    assert rows[1]["kv_cache_bytes"] == 327_680 * 131_072
    assert rows[3]["model_id"] == "nobody/not-preloaded" and "nobody/not-preloaded" in rows[3]["error"]
    with pytest.raises(KVCalcError, match="model_ids: expected a list"):
        compare_models("DeepSeek-V3")


@pytest.mark.parametrize(
    ("name", "gpu", "seq", "precision"),
    [
        ("Llama-3.1-8B-Instruct", "h100", 4096, "bf16"),
        ("Qwen3-8B", "l40s", 32_768, "bf16"),
        ("DeepSeek-V2-Lite", "a100-80gb", 8192, "fp16"),
        ("Qwen3-0.6B", "rtx-4090", 16_384, "bf16"),
        ("Mistral-7B-v0.1", "h200", 32_768, "fp8"),
    ],
)
def test_estimate_max_batch_size_agrees_with_plan(name: str, gpu: str, seq: int, precision: str) -> None:
    """Same arithmetic as `kvcalc plan MODEL --gpu G --max-model-len SEQ --gpu-memory-utilization 0.9`."""
    from kvcalc.deploy.gpus import get_gpu
    from kvcalc.deploy.plan import plan

    g = get_gpu(gpu)
    size = gpu if gpu.startswith("a100") else g.memory_bytes / GIB  # vLLM gives A100s max_num_seqs 256
    n = estimate_max_batch_size(name, gpu_memory_gb=size, seq_length=seq, precision=precision)
    p = plan(CATALOG.model(name), gpu=g, max_model_len=seq, weight_dtype=precision, kv_dtype=precision,
             gpu_memory_utilization=0.9)  # fmt: skip
    assert n == p.max_batch > 0


def test_estimate_max_batch_size_none_fit() -> None:
    assert estimate_max_batch_size("Llama-3.1-70B", gpu_memory_gb=24) == 0
    with pytest.raises(KVCalcError, match="gpu_memory_gb: expected a positive number of GiB"):
        estimate_max_batch_size("Llama-3.1-70B", gpu_memory_gb=0)


def test_analyze_attention_efficiency() -> None:
    a = analyze_attention_efficiency("Llama-3.1-8B-Instruct", [1024, 4096, 16_384])
    assert a["attention_type"] == "gqa" and a["efficiency_rating"] == "good"
    assert a["memory_per_token_bytes"] == a["memory_per_token_beyond_window_bytes"] == 131_072
    shares = [a["results"][n]["kv_cache_share"] for n in (1024, 4096, 16_384)]
    assert shares == sorted(shares) and 0 < shares[0] < shares[-1] < 1
    assert a["results"][4096]["kv_cache_bytes"] == 131_072 * 4096
    assert analyze_attention_efficiency("DeepSeek-V3")["efficiency_rating"] == "excellent"


def test_attention_efficiency_sliding_window() -> None:
    """Mistral-7B-v0.1: every layer slides over 4,096 tokens — a token costs 128 KiB while it is cached."""
    a = analyze_attention_efficiency("Mistral-7B-v0.1", [1024, 4096, 16_384, 32_768], precision="bf16")
    assert a["memory_per_token_bytes"] == 32 * 2 * 8 * 128 * 2 == 131_072
    assert a["memory_per_token_beyond_window_bytes"] == 0 and a["sliding_window"] == 4096
    assert a["memory_per_token"] == "131,072 within the window, 0 beyond"
    assert [a["results"][n]["kv_cache_bytes"] for n in (1024, 4096, 32_768)] == [
        1024 * 131_072,
        1 << 29,
        1 << 29,
    ]


def test_include_gradients_and_tensor_parallel() -> None:
    """llm-memory-calculator's keywords: gradients double the weights; tp splits weights and the cache."""
    one = calculate_memory("Llama-3.1-8B-Instruct", 1, 4096, "bf16")
    grad = calculate_memory("Llama-3.1-8B-Instruct", 1, 4096, "bf16", include_gradients=True)
    assert grad.weight_memory_bytes == 2 * one.weight_memory_bytes == 4 * 8_030_261_248
    tp2 = calculate_memory("Llama-3.1-8B-Instruct", 1, 4096, "bf16", tensor_parallel=2)
    assert tp2.kv_cache_bytes == one.kv_cache_bytes // 2  # 8 kv heads → 4 per GPU
    assert tp2.weight_memory_bytes < one.weight_memory_bytes and tp2.tensor_parallel == 2
