"""Parameter counts and weight bytes from the config alone — no torch needed.

The totals below were measured with transformers 5.23 on the meta device
(``sum(p.numel() for p in model.parameters())``, tied weights once); tests/test_params_transformers.py
re-measures them. Active = everything but routed experts + top_k of num_experts in every MoE layer.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kvcalc
from kvcalc.core.catalog import load_catalog
from kvcalc.core.params import (
    PARTS,
    WEIGHT_FORMATS,
    WeightFormat,
    checkpoint_weight_format,
    count_params,
    get_weight_format,
    weight_bytes,
)

CATALOG = load_catalog()
GIB = 1 << 30


def model(name: str) -> kvcalc.Model:
    return CATALOG.model(name)


# GUIDE §5: known exact totals (billions, 3 decimals).
GUIDE = [
    ("meta-llama/Llama-3.1-8B", "8.030", "8.030"),
    ("mistralai/Mixtral-8x7B-v0.1", "46.703", "12.880"),
    ("deepseek-ai/DeepSeek-V3", "671.026", "37.552"),
    ("openai/gpt-oss-120b", "116.829", "5.712"),
    ("Qwen/Qwen3-Next-80B-A3B-Thinking", "79.674", "3.875"),
]


@pytest.mark.parametrize(("hf_id", "total", "active"), GUIDE, ids=[g[0] for g in GUIDE])
def test_guide_totals(hf_id: str, total: str, active: str) -> None:
    p = count_params(model(hf_id))
    assert f"{p.total / 1e9:.3f}" == total
    assert f"{p.active / 1e9:.3f}" == active


# hf id, total (transformers, meta device), active
EXACT = [
    ("deepseek-ai/DeepSeek-R1", 671_026_404_352, 37_552_282_624),
    ("deepseek-ai/DeepSeek-V2-Lite", 15_706_484_224, 2_661_150_208),
    ("deepseek-ai/DeepSeek-V3", 671_026_404_352, 37_552_282_624),
    ("deepseek-ai/DeepSeek-V3.2", 671_877_929_216, 38_403_807_488),
    ("meta-llama/Llama-2-7b-hf", 6_738_415_616, 6_738_415_616),
    ("meta-llama/Llama-3.1-405B", 405_853_388_800, 405_853_388_800),
    ("meta-llama/Llama-3.1-70B", 70_553_706_496, 70_553_706_496),
    ("meta-llama/Llama-3.1-70B-Instruct", 70_553_706_496, 70_553_706_496),
    ("meta-llama/Llama-3.1-8B", 8_030_261_248, 8_030_261_248),
    ("meta-llama/Llama-3.1-8B-Instruct", 8_030_261_248, 8_030_261_248),
    ("meta-llama/Llama-3.2-3B", 3_212_749_824, 3_212_749_824),
    ("meta-llama/Llama-3.3-70B-Instruct", 70_553_706_496, 70_553_706_496),
    ("MiniMaxAI/MiniMax-M2.7", 228_689_748_992, 11_030_537_216),
    ("mistralai/Mistral-7B-Instruct-v0.3", 7_248_023_552, 7_248_023_552),
    ("mistralai/Mistral-7B-v0.1", 7_241_732_096, 7_241_732_096),
    ("mistralai/Mixtral-8x22B-v0.1", 140_620_634_112, 39_152_031_744),
    ("mistralai/Mixtral-8x7B-Instruct-v0.1", 46_702_792_704, 12_879_925_248),
    ("mistralai/Mixtral-8x7B-v0.1", 46_702_792_704, 12_879_925_248),
    ("moonshotai/Kimi-K2-Instruct", 1_026_408_209_408, 32_861_477_888),
    ("nvidia/Nemotron-H-56B-Base-8K", 56_324_350_464, 56_324_350_464),
    ("openai/gpt-oss-120b", 116_829_156_672, 5_711_982_912),
    ("openai/gpt-oss-20b", 20_914_757_184, 4_187_440_704),
    ("Qwen/Qwen2.5-1.5B-Instruct", 1_543_714_304, 1_543_714_304),
    ("Qwen/Qwen2.5-32B", 32_763_876_352, 32_763_876_352),
    ("Qwen/Qwen2.5-3B-Instruct", 3_085_938_688, 3_085_938_688),
    ("Qwen/Qwen2.5-7B-Instruct", 7_615_616_512, 7_615_616_512),
    ("Qwen/Qwen3-0.6B", 596_049_920, 596_049_920),
    ("Qwen/Qwen3-1.7B", 1_720_574_976, 1_720_574_976),
    ("Qwen/Qwen3-14B", 14_768_307_200, 14_768_307_200),
    ("Qwen/Qwen3-235B-A22B", 235_093_634_560, 22_190_763_520),
    ("Qwen/Qwen3-235B-A22B-FP8", 235_093_634_560, 22_190_763_520),
    ("Qwen/Qwen3-30B-A3B", 30_532_122_624, 3_353_032_704),
    ("Qwen/Qwen3-30B-A3B-FP8", 30_532_122_624, 3_353_032_704),
    ("Qwen/Qwen3-32B", 32_762_123_264, 32_762_123_264),
    ("Qwen/Qwen3-8B", 8_190_735_360, 8_190_735_360),
    ("Qwen/Qwen3-Next-80B-A3B-Thinking", 79_674_391_296, 3_874_929_408),
    ("Qwen/Qwen3.5-27B", 26_895_998_464, 26_895_998_464),
    ("Qwen/Qwen3.5-35B-A3B", 34_660_610_688, 3_454_988_928),
    ("zai-org/GLM-5", 743_911_199_232, 41_784_709_632),
    # issue 11's real configs (totals measured on the meta device; T5 and Whisper: the seq2seq model)
    ("zai-org/GLM-4.5", 352_797_814_784, 33_632_251_904),
    ("MiniMaxAI/MiniMax-M2.1", 228_689_748_992, 11_030_537_216),
    ("Qwen/Qwen2.5-72B-Instruct", 72_706_203_648, 72_706_203_648),
    ("google-t5/t5-small", 60_506_624, 60_506_624),
    ("openai/whisper-large-v3", 1_543_490_560, 1_543_490_560),
    ("ai21labs/Jamba-v0.1", 51_570_323_328, 12_110_311_296),
    ("state-spaces/mamba-130m-hf", 129_135_360, 129_135_360),
    ("state-spaces/mamba2-2.7b", 2_702_599_680, 2_702_599_680),
    ("tiiuae/falcon-7b", 6_921_720_704, 6_921_720_704),
    ("microsoft/phi-2", 2_779_683_840, 2_779_683_840),
    ("openai-community/gpt2", 124_439_808, 124_439_808),
]


@pytest.mark.parametrize(("hf_id", "total", "active"), EXACT, ids=[e[0] for e in EXACT])
def test_exact_totals(hf_id: str, total: int, active: int) -> None:
    p = count_params(model(hf_id))
    assert (p.total, p.active) == (total, active)
    assert p.exact
    assert sum(p.parts[k] for k in PARTS if k not in ("vision", "audio")) == p.total


def test_every_catalog_model_has_a_table_row() -> None:
    assert sorted(e.id for e in CATALOG) == sorted(e[0] for e in EXACT)


def test_llama_3_1_8b_by_part() -> None:
    p = count_params(model("Llama-3.1-8B"))
    v, h, layers, inter, kv_dim = 128_256, 4096, 32, 14_336, 8 * 128
    assert p.embeddings == v * h
    assert p.lm_head == v * h  # untied
    assert p.attention == layers * (h * h + 2 * kv_dim * h + h * h)
    assert p.mlp == layers * 3 * h * inter
    assert p.norms == layers * 2 * h + h
    assert p.experts == p.router == p.mixers == 0


def test_tied_embeddings_counted_once() -> None:
    p = count_params(model("Qwen2.5-1.5B-Instruct"))
    assert p.tied_embeddings and p.lm_head == 0
    assert p.embeddings == 151_936 * 1536


def test_mixtral_active_written_out() -> None:
    p = count_params(model("Mixtral-8x7B-v0.1"))
    per_expert = 3 * 4096 * 14_336
    assert p.experts == 32 * 8 * per_expert
    assert p.router == 32 * 8 * 4096
    assert p.active == p.total - p.experts + 32 * 2 * per_expert


def test_deepseek_v3_parts() -> None:
    p = count_params(model("DeepSeek-V3"))
    assert p.experts == 58 * 256 * 3 * 7168 * 2048
    assert p.shared_experts == 58 * 3 * 7168 * 2048
    assert p.mlp == 3 * 3 * 7168 * 18_432
    assert p.router == 58 * 256 * 7168
    assert (p.num_experts, p.experts_per_token) == (256, 8)


def test_qwen3_5_vision_tower_counted_apart() -> None:
    p = count_params(model("Qwen3.5-27B"))
    assert p.total == 26_895_998_464
    assert p.vision == 460_730_096  # transformers Qwen3_5ForConditionalGeneration, model.visual
    assert p.total_with_towers == 27_356_728_560
    assert count_params(model("Qwen3.5-35B-A3B")).vision == 446_571_248


def test_unknown_architecture_is_refused() -> None:
    """Synthetic config of a made-up type: its cache is computed (unverified), its parameters refused."""
    cfg = {"model_type": "made_up", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4,
           "intermediate_size": 128, "vocab_size": 100}  # fmt: skip
    m = kvcalc.load_model(cfg)
    assert not m.verified
    with pytest.raises(kvcalc.KVCalcError, match="model_type: parameters of 'made_up' are not counted"):
        count_params(m)


def test_count_params_rejects_non_models() -> None:
    with pytest.raises(kvcalc.KVCalcError, match="model"):
        count_params({"model_type": "llama"})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------
# weight bytes


def test_checkpoint_formats() -> None:
    assert checkpoint_weight_format(model("DeepSeek-V3")).name == "fp8_block"
    assert checkpoint_weight_format(model("Qwen3-30B-A3B-FP8")).name == "fp8_block"
    assert checkpoint_weight_format(model("gpt-oss-120b")).name == "mxfp4"
    assert checkpoint_weight_format(model("Llama-3.1-8B")).name == "bf16"
    assert checkpoint_weight_format(model("Llama-2-7b-hf")).name == "fp16"


@pytest.mark.parametrize("name", [e.id for e in CATALOG])
def test_unquantised_bytes_are_params_times_width(name: str) -> None:
    m = model(name)
    p = count_params(m)
    assert weight_bytes(m, "bf16", params=p).total == 2 * p.total_with_towers
    assert weight_bytes(m, "fp32", params=p).total == 4 * p.total_with_towers
    assert weight_bytes(m, "bf16", include_towers=False, params=p).total == 2 * p.total
    for fmt in ("fp8_block", "int8", "int4", "mxfp4", "nvfp4"):
        assert weight_bytes(m, fmt, params=p).total < 2 * p.total_with_towers


def test_llama_8b_bf16() -> None:
    assert weight_bytes(model("Llama-3.1-8B")).total == 2 * 8_030_261_248 == 16_060_522_496


def test_llama_70b_fp8_per_channel_written_out() -> None:
    # RedHatAI/Llama-3.3-70B-Instruct-FP8-dynamic: vLLM reports 67.72 GiB (this + 32 MiB rotary cache).
    layers, h, kv, inter = 80, 8192, 1024, 28_672
    quantised = layers * (h * h + 2 * kv * h + h * h + 3 * inter * h)
    assert quantised == 68_451_041_280
    rows = layers * (h + 2 * kv + h + 2 * inter + h)  # one fp32 scale per output channel
    rest = 70_553_706_496 - quantised  # embeddings, lm_head, norms in bf16
    expected = quantised * 1 + rows * 4 + rest * 2
    assert weight_bytes(model("Llama-3.3-70B-Instruct"), "fp8_channel").total == expected == 72_683_241_472
    assert f"{expected / GIB:.2f}" == "67.69"


def test_gpt_oss_20b_mxfp4_written_out() -> None:
    e, h, i, layers = 32, 2880, 2880, 24
    matrix = i * h // 2 + i * (h // 32)  # 4-bit data + one e8m0 byte per 32 inputs
    per_expert = 3 * matrix + 3 * 2880 * 2  # gate, up, down (+ bf16 biases)
    experts = layers * e * per_expert
    expert_params = layers * e * (3 * h * i + 3 * 2880)
    rest = (20_914_757_184 - expert_params) * 2
    assert weight_bytes(model("gpt-oss-20b")).total == experts + rest == 13_761_264_768


def test_fp8_block_scale_per_matrix() -> None:
    fmt = get_weight_format("fp8_block")
    # DeepSeek-V3 q_b_proj [24576, 1536]: fp8 data + fp32 scale per 128×128 tile
    assert fmt.matrix_bits(24_576, 1536) == 8 * (24_576 * 1536 + 192 * 12 * 4)
    assert fmt.matrix_bits(576, 7168) == 8 * (576 * 7168 + 5 * 56 * 4)  # 576 rows → 5 tiles


def test_int4_group_128_written_out() -> None:
    m = model("Llama-3.1-8B")
    h, kv, inter, layers, v = 4096, 1024, 14_336, 32, 128_256
    mats = [(h, h), (kv, h), (kv, h), (h, h), (inter, h), (inter, h), (h, inter)]
    linear = layers * sum(o * i // 2 + o * (i // 128) * 20 // 8 for o, i in mats)
    rest = (2 * v * h + layers * 2 * h + h) * 2
    assert weight_bytes(m, "int4").total == linear + rest
    gptq = linear + layers * sum(i * 4 for _, i in mats) + rest  # + int32 g_idx per input column
    assert weight_bytes(m, "int4_gptq").total == gptq


def test_tensor_parallel_sharding_llama_8b() -> None:
    m = model("Llama-3.1-8B")
    norms = (32 * 2 * 4096 + 4096) * 2  # replicated on every rank
    assert weight_bytes(m, tensor_parallel_size=2).total == (16_060_522_496 - norms) // 2 + norms
    # tp 16 > 8 KV heads: every rank keeps one whole KV head of k_proj and v_proj
    tp16 = weight_bytes(m, tensor_parallel_size=16)
    sharded = (16_060_522_496 - norms - 32 * 2 * 1024 * 4096 * 2) // 16
    assert tp16.total == sharded + norms + 32 * 2 * 128 * 4096 * 2


def test_vocab_padding_rounds_embeddings() -> None:
    cfg = {"model_type": "llama", "num_hidden_layers": 1, "hidden_size": 8, "num_attention_heads": 2,
           "intermediate_size": 16, "vocab_size": 100, "torch_dtype": "bfloat16"}  # fmt: skip
    m = kvcalc.load_model(cfg)
    plain = weight_bytes(m).parts["embeddings"]
    assert plain == 100 * 8 * 2
    assert weight_bytes(m, vocab_padding=64).parts["embeddings"] == 128 * 8 * 2


def test_unknown_weight_format() -> None:
    with pytest.raises(kvcalc.KVCalcError, match="weight_dtype: unknown weight format 'int3'"):
        weight_bytes(model("Llama-3.1-8B"), "int3")


def test_gptq_config_group_size() -> None:
    cfg = dict(model("Qwen3-8B").config)
    cfg["quantization_config"] = {"quant_method": "gptq", "bits": 4, "group_size": 64}
    fmt = checkpoint_weight_format(kvcalc.load_model(cfg))
    assert (fmt.bits, fmt.group, fmt.group_bits, fmt.col_bits) == (4, 64, 20, 32)


# ------------------------------------------------------------------------------------------------
# properties


@st.composite
def llama_configs(draw: st.DrawFn) -> dict:
    heads = draw(st.sampled_from([1, 2, 4, 8]))
    kv = draw(st.sampled_from([k for k in (1, 2, 4, 8) if heads % k == 0]))
    return {
        "model_type": "llama",
        "num_hidden_layers": draw(st.integers(1, 64)),
        "hidden_size": heads * draw(st.integers(1, 64)),
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "intermediate_size": draw(st.integers(1, 4096)),
        "vocab_size": draw(st.integers(1, 200_000)),
        "tie_word_embeddings": draw(st.booleans()),
    }


@given(llama_configs())
@settings(max_examples=60, deadline=None)
def test_params_affine_in_layers(cfg: dict) -> None:
    """P(L) = fixed + L · per_layer: adding layers adds the same amount each time."""
    counts = [count_params(kvcalc.load_model({**cfg, "num_hidden_layers": n})).total for n in (1, 2, 3)]
    assert counts[2] - counts[1] == counts[1] - counts[0] > 0


@given(llama_configs(), st.sampled_from(sorted(WEIGHT_FORMATS)))
@settings(max_examples=60, deadline=None)
def test_weights_linear_in_layers(cfg: dict, fmt: str) -> None:
    """Every format prices each layer identically: bytes are affine in the layer count."""
    sizes = [weight_bytes(kvcalc.load_model({**cfg, "num_hidden_layers": n}), fmt).total for n in (1, 2, 3)]
    assert sizes[2] - sizes[1] == sizes[1] - sizes[0] > 0


@given(llama_configs(), st.sampled_from([2, 4, 8, 16]))
@settings(max_examples=60, deadline=None)
def test_tensor_parallel_never_adds_per_rank_bytes(cfg: dict, tp: int) -> None:
    m = kvcalc.load_model(cfg)
    one = weight_bytes(m).total
    rank = weight_bytes(m, tensor_parallel_size=tp).total
    assert rank <= one
    assert rank * tp >= one  # replicated pieces make the ranks sum to at least the whole


def test_weight_format_is_frozen_data() -> None:
    fmt = WeightFormat("x", 4, group=32, group_bits=8)
    assert fmt.quantized and fmt.matrix_bits(2, 64) == 2 * 64 * 4 + 2 * 2 * 8
