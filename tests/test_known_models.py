"""The well-known comparison at 131,072 tokens, BF16, ideal engine — from the real configs."""

from __future__ import annotations

import pytest

import kvcalc
from tests.shared_configs import hf_config

GIB = 1 << 30
L = 131_072

# hf id, bytes per token, GiB at 128K (as printed in the comparison table, 2 decimals)
KNOWN = [
    ("deepseek-ai/DeepSeek-V3", 70_272, "8.58"),
    ("deepseek-ai/DeepSeek-R1", 70_272, "8.58"),
    ("moonshotai/Kimi-K2-Instruct", 70_272, "8.58"),
    ("MiniMaxAI/MiniMax-M2.7", 253_952, "31.00"),
    ("Qwen/Qwen3-235B-A22B", 192_512, "23.50"),
    ("Qwen/Qwen2.5-7B-Instruct", 57_344, "7.00"),
    ("mistralai/Mixtral-8x7B-v0.1", 131_072, "16.00"),
    ("meta-llama/Llama-3.1-70B", 327_680, "40.00"),
    ("meta-llama/Llama-3.1-8B", 131_072, "16.00"),
]


@pytest.mark.parametrize(("hf_id", "per_token", "gib"), KNOWN, ids=[k[0] for k in KNOWN])
def test_comparison_table(hf_id: str, per_token: int, gib: str) -> None:
    model = kvcalc.load_model(hf_config(hf_id))
    assert kvcalc.kv_bytes_per_token(model) == per_token
    total = kvcalc.kv_cache_bytes(model, L)
    assert total == per_token * L
    assert f"{total / GIB:.2f}" == gib


def test_mistral_7b_v01_bounded_by_window() -> None:
    model = kvcalc.load_model(hf_config("mistralai/Mistral-7B-v0.1"))
    window_bytes = 32 * 2 * 8 * 128 * 2 * 4096  # layers · (K,V) · kv heads · head_dim · bf16 · window
    assert window_bytes == 512 * (1 << 20)
    for length in (4096, 8192, L, 10_000_000):
        assert kvcalc.kv_cache_bytes(model, length) == window_bytes
    assert kvcalc.kv_cache_bytes(model, 4095) < window_bytes
    assert kvcalc.kv_bytes_per_token(model) == 0


# Transformers-engine rules worked by hand (TRANSFORMERS_CACHE_RULES.md), bf16, batch 1.
HF_CASES = [
    # gpt-oss-120b: 18 sliding layers keep 127 tokens, 18 full keep L; 8 kv heads × 64 × 2 (K,V) × 2 B.
    ("openai/gpt-oss-120b", 5000, 18 * 127 * 2048 + 18 * 5000 * 2048),
    # Mistral-7B-v0.1: every layer sliding, keeps window − 1 = 4095 tokens.
    ("mistralai/Mistral-7B-v0.1", 5000, 32 * 4095 * 4096),
    # DeepSeek-V3.2: latent 512 + rope 64 + indexer 128 = 704 elements per token per layer.
    ("deepseek-ai/DeepSeek-V3.2", 300, 61 * 300 * 704 * 2),
    # GLM-5: 78 DSA layers.
    ("zai-org/GLM-5", 1, 78 * 704 * 2),
    # Qwen3-Next: 36 DeltaNet (conv [2·16·128 + 32·128 = 8192, 4] bf16 + state [32,128,128] fp32)
    #             + 12 full layers (2 kv heads × 256).
    (
        "Qwen/Qwen3-Next-80B-A3B-Thinking",
        300,
        36 * (8192 * 4 * 2 + 32 * 128 * 128 * 4) + 12 * 300 * 2 * 2 * 256 * 2,
    ),
    # Nemotron-H-56B: 54 Mamba2 (conv [20480, 4] bf16 + ssm [256, 64, 256] fp32) + 10 attention (8 × 128).
    (
        "nvidia/Nemotron-H-56B-Base-8K",
        1,
        54 * (20480 * 4 * 2 + 256 * 64 * 256 * 4) + 10 * 1 * 2 * 8 * 128 * 2,
    ),
]


@pytest.mark.parametrize(("hf_id", "length", "expected"), HF_CASES, ids=[c[0] for c in HF_CASES])
def test_transformers_rules_by_hand(hf_id: str, length: int, expected: int) -> None:
    model = kvcalc.load_model(hf_config(hf_id))
    assert kvcalc.kv_cache_bytes(model, length, engine="transformers") == expected
    assert kvcalc.kv_cache_bytes(model, length, engine="transformers", batch_size=3) == 3 * expected
