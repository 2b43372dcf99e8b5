"""TensorRT-LLM engine (PyTorch backend, V1 KV cache manager, 1.2 line).

Three kinds of tests:
1. TensorRT-LLM's own unit tests and docs, reproduced (file + test + the numbers they state);
2. real configs from configs/ with the bytes written out from the formulas of kvcalc/engines/trtllm.py;
3. hypothesis properties.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kvcalc
from kvcalc.engines import trtllm as t
from tests.shared_configs import hf_config

GIB = 1 << 30


def model(hf_id: str) -> kvcalc.Model:
    return kvcalc.load_model(hf_config(hf_id))


# --- 1. TensorRT-LLM's own tests and docs ------------------------------------------------------------

# tests/unittest/_torch/executor/test_resource_manager.py,
# TestResourceManager.test_adjust_window_sizes_for_vswa:
# windows {100: layers 0-3, 200: 4-6, 7000: 7-8}, 8 bytes per token per layer; (memory, expected, max_tokens).
VSWA_WINDOWS = {100: (0, 1, 2, 3), 200: (4, 5, 6), 7000: (7, 8)}
VSWA_CASES = [
    (
        "limited_memory_clamped_windows",
        8 * (100 * 9 + 30 * 5) + 4,
        {100: [0, 1, 2, 3], 130: [4, 5, 6, 7, 8]},
        None,
    ),
    (
        "less_limited_memory_clamped_windows",
        8 * (100 * 9 + 100 * 5 + 817 * 2) + 4,
        {100: [0, 1, 2, 3], 200: [4, 5, 6], 1017: [7, 8]},
        None,
    ),
    (
        "sufficient_memory_no_clamping",
        8 * (100 * 4 + 200 * 3 + 7000 * 2) + 9402,
        {100: [0, 1, 2, 3], 200: [4, 5, 6], 7000: [7, 8]},
        None,
    ),
    ("very_limited_memory_all_clamped", 8 * (51 * 9) + 1, {51: list(range(9))}, None),
    (
        "less_limited_memory_but_clamped_by_max_tokens",
        8 * (100 * 9 + 100 * 5 + 817 * 2) + 4,
        {100: [0, 1, 2, 3], 134: [4, 5, 6, 7, 8]},
        134,
    ),
]


@pytest.mark.parametrize(
    ("case", "memory", "expected", "max_tokens"), VSWA_CASES, ids=[c[0] for c in VSWA_CASES]
)
def test_upstream_adjust_window_sizes_for_vswa(
    case: str, memory: int, expected: dict[int, list[int]], max_tokens: int | None
) -> None:
    per_layer = dict.fromkeys(range(9), 8)
    adjusted = t.adjust_window_sizes_for_vswa(VSWA_WINDOWS, per_layer, memory, max_tokens)
    got: dict[int, list[int]] = {}
    for window, layers in VSWA_WINDOWS.items():
        got.setdefault(adjusted[window], []).extend(layers)
    assert got == expected


def test_upstream_calculate_max_num_blocks_from_cpp_pool_bytes() -> None:
    """test_resource_manager.py, test_calculate_max_num_blocks_from_cpp: free 128 MiB, fraction 0.1;
    ``max_gpu_total_bytes`` 32 MiB wins when set, else ``int(free · fraction)``."""
    free = 128 * 1024 * 1024
    assert t.vswa_primary_pool_bytes(free, 0.1, 32 * 1024 * 1024) == 32 * 1024 * 1024
    assert t.vswa_primary_pool_bytes(free, 0.1, 0) == int(free * 0.1) == 13_421_772


# A synthetic config, not a real model: the LlamaConfig of TensorRT-LLM's CPU-only int8 KV cache tests
# (test_int8_kv_estimation_uses_half_the_bf16_bytes / test_int8_kv_pool_accounting, main branch 2026):
# hidden 256, 4 heads, 2 KV heads, head_dim 64, 2 layers.
SYNTHETIC_TRTLLM_TEST_LLAMA = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 256,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "num_hidden_layers": 2,
    "vocab_size": 512,
    "torch_dtype": "bfloat16",
    "max_position_embeddings": 2048,
}


@pytest.mark.parametrize(("tp", "expected"), [(1, 2 * 2 * (2 // 1) * 64 * 2), (2, 2 * 2 * (2 // 2) * 64 * 2)])
def test_upstream_estimate_bytes_per_token(tp: int, expected: int) -> None:
    """The int8 test states ``int8 = 2·2·(2 // tp)·64`` and ``bf16 = 2 · int8`` for
    ``get_cache_size_per_token``: 1,024 B at tp 1, 512 B at tp 2."""
    m = kvcalc.load_model(SYNTHETIC_TRTLLM_TEST_LLAMA, name="synthetic TRT-LLM test llama")
    cfg = t.make_config(m, tensor_parallel_size=tp)
    assert t.estimate_bytes_per_token(m, cfg) == expected
    assert (
        t.estimate_bytes_per_token(m, t.make_config(m, tensor_parallel_size=tp, kv_cache_dtype="fp8"))
        == expected // 2
    )


def test_upstream_pool_accounting() -> None:
    """test_int8_kv_pool_accounting: 2 layers × 2 heads × head_dim 64, kv_factor 2 → BF16 1,024 B/token."""
    m = kvcalc.load_model(SYNTHETIC_TRTLLM_TEST_LLAMA, name="synthetic TRT-LLM test llama")
    assert t.layout(m, t.make_config(m)).bytes_per_token == 1024


def test_docs_defaults() -> None:
    """docs "How to Change KV Cache Behavior" (examples/kvcacheconfig): "The default for
    free_gpu_memory_fraction is 0.9, ... 90% of free GPU memory"; KvCacheConfig reference:
    tokens_per_block 32."""
    assert t.FREE_GPU_MEMORY_FRACTION == 0.9
    assert t.TOKENS_PER_BLOCK == 32


# --- 2. real configs ----------------------------------------------------------------------------------

LLAMA8_TOKEN = 32 * 2 * 8 * 128 * 2  # layers · (K, V) · kv heads · head_dim · bf16 = 131,072 B
BLOCKS_1000 = -(-1000 // 32)  # 32 blocks of 32 tokens

KV_BYTES = [
    # (hf id, seq_len, options, expected bytes per rank)
    ("meta-llama/Llama-3.1-8B", 1000, {}, BLOCKS_1000 * 32 * LLAMA8_TOKEN),
    ("meta-llama/Llama-3.1-8B", 1024, {}, 32 * 32 * LLAMA8_TOKEN),
    ("meta-llama/Llama-3.1-8B", 1025, {}, 33 * 32 * LLAMA8_TOKEN),
    ("meta-llama/Llama-3.1-8B", 1000, {"tensor_parallel_size": 2}, 32 * 32 * LLAMA8_TOKEN // 2),
    # 8 KV heads over 16 ranks: ceil(8/16) = 1 head per rank (replicated)
    ("meta-llama/Llama-3.1-8B", 1000, {"tensor_parallel_size": 16}, 32 * 32 * (32 * 2 * 1 * 128 * 2)),
    # attention DP: TP is 1 for the KV cache
    (
        "meta-llama/Llama-3.1-8B",
        1000,
        {"tensor_parallel_size": 8, "enable_attention_dp": True},
        32 * 32 * LLAMA8_TOKEN,
    ),
    ("meta-llama/Llama-3.1-8B", 1000, {"kv_cache_dtype": "fp8"}, 32 * 32 * LLAMA8_TOKEN // 2),
    # NVFP4: 65,536 elements per token → 32,768 B + one FP8 scale per 16 = 4,096 B
    ("meta-llama/Llama-3.1-8B", 1000, {"kv_cache_dtype": "nvfp4"}, 32 * 32 * (65_536 // 2 + 65_536 // 16)),
    ("meta-llama/Llama-3.1-8B", 1000, {"tokens_per_block": 64}, 16 * 64 * LLAMA8_TOKEN),
    # Qwen2.5-7B: 28 layers, 4 KV heads; tp 8 → 1 head per rank
    ("Qwen/Qwen2.5-7B-Instruct", 1000, {"tensor_parallel_size": 8}, 32 * 32 * (28 * 2 * 1 * 128 * 2)),
    # MLA: one latent of 512 + 64 per layer, kv_factor 1, not split by TP
    ("deepseek-ai/DeepSeek-V3", 1000, {}, 32 * 32 * (61 * 576 * 2)),
    ("deepseek-ai/DeepSeek-V3", 1000, {"tensor_parallel_size": 8}, 32 * 32 * (61 * 576 * 2)),
    # pipeline parallel: 61 layers over 2 stages → 31 on stage 0 (tensor_split gives the first the extra one)
    ("deepseek-ai/DeepSeek-V3", 1000, {"pipeline_parallel_size": 2}, 32 * 32 * (31 * 576 * 2)),
    ("deepseek-ai/DeepSeek-V3", 1000, {"pipeline_parallel_size": 2, "pp_rank": 1}, 32 * 32 * (30 * 576 * 2)),
    # a sliding window without max_attention_window is cached like full attention
    ("mistralai/Mistral-7B-v0.1", 10_000, {}, -(-10_000 // 32) * 32 * LLAMA8_TOKEN),
]


@pytest.mark.parametrize(("hf_id", "seq_len", "options", "expected"), KV_BYTES)
def test_kv_bytes_real_configs(hf_id: str, seq_len: int, options: dict[str, object], expected: int) -> None:
    assert t.kv_cache_bytes(model(hf_id), seq_len, **options) == expected


def test_sliding_window_context_vs_generation_mistral() -> None:
    """max_attention_window=[4096] on Mistral-7B-v0.1 (32 layers, window 4096 < max_seq_len 32768).

    Context: ``addSequence`` allocates cdiv(10000, 32) = 313 blocks. Generation: ``detachFrontBlock``
    has removed (10000 − 4096) // 32 = 184 blocks → 129 blocks.
    """
    m = model("mistralai/Mistral-7B-v0.1")
    kw = {"max_attention_window": [4096]}
    assert t.kv_cache_bytes(m, 10_000, **kw) == 313 * 32 * LLAMA8_TOKEN
    assert t.kv_cache_bytes(m, 10_000, phase="generation", **kw) == (313 - 184) * 32 * LLAMA8_TOKEN


def test_vswa_pools_gpt_oss() -> None:
    """gpt-oss-20b with its windows as max_attention_window: two pools, 12 layers each,
    12 · 2 · 8 · 64 · 2 = 24,576 B/token, block 786,432 B."""
    m = model("openai/gpt-oss-20b")
    windows = t.model_attention_windows(m, 131_072)
    lay = t.layout(m, t.make_config(m, max_attention_window=windows))
    assert [(p.window, len(p.layers), p.bytes_per_token) for p in lay.pools] == [
        (128, 12, 24_576),
        (131_072, 12, 24_576),
    ]
    block = 24_576 * 32
    assert t.kv_cache_bytes(m, 1000, max_attention_window=windows) == 2 * 32 * block
    # generation: the sliding pool keeps 32 − (1000 − 128) // 32 = 5 blocks
    assert t.kv_cache_bytes(m, 1000, max_attention_window=windows, phase="generation") == (5 + 32) * block


CAPACITY = [
    # (hf id, free bytes, options, blocks per pool, max_seq_len after validation)
    ("meta-llama/Llama-3.1-8B", 70 * GIB, {}, [int(70 * GIB * 0.9) // LLAMA8_TOKEN // 32], 131_072),
    # max_tokens 100,000 → 3,125 blocks = 100,000 tokens < 131,072: the window and max_seq_len shrink
    ("meta-llama/Llama-3.1-8B", 70 * GIB, {"max_tokens": 100_000}, [100_000 // 32], 100_000),
    # max_gpu_total_bytes is applied after max_tokens is set: no effect without VSWA
    (
        "meta-llama/Llama-3.1-8B",
        70 * GIB,
        {"max_gpu_total_bytes": GIB},
        [int(70 * GIB * 0.9) // LLAMA8_TOKEN // 32],
        131_072,
    ),
    (
        "meta-llama/Llama-3.1-8B",
        70 * GIB,
        {"free_gpu_memory_fraction": 0.5},
        [int(70 * GIB * 0.5) // LLAMA8_TOKEN // 32],
        131_072,
    ),
    # 128 MiB: 921 tokens → 28 blocks; the 131,072 window exceeds 28 · 32 = 896 → max_seq_len 896
    ("meta-llama/Llama-3.1-8B", 1 << 27, {}, [28], 896),
    (
        "mistralai/Mistral-7B-v0.1",
        10 * GIB,
        {"max_attention_window": [4096]},
        [int(10 * GIB * 0.9) // LLAMA8_TOKEN // 32],
        32_768,
    ),
    (
        "deepseek-ai/DeepSeek-V3",
        20 * GIB,
        {"tensor_parallel_size": 8},
        [int(20 * GIB * 0.9) // (61 * 576 * 2) // 32],
        163_840,
    ),
    # PP 2: stage 0 (31 layers) has the fewest tokens; all ranks take the MIN
    (
        "deepseek-ai/DeepSeek-V3",
        20 * GIB,
        {"pipeline_parallel_size": 2},
        [int(20 * GIB * 0.9) // (31 * 576 * 2) // 32],
        163_840,
    ),
]


@pytest.mark.parametrize(("hf_id", "free", "options", "blocks", "max_seq_len"), CAPACITY)
def test_capacity_real_configs(
    hf_id: str, free: int, options: dict[str, object], blocks: list[int], max_seq_len: int
) -> None:
    cap = t.capacity(model(hf_id), free, **options)
    assert [p.blocks for p in cap.pools] == blocks
    assert cap.max_seq_len == max_seq_len
    assert all(p.bytes == p.blocks * p.block_bytes for p in cap.pools)


def test_capacity_vswa_equal_shares_gpt_oss() -> None:
    """40 GiB → budget int(40 GiB · 0.9) = max_gpu_total_bytes; each of the 2 windows gets half:
    19,327,352,832 / 24,576 B = 786,432 tokens = 24,576 blocks."""
    m = model("openai/gpt-oss-20b")
    cap = t.capacity(m, 40 * GIB, max_attention_window=t.model_attention_windows(m, 131_072))
    budget = int(40 * GIB * 0.9)
    assert cap.kv_cache_max_memory == budget
    assert [(p.window, p.blocks) for p in cap.pools] == [(128, int(budget * 0.5 / 24_576 // 32))] + [
        (131_072, int(budget * 0.5 / 24_576 // 32))
    ]
    assert cap.pools[0].blocks == 24_576


def test_capacity_vswa_windows_clamped_gpt_oss() -> None:
    """max_gpu_total_bytes 1 GiB: one 131,072-token sequence (3,224,371,200 B) does not fit, so
    adjust_window_sizes_for_vswa keeps 128 for the sliding layers (128 · 49,152 B) and gives the
    full layers 128 + (2^30 − 128·49,152) // 24,576 = 43,562; equal shares: int(2^29 / 24,576 // 32)
    = 682 blocks each, and 43,562 > 682 · 32 = 21,824 cuts that window and max_seq_len to 21,824."""
    m = model("openai/gpt-oss-20b")
    cap = t.capacity(
        m, 80 * GIB, max_attention_window=t.model_attention_windows(m, 131_072), max_gpu_total_bytes=GIB
    )
    assert 128 + (GIB - 128 * 49_152) // 24_576 == 43_562
    assert [(p.window, p.blocks) for p in cap.pools] == [(128, 682), (21_824, 682)]
    assert cap.max_seq_len == 21_824


def test_capacity_replicated_heads_needs_free_at_creation() -> None:
    """tp 16 > 8 KV heads: the creator's estimate 2·32·(128·8 // 16)·2 = 8,192 B/token is half the real
    16,384, so calculate_max_num_blocks' cap fraction·free_now/16,384 decides."""
    m = model("meta-llama/Llama-3.1-8B")
    with pytest.raises(kvcalc.KVCalcError, match="free_bytes_at_creation"):
        t.capacity(m, 70 * GIB, tensor_parallel_size=16)
    cap = t.capacity(m, 70 * GIB, tensor_parallel_size=16, free_bytes_at_creation=70 * GIB)
    assert cap.estimate_bytes_per_token == 8192 and cap.bytes_per_token == 16_384
    assert cap.max_tokens == int(70 * GIB * 0.9) // 8192
    assert cap.blocks == int(0.9 * 70 * GIB / 16_384) // 32 == 129_024


@pytest.mark.parametrize(
    ("hf_id", "message"),
    [
        ("nvidia/Nemotron-H-56B-Base-8K", "MambaHybridCacheManager"),
        ("Qwen/Qwen3-Next-80B-A3B-Thinking", "MambaHybridCacheManager"),
        ("deepseek-ai/DeepSeek-V3.2", "indexer"),
        ("zai-org/GLM-5", "indexer"),
    ],
)
def test_unmodeled_models_refused(hf_id: str, message: str) -> None:
    with pytest.raises(kvcalc.KVCalcError, match=message):
        t.kv_cache_bytes(model(hf_id), 1000)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kv_cache_dtype": "q8_0"}, "kv_cache_dtype"),
        ({"tokens_per_block": 48}, "tokens_per_block"),
        ({"tensor_parallel_size": 3}, "tensor_parallel_size"),
        ({"max_seq_len": 512}, "seq_len"),
        ({"phase": "decode"}, "phase"),
    ],
)
def test_bad_options_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(kvcalc.KVCalcError, match=message):
        t.kv_cache_bytes(model("meta-llama/Llama-3.1-8B"), 1000, **options)


def test_too_little_memory_refused() -> None:
    with pytest.raises(kvcalc.KVCalcError, match="free_bytes"):
        t.capacity(model("meta-llama/Llama-3.1-8B"), 1 << 20)


# --- 3. properties -------------------------------------------------------------------------------------

LLAMA = model("meta-llama/Llama-3.1-8B")
DSV3 = model("deepseek-ai/DeepSeek-V3")
GPT_OSS = model("openai/gpt-oss-20b")
OSS_WINDOWS = t.model_attention_windows(GPT_OSS, 131_072)
lengths = st.integers(min_value=0, max_value=131_072)


@settings(max_examples=60, deadline=None)
@given(a=lengths, b=lengths)
def test_monotone_in_length(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    assert t.kv_cache_bytes(LLAMA, lo) <= t.kv_cache_bytes(LLAMA, hi)
    assert t.kv_cache_bytes(GPT_OSS, lo, max_attention_window=OSS_WINDOWS) <= t.kv_cache_bytes(
        GPT_OSS, hi, max_attention_window=OSS_WINDOWS
    )


@settings(max_examples=40, deadline=None)
@given(n=lengths, batch=st.integers(min_value=1, max_value=64))
def test_linear_in_batch(n: int, batch: int) -> None:
    assert t.kv_cache_bytes(LLAMA, n, batch_size=batch) == batch * t.kv_cache_bytes(LLAMA, n)


@settings(max_examples=40, deadline=None)
@given(n=lengths)
def test_fp8_halves_bf16(n: int) -> None:
    for m in (LLAMA, DSV3):
        assert 2 * t.kv_cache_bytes(m, n, kv_cache_dtype="fp8") == t.kv_cache_bytes(m, n)


@settings(max_examples=40, deadline=None)
@given(n=lengths, tp=st.sampled_from([1, 2, 4, 8]))
def test_tp_splits_heads_not_latents(n: int, tp: int) -> None:
    assert tp * t.kv_cache_bytes(LLAMA, n, tensor_parallel_size=tp) == t.kv_cache_bytes(LLAMA, n)
    assert t.kv_cache_bytes(DSV3, n, tensor_parallel_size=tp) == t.kv_cache_bytes(DSV3, n)


@settings(max_examples=60, deadline=None)
@given(n=lengths)
def test_generation_keeps_the_window(n: int) -> None:
    """After detaching, a sliding pool holds at most the context's blocks and still every token of
    the window: blocks·32 ≥ min(L, 128)."""
    lay = t.layout(GPT_OSS, t.make_config(GPT_OSS, max_attention_window=OSS_WINDOWS))
    sliding = lay.pools[0]
    gen = t.request_blocks(sliding, n, lay.max_seq_len, "generation")
    assert gen <= t.request_blocks(sliding, n, lay.max_seq_len, "context")
    assert gen * 32 >= min(n, sliding.window)
    assert gen <= -(-(sliding.window + 32) // 32) + 1


@settings(max_examples=40, deadline=None)
@given(a=st.integers(min_value=GIB, max_value=200 * GIB), b=st.integers(min_value=GIB, max_value=200 * GIB))
def test_capacity_monotone_and_within_budget(a: int, b: int) -> None:
    lo, hi = sorted((a, b))
    small, big = t.capacity(LLAMA, lo), t.capacity(LLAMA, hi)
    assert small.blocks <= big.blocks
    assert big.pool_bytes <= big.kv_cache_max_memory <= int(hi * 0.9)


# --- 4. command line -----------------------------------------------------------------------------------


def _cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    import json

    from kvcalc.cli.main import main

    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_cli_kv_trtllm(capsys: pytest.CaptureFixture[str]) -> None:
    d = _cli_json(capsys, "kv", "Llama-3.1-8B", "--engine", "trtllm", "--seq-len", "1000", "--tp", "2")
    assert d["bytes"] == 32 * 32 * LLAMA8_TOKEN // 2
    assert d["tokens_per_block"] == 32 and d["kv_cache_dtype"] == "bf16"
    d = _cli_json(
        capsys, "kv", "gpt-oss-20b", "--engine", "trtllm", "--seq-len", "1000",
        "--max-attention-window", "model", "--phase", "generation", "--kv-cache-dtype", "fp8",
    )  # fmt: skip
    assert [(p["window"], p["blocks"]) for p in d["pools"]] == [(128, 5), (131_072, 32)]  # type: ignore[index,union-attr]
    assert d["bytes"] == (5 + 32) * 24_576 * 32 // 2


def test_cli_plan_trtllm(capsys: pytest.CaptureFixture[str]) -> None:
    d = _cli_json(capsys, "plan", "Llama-3.1-8B", "--engine", "trtllm", "--free-bytes", "70GiB")
    assert d["kv_cache_max_memory"] == int(70 * GIB * 0.9)
    assert d["blocks"] == int(70 * GIB * 0.9) // LLAMA8_TOKEN // 32 == 16_128
    assert d["log"] == [
        "Estimated max memory in KV cache : 63.00 GiB",
        "[MemUsageChange] Allocated 63.00 GiB for max tokens in paged KV cache (516096).",
    ]
    d = _cli_json(
        capsys, "plan", "Llama-3.1-8B", "--engine", "trtllm", "--free-bytes", "70GiB",
        "--free-gpu-memory-fraction", "0.5", "--max-tokens", "100k",
    )  # fmt: skip
    assert d["max_tokens"] == 102_400 and d["blocks"] == 3200


def test_cli_plan_trtllm_needs_free_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    from kvcalc.cli.main import main

    assert main(["plan", "Llama-3.1-8B", "--engine", "trtllm"]) == 2
    assert "free_bytes" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"tensor_parallel_size": "2"}, "tensor_parallel_size"),
        ({"tensor_parallel_size": True}, "tensor_parallel_size"),
        ({"pipeline_parallel_size": 0}, "pipeline_parallel_size"),
        ({"max_attention_window": "4096"}, "max_attention_window"),
        ({"max_attention_window": [0]}, "max_attention_window"),
        ({"enable_attention_dp": "yes"}, "enable_attention_dp"),
        ({"pp_rank": 1}, "pp_rank"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_inputs_name_the_field(options: dict[str, object], message: str) -> None:
    with pytest.raises(kvcalc.KVCalcError, match=message):
        t.kv_cache_bytes(model("meta-llama/Llama-3.1-8B"), 1000, **options)


def test_engine_interface_layer_bytes() -> None:
    """``layer_bytes`` (kvcalc.engines.base interface): per layer, its pool's blocks × its share of a
    block × batch; gpt-oss-20b generation at 1,000 tokens, batch 2: sliding 5 · 2,048 · 32 · 2 B."""
    from types import SimpleNamespace

    options = {**t.OPTIONS, "max_attention_window": OSS_WINDOWS, "phase": "generation"}
    req = SimpleNamespace(
        seq_len=1000, batch_size=2, kv_dtype="bf16", tensor_parallel_size=1, options=options
    )
    t.check(GPT_OSS, req)
    per_layer = t.layer_bytes(GPT_OSS, req)
    assert per_layer[:2] == [5 * 2048 * 32 * 2, 32 * 2048 * 32 * 2]
    assert sum(per_layer) == 2 * t.kv_cache_bytes(
        GPT_OSS, 1000, max_attention_window=OSS_WINDOWS, phase="generation"
    )


# --- 5. every preloaded config: bytes per token per rank from config.json's own fields ------------------


def _config_bytes_per_token(cfg: dict[str, object], tp: int) -> int:
    """TensorRT-LLM's formula on the raw config: MLA (kv_lora_rank + qk_rope_head_dim)·layers·2 B;
    otherwise 2·ceil(num_key_value_heads / tp)·head_dim·layers·2 B (head_dim = hidden / heads when absent;
    GPT-2 names them n_layer / n_head / n_embd; Falcon's multi_query means one KV head)."""
    text = cfg.get("text_config") or cfg
    assert isinstance(text, dict)
    layers = int(text.get("num_hidden_layers") or text["n_layer"])
    if text.get("kv_lora_rank"):
        return (int(text["kv_lora_rank"]) + int(text["qk_rope_head_dim"])) * layers * 2
    heads = int(text.get("num_attention_heads") or text["n_head"])
    kv = 1 if text.get("multi_query") else int(text.get("num_key_value_heads") or heads)
    hidden = int(text.get("hidden_size") or text["n_embd"])
    head_dim = int(text.get("head_dim") or hidden // heads)
    return 2 * -(-kv // tp) * head_dim * layers * 2


def _supported_ids() -> list[str]:
    from tests.shared_configs import hf_ids

    out = []
    for hf_id in hf_ids():
        try:
            t.cache_layers(model(hf_id))
        except kvcalc.KVCalcError:
            continue
        out.append(hf_id)
    return out


@pytest.mark.parametrize("hf_id", _supported_ids())
@pytest.mark.parametrize("tp", [1, 8])
def test_bytes_per_token_from_raw_config(hf_id: str, tp: int) -> None:
    m = model(hf_id)
    kv = {leaf.kv_heads for leaf in t.cache_layers(m)}.pop()
    if kv > tp and kv % tp:
        with pytest.raises(kvcalc.KVCalcError, match="tensor_parallel_size"):
            t.layout(m, t.make_config(m, tensor_parallel_size=tp, max_seq_len=1 << 20))
        return
    lay = t.layout(m, t.make_config(m, tensor_parallel_size=tp, max_seq_len=1 << 20))
    assert lay.bytes_per_token == _config_bytes_per_token(hf_config(hf_id), tp)


def test_registered_engine() -> None:
    """``kvcalc.kv_cache_bytes(..., engine="trtllm")``: bytes one request's blocks occupy per rank."""
    m = model("meta-llama/Llama-3.1-8B")
    assert "trtllm" in kvcalc.ENGINES
    assert (
        kvcalc.kv_cache_bytes(m, 1000, engine="trtllm", tensor_parallel_size=2) == 32 * 32 * LLAMA8_TOKEN // 2
    )
    assert kvcalc.kv_cache_bytes(m, 1000, engine="trtllm", kv_dtype="fp8", tokens_per_block=64) == 16 * 64 * (
        LLAMA8_TOKEN // 2
    )
    kw = {"engine": "trtllm", "max_attention_window": OSS_WINDOWS, "phase": "generation"}
    assert kvcalc.breakdown(GPT_OSS, 1000, **kw) == {
        "sliding": 12 * 5 * 2048 * 32,
        "full": 12 * 32 * 2048 * 32,
    }
    with pytest.raises(kvcalc.KVCalcError, match="phase"):
        kvcalc.kv_cache_bytes(m, 1000, engine="trtllm", phase="decode")
    with pytest.raises(kvcalc.KVCalcError, match="MambaHybridCacheManager"):
        kvcalc.kv_cache_bytes(model("nvidia/Nemotron-H-56B-Base-8K"), 1000, engine="trtllm")
