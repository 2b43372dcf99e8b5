"""vLLM engine: worked examples from GUIDE §4, arithmetic written out."""

from __future__ import annotations

import pytest

import kvcalc
from kvcalc.engines import vllm_layer_pages
from tests.shared_configs import hf_config


def model(hf_id: str) -> kvcalc.Model:
    return kvcalc.load_model(hf_config(hf_id))


def test_block_rounding_llama_8b() -> None:
    m = model("meta-llama/Llama-3.1-8B")
    page = 16 * 8 * (128 + 128) * 2  # block · kv heads · (hk + hv) · bf16 = 65,536 B
    blocks = -(-1000 // 16)  # 63 blocks hold 1,000 tokens
    assert kvcalc.kv_cache_bytes(m, 1000, engine="vllm") == 32 * blocks * page == 132_120_576
    assert kvcalc.kv_cache_bytes(m, 1000) == 1000 * 131_072  # ideal: no rounding
    assert kvcalc.kv_cache_bytes(m, 1024, engine="vllm") == kvcalc.kv_cache_bytes(m, 1024)
    assert kvcalc.kv_cache_bytes(m, 1000, engine="vllm", block_size=32) == 32 * 32 * 2 * page


def test_sliding_window_gpt_oss_pages() -> None:
    m = model("openai/gpt-oss-120b")
    page = 16 * 8 * (64 + 64) * 2  # 32,768 B
    in_flight = 2 * 8192  # max_concurrent_batches · max_num_batched_tokens
    sliding_blocks = -(-min(128 - 1 + in_flight, 131_072) // 16) + 1
    assert sliding_blocks == 1033  # not cdiv(128, 16) = 8
    full_blocks = 131_072 // 16
    expected = 18 * sliding_blocks * page + 18 * full_blocks * page
    assert kvcalc.kv_cache_bytes(m, 131_072, engine="vllm") == expected
    # a short prompt: min(...) picks L, plus the one extra block
    assert kvcalc.kv_cache_bytes(m, 100, engine="vllm") == 18 * (7 + 1) * page + 18 * 7 * page


def test_mla_not_split_by_tp() -> None:
    m = model("deepseek-ai/DeepSeek-V3")
    page = 16 * (512 + 64) * 2  # one latent "head", no ×2: 18,432 B
    expected = 61 * (131_072 // 16) * page
    for tp in (1, 8):
        assert kvcalc.kv_cache_bytes(m, 131_072, engine="vllm", tensor_parallel_size=tp) == expected


def test_gqa_split_then_replicated_by_tp() -> None:
    m = model("meta-llama/Llama-3.1-70B")  # 8 kv heads, 80 layers
    per_head_page = 16 * (128 + 128) * 2
    blocks = 8192 // 16
    assert (
        kvcalc.kv_cache_bytes(m, 8192, engine="vllm", tensor_parallel_size=4)
        == 80 * blocks * 2 * per_head_page
    )
    for tp in (8, 16):  # 1 head per rank; at tp 16 each head is held by two ranks
        assert (
            kvcalc.kv_cache_bytes(m, 8192, engine="vllm", tensor_parallel_size=tp)
            == 80 * blocks * per_head_page
        )


def test_tp_must_divide_kv_heads() -> None:
    m = model("Qwen/Qwen2.5-7B-Instruct")  # 4 kv heads
    assert kvcalc.kv_cache_bytes(m, 16, engine="vllm", tensor_parallel_size=8) > 0  # replicated
    with pytest.raises(kvcalc.KVCalcError, match="tensor_parallel_size"):
        kvcalc.kv_cache_bytes(m, 16, engine="vllm", tensor_parallel_size=3)


def test_fp8_scales() -> None:
    m = model("meta-llama/Llama-3.1-8B")
    bf16 = kvcalc.kv_cache_bytes(m, 4096, engine="vllm")
    assert kvcalc.kv_cache_bytes(m, 4096, engine="vllm", kv_dtype="fp8") * 2 == bf16  # per-tensor scale
    page = 16 * 8 * (128 + 128) * 1 + 2 * 16 * 8 * 4  # fp8 data + fp32 k and v scale per token-head
    assert page == 33_792
    got = kvcalc.kv_cache_bytes(m, 4096, engine="vllm", kv_dtype="fp8_per_token_head")
    assert got == 32 * (4096 // 16) * page
    nvfp4_page = 16 * 8 * 2 * (128 // 2 + 128 // 16)  # 4-bit data + one fp8 scale per 16
    assert kvcalc.kv_cache_bytes(m, 4096, engine="vllm", kv_dtype="nvfp4") == 32 * 256 * nvfp4_page


def test_sparse_mla_indexer_and_fp8_ds_mla() -> None:
    m = model("deepseek-ai/DeepSeek-V3.2")
    bf16_token = (512 + 64) * 2 + 132  # latent bf16 + indexer (128 fp8 + fp32 scale)
    assert kvcalc.kv_cache_bytes(m, 1024, engine="vllm") == 61 * 1024 * bf16_token
    fp8_token = 656 + 132  # fp8_ds_mla: 512 fp8 + 4 fp32 scales + 64 bf16 rope
    assert 512 + 4 * 4 + 64 * 2 == 656
    assert kvcalc.kv_cache_bytes(m, 1024, engine="vllm", kv_dtype="fp8") == 61 * 1024 * fp8_token


def test_mamba_hybrid_nemotron_h() -> None:
    m = model("nvidia/Nemotron-H-56B-Base-8K")
    conv = (4 - 1) * (256 * 64 + 2 * 8 * 256) * 2  # (kernel − 1) · conv channels · bf16
    ssm = 256 * 64 * 256 * 4  # heads · head_dim · state, fp32 for Nemotron-H
    state = conv + ssm
    assert state == 16_900_096
    attn_token = 8 * (128 + 128) * 2  # one token of one attention layer: 4,096 B
    block = 16 * -(-state // (16 * attn_token))  # attention block raised until its page ≥ the state
    assert block == 4128
    page = block * attn_token  # mamba page padded up to this
    per_request = 10 * -(-8192 // block) * page + 54 * 3 * page  # 3 mamba pages with prefix caching
    assert kvcalc.kv_cache_bytes(m, 8192, engine="vllm") == per_request
    no_prefix = 10 * 2 * page + 54 * 1 * page
    assert kvcalc.kv_cache_bytes(m, 8192, engine="vllm", enable_prefix_caching=False) == no_prefix


def test_qwen3_next_state_in_model_dtype() -> None:
    m = model("Qwen/Qwen3-Next-80B-A3B-Thinking")
    conv = (4 - 1) * (2 * 16 * 128 + 32 * 128) * 2
    ssm = 32 * 128 * 128 * 2  # vLLM keeps Qwen3-Next's recurrent state in the model dtype
    attn_token = 2 * (256 + 256) * 2
    block = 64 * -(-(conv + ssm) // (64 * attn_token))  # prefix caching on: kba = lcm(16, 64) for GDN
    page = block * attn_token
    expected = 12 * -(-4096 // block) * page + 36 * 3 * page
    assert kvcalc.kv_cache_bytes(m, 4096, engine="vllm") == expected


@pytest.mark.parametrize(
    ("prefix_caching", "block", "page", "total"),
    [(True, 832, 3_407_872, 763_363_328), (False, 784, 3_211_264, 16 * 6 * 3_211_264 + 48 * 3_211_264)],
)
def test_gdn_hybrid_block_alignment_guide_example(
    prefix_caching: bool, block: int, page: int, total: int
) -> None:
    """GUIDE §4 worked example, Qwen3.5-27B bf16 tp 1, one 4,096-token request: with prefix caching the
    attention block is aligned to lcm(16, 64) (gated delta net checkpoints) → 832; without it → 784."""
    m = model("Qwen/Qwen3.5-27B")
    pages = vllm_layer_pages(m, 4096, enable_prefix_caching=prefix_caching)
    attn = [p for layer in pages for p in layer if p.kind == "full"]
    assert {p.block_size for p in attn} == {block}
    assert {p.page_bytes for layer in pages for p in layer} == {page}
    assert kvcalc.kv_cache_bytes(m, 4096, engine="vllm", enable_prefix_caching=prefix_caching) == total
