"""Deployment plans under vLLM, with the arithmetic written out (GUIDE §4)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvcalc import KVCalcError
from kvcalc.core.catalog import load_catalog
from kvcalc.core.params import weight_bytes
from kvcalc.deploy.plan import budget, fits, plan, recommend

CATALOG = load_catalog()
MIB, GIB = 1 << 20, 1 << 30
H100 = 85_029_158_912  # CUDA-reported total of an H100 80GB (79.19 GiB)
# CUDA-reported totals from published logs (these replaced nvidia-smi's 24,564 / 143,771 MiB, which CUDA
# never reports): torch "total capacity of 23.64 GiB" on an RTX 4090, vLLM "(139.21/139.81 GiB)" on an H200.
RTX_4090 = round(23.64 * GIB)
H200 = round(139.81 * GIB)
# The CUDA-graph pool vLLM ≥ 0.21 profiles into the budget: the median of the published "Estimated CUDA graph
# memory" lines that captured batches up to 512 (max_num_seqs ≥ 512, bench/vllm_logs/fit.json) is 0.71 GiB,
# which replaced the 0.5 GiB guess; smaller GPUs (max_num_seqs 256) get 0.365 GiB.
NON_TORCH_TP1, NON_TORCH_TPN, CUDAGRAPH = 140 * MIB, 563 * MIB, round(0.71 * GIB)
CUDAGRAPH_SMALL = round(0.365 * GIB)


def model(name: str):  # noqa: ANN201
    return CATALOG.model(name)


def test_llama_8b_on_h100_written_out() -> None:
    pl = plan(model("Llama-3.1-8B-Instruct"), gpu="H100", max_model_len=16_000)
    requested = math.ceil(H100 * 0.92)
    weights = 2 * 8_030_261_248  # bf16, vocab 128,256 is already a multiple of 64
    rope = 131_072 * 128 * 2  # cos/sin cache: max_position × head_dim × bf16
    activation = 39 * 1024 * 128_256  # sampler warm-up: 39 B/logit × max_num_seqs 1024 × vocab
    budget = requested - weights - rope - activation - NON_TORCH_TP1 - CUDAGRAPH
    page = 16 * 8 * (128 + 128) * 2  # block · kv heads · (hk + hv) · bf16 = 65,536
    per_block = 32 * page  # one page in each of the 32 layers
    blocks = budget // per_block
    per_request = 16_000 // 16  # cdiv(16,000, 16) blocks
    assert (pl.requested_bytes, pl.weights_bytes, pl.buffers_bytes) == (requested, weights, rope)
    assert (pl.activation_bytes, pl.non_torch_bytes) == (activation, NON_TORCH_TP1)
    assert pl.cudagraph_bytes == CUDAGRAPH
    assert pl.kv_budget_bytes == budget
    assert (pl.page_bytes, pl.group_size, pl.bytes_per_block) == (page, 32, per_block)
    assert (pl.num_blocks, pl.blocks_per_request) == (blocks, per_request)
    assert pl.max_concurrency == blocks / per_request
    assert pl.kv_tokens == int(blocks / per_request * 16_000)
    assert pl.max_batch == blocks // per_request
    assert pl.per_request_bytes == per_request * per_block
    assert pl.max_context == 131_072  # the whole model limit fits
    assert pl.fits and pl.min_gpus is None
    assert pl.message.startswith("fits on 1 × NVIDIA H100 80GB (SXM)")


def test_llama_8b_budget_near_vllm_measurement() -> None:
    """vLLM 0.11.0 on an H100 at 0.9: 'Available KV cache memory: 51.38 GiB' (llm-d empirical results);
    0.11 captured CUDA graphs after sizing the cache, so nothing is subtracted for them."""
    pl = plan(model("Llama-3.1-8B-Instruct"), gpu="H100", max_model_len=16_000, vllm_version="0.11.0")
    assert pl.gpu_memory_utilization == 0.9 and pl.cudagraph_bytes == 0 and pl.vllm_version == "0.8"
    assert abs(pl.kv_budget_bytes / GIB - 51.38) < 0.05
    lo, hi = pl.kv_budget_range
    assert lo <= 51.38 * GIB <= hi


def test_llama_8b_on_rtx_4090_does_not_fit_128k() -> None:
    pl = plan(model("Llama-3.1-8B-Instruct"), gpu="rtx 4090")
    requested = math.ceil(RTX_4090 * 0.92)
    activation = 39 * 256 * 128_256  # max_num_seqs 256 below 70 GiB
    budget = requested - 2 * 8_030_261_248 - 131_072 * 128 * 2 - activation - NON_TORCH_TP1 - CUDAGRAPH_SMALL
    blocks = budget // (32 * 65_536)
    assert pl.max_model_len == 131_072  # default: the config's max_position_embeddings
    assert (pl.kv_budget_bytes, pl.num_blocks) == (budget, blocks)
    assert pl.per_request_bytes == 131_072 // 16 * 32 * 65_536 == 16 * GIB
    assert pl.max_context == 16 * blocks  # largest L with cdiv(L, 16) ≤ blocks
    assert not pl.fits and pl.min_gpus == 2
    assert "does not fit on 1 × NVIDIA GeForce RTX 4090 24GB" in pl.message
    assert f"max context {16 * blocks:,}" in pl.message
    assert pl.message.endswith("need ≥ 2 × NVIDIA GeForce RTX 4090 24GB")
    short = plan(model("Llama-3.1-8B-Instruct"), gpu="rtx 4090", max_model_len=32_768)
    assert short.fits and short.max_concurrency == blocks / 2048


def test_deepseek_v3_on_8_h200_written_out() -> None:
    m = model("DeepSeek-V3")
    pl = plan(m, gpu="h200", num_gpus=8)
    weights = weight_bytes(m, tensor_parallel_size=8, vocab_padding=64).total  # fp8_block, sharded (estimate)
    # the sampler warm-up beats the MoE forward (8,192 tokens × top-8 × (3 · 2048 / tp + 7168) × bf16)
    activation = max(39 * 1024 * 129_280, 8192 * 8 * (3 * 2048 // 8 + 7168) * 2)
    budget = math.ceil(H200 * 0.92) - weights - 163_840 * 64 * 2 - activation - NON_TORCH_TPN - CUDAGRAPH
    page = 16 * (512 + 64) * 2  # MLA latent, one "head", not split by TP
    blocks = budget // (61 * page)
    assert (pl.weight_format, pl.tensor_parallel_size, pl.max_model_len) == ("fp8_block", 8, 163_840)
    assert (pl.activation_bytes, pl.kv_budget_bytes) == (activation, budget)
    assert (pl.page_bytes, pl.bytes_per_block, pl.num_blocks) == (18_432, 61 * 18_432, blocks)
    assert pl.blocks_per_request == 163_840 // 16 == 10_240
    assert pl.kv_tokens == int(blocks / 10_240 * 163_840)
    assert pl.fits and pl.max_batch == blocks // 10_240 >= 4


def test_gpt_oss_groups_full_and_sliding_layers() -> None:
    m = model("gpt-oss-120b")
    pl = plan(m, gpu="h100", max_model_len=16_000)
    # 18 full + 18 sliding layers: two groups of 18 sharing each block; page 16 · 8 · (64 + 64) · 2
    assert (pl.group_size, pl.page_bytes, pl.bytes_per_block) == (18, 32_768, 18 * 32_768)
    full = 16_000 // 16
    sliding = math.ceil(min(128 - 1 + 2 * 8192, 16_000) / 16) + 1
    assert pl.blocks_per_request == full + sliding == 2001
    long = plan(m, gpu="h200", max_model_len=131_072)
    assert long.blocks_per_request == 131_072 // 16 + 1033  # GUIDE: W = 128 → 1,033 blocks, not 9


def test_qwen3_next_hybrid_groups() -> None:
    pl = plan(model("Qwen3-Next-80B-A3B-Thinking"), gpu="h100", num_gpus=4)
    # 12 attention + 36 Gated DeltaNet layers → groups of 12; vLLM raises the block so one attention page
    # (1 KV head per rank · (256 + 256) · bf16 per token) holds a whole mamba state: 272 tokens would do,
    # but with prefix caching on the block is a multiple of lcm(16, 64) for gated delta net → 320.
    assert pl.group_size == 12
    assert pl.page_bytes == 320 * 1 * (256 + 256) * 2
    assert pl.blocks_per_request == math.ceil(262_144 / 320) + 3 * 3  # full group + 3 state groups × 3 pages
    assert any("block size to 320" in n for n in pl.notes)


def test_llama_70b_needs_four_h100() -> None:
    pl = plan(model("Llama-3.1-70B-Instruct"), gpu="h100")
    assert not pl.fits and pl.kv_budget_bytes < 0
    assert "weights and overheads exceed" in pl.message
    assert pl.min_gpus == 4 and pl.message.endswith("need ≥ 4 × NVIDIA H100 80GB (SXM)")
    assert plan(model("Llama-3.1-70B-Instruct"), gpu="h100", num_gpus=4).fits


def test_batch_size_must_fit() -> None:
    m = model("Llama-3.1-8B-Instruct")
    base = plan(m, gpu="h100", max_model_len=16_000)
    assert plan(m, gpu="h100", max_model_len=16_000, batch_size=base.max_batch).fits
    over = plan(m, gpu="h100", max_model_len=16_000, batch_size=base.max_batch + 1)
    assert not over.fits and "concurrent requests fit" in over.message


def test_data_parallel_replicas() -> None:
    m = model("Llama-3.1-8B-Instruct")
    one = plan(m, gpu="h100", max_model_len=16_000)
    dp = plan(m, gpu="h100", num_gpus=4, tensor_parallel_size=1, max_model_len=16_000)
    assert dp.replicas == 4 and dp.kv_tokens == one.kv_tokens
    assert dp.max_batch == 4 * int(one.max_concurrency)  # whole requests per replica


def test_measured_overrides_replace_estimates() -> None:
    pl = plan(model("Qwen3-0.6B"), gpu="h100", max_model_len=16_000, activation_bytes=5_970_000_000,
              non_torch_bytes=0, cudagraph_bytes=0)  # fmt: skip
    assert (pl.activation_bytes, pl.non_torch_bytes, pl.cudagraph_bytes) == (5_970_000_000, 0, 0)
    assert pl.kv_budget_bytes == pl.requested_bytes - pl.weights_bytes - pl.buffers_bytes - 5_970_000_000


def test_plan_is_json_ready() -> None:
    data = plan(model("gpt-oss-20b"), gpu="h100", max_model_len=16_000).as_dict()
    assert json.loads(json.dumps(data, allow_nan=False))["kv_tokens"] == data["kv_tokens"]
    assert "activation_bytes" in data["estimated"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"gpu": "h100", "num_gpus": 3, "tensor_parallel_size": 2}, "num_gpus: 3 is not a multiple"),
        ({"gpu": "h100", "num_gpus": 3}, "tensor_parallel_size: 3 does not divide num_attention_heads 32"),
        ({"gpu": "h100", "engine": "ideal"}, "engine: plan follows vLLM"),
        ({"gpu": "h100", "gpu_memory_utilization": 1.5}, "gpu_memory_utilization: expected a number in"),
        ({"gpu": "h100", "max_model_len": 0}, "max_model_len: must be ≥ 1"),
        ({"gpu": "h100", "kv_dtype": "fp7"}, "kv_dtype: unknown dtype"),
        ({"gpu": "h100", "weight_dtype": "int3"}, "weight_dtype: unknown weight format"),
        ({"gpu": "z9"}, "gpu: 'z9' is not in the catalog"),
    ],
)
def test_bad_arguments_name_the_field(kw: dict, message: str) -> None:
    with pytest.raises(KVCalcError, match=message):
        plan(model("Llama-3.1-8B-Instruct"), **kw)


def test_recommend_smallest_fitting_configurations() -> None:
    m = model("Llama-3.1-70B-Instruct")
    plans = recommend(m, max_model_len=32_768, gpus=["h100", "h200", "b200", "l40s"])
    assert [(p.gpu, p.num_gpus) for p in plans] == [("b200", 1), ("h200", 2), ("l40s", 4), ("h100", 4)]
    for p in plans:
        assert p.fits
        if p.num_gpus > 1:
            assert not plan(m, gpu=p.gpu, num_gpus=p.num_gpus // 2, max_model_len=32_768).fits
    assert all(not p.gpu.startswith("apple") for p in recommend(m, max_model_len=32_768))


NAMES = ["Qwen3-0.6B", "Llama-3.1-8B-Instruct", "Mistral-7B-v0.1", "gpt-oss-20b", "DeepSeek-V2-Lite",
         "Qwen3-Next-80B-A3B-Thinking", "Qwen3-30B-A3B-FP8", "Llama-3.1-70B-Instruct"]  # fmt: skip


@given(
    st.sampled_from(NAMES),
    st.sampled_from(["h100", "l40s", "rtx-4090", "a100-40gb", "h200"]),
    st.integers(1, 262_144),
    st.sampled_from([1, 2, 4]),
)
@settings(max_examples=40, deadline=None)
def test_more_gpus_never_fit_less(name: str, gpu: str, length: int, n: int) -> None:
    m = model(name)
    small = plan(m, gpu=gpu, num_gpus=n, max_model_len=length)
    big = plan(m, gpu=gpu, num_gpus=2 * n, max_model_len=length)
    assert big.kv_budget_bytes >= small.kv_budget_bytes
    assert big.max_context >= small.max_context
    if small.fits:
        assert big.fits


@given(st.sampled_from(NAMES[:6]), st.integers(1, 131_072), st.floats(0.5, 0.95), st.floats(0.0, 0.04))
@settings(max_examples=40, deadline=None)
def test_monotone_in_utilisation_and_length(name: str, length: int, util: float, more: float) -> None:
    m = model(name)
    low = plan(m, gpu="h200", max_model_len=length, gpu_memory_utilization=util)
    high = plan(m, gpu="h200", max_model_len=length, gpu_memory_utilization=util + more)
    assert high.num_blocks >= low.num_blocks
    longer = plan(m, gpu="h200", max_model_len=length + 4096, gpu_memory_utilization=util)
    assert longer.max_concurrency <= low.max_concurrency
    assert longer.per_request_bytes >= low.per_request_bytes


@pytest.mark.parametrize(
    ("name", "gpu", "tp", "seq", "batch", "kv_dtype"),
    [
        ("Llama-3.1-8B-Instruct", "H100", 1, 131_072, 1, "bf16"),
        ("Llama-3.1-8B-Instruct", "H100", 1, 131_072, 64, "fp8"),
        ("Llama-3.1-8B-Instruct", "L4", 1, 32_768, 1, "bf16"),
        ("Llama-3.3-70B-Instruct", "H100", 1, 8_192, 1, "bf16"),
        ("Llama-3.3-70B-Instruct", "H100", 2, 131_072, 4, "fp8"),
        ("gpt-oss-20b", "H100", 1, 131_072, 16, "bf16"),
    ],
)
def test_budget_and_fits_agree_with_plan(
    name: str, gpu: str, tp: int, seq: int, batch: int, kv_dtype: str
) -> None:
    """The page's light path (budget once per GPU/TP, fits per context) is plan()'s own arithmetic."""
    m = model(name)
    pl = plan(m, gpu=gpu, num_gpus=tp, max_model_len=seq, batch_size=batch, kv_dtype=kv_dtype)
    b = budget(m, gpu=gpu, tensor_parallel_size=tp)
    assert b.kv == pl.kv_budget_bytes and b.weights == pl.weights_bytes
    kw = {"max_model_len": seq, "batch_size": batch, "tensor_parallel_size": tp, "kv_dtype": kv_dtype}
    assert fits(m, b, gpu=gpu, **kw) == pl.fits
