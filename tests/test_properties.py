"""Invariants for any config, including ones never seen: hypothesis generates them."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import kvcalc

ENGINES = ("ideal", "transformers", "vllm")
FLOAT_DTYPES = ("fp32", "bf16", "fp16")


@st.composite
def attention_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Plain-attention configs with optional sliding/chunked layers in any pattern."""
    kv = draw(st.sampled_from([1, 2, 4, 8]))
    heads = kv * draw(st.sampled_from([1, 2, 4, 8]))
    head_dim = draw(st.sampled_from([32, 64, 80, 128, 256]))
    layers = draw(st.integers(1, 12))
    cfg: dict[str, Any] = {
        "model_type": "llama",
        "hidden_size": heads * head_dim,
        "num_attention_heads": heads,
        "num_key_value_heads": kv,
        "num_hidden_layers": layers,
    }
    if draw(st.booleans()):
        cfg["head_dim"] = draw(st.sampled_from([64, 96, 128]))
    if draw(st.booleans()):
        cfg["sliding_window"] = draw(st.integers(2, 5000))
        cfg["attention_chunk_size"] = draw(st.integers(2, 5000))
        kinds = st.sampled_from(["full_attention", "sliding_attention", "chunked_attention"])
        cfg["layer_types"] = draw(st.lists(kinds, min_size=layers, max_size=layers))
    return cfg


@st.composite
def state_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Qwen3-Next-style hybrids: gated DeltaNet layers plus full attention."""
    layers = draw(st.integers(1, 8))
    return {
        "model_type": "qwen3_next",
        "hidden_size": 256,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 64,
        "num_hidden_layers": layers,
        "linear_num_key_heads": draw(st.sampled_from([2, 4])),
        "linear_key_head_dim": 32,
        "linear_num_value_heads": draw(st.sampled_from([4, 8])),
        "linear_value_head_dim": 32,
        "full_attention_interval": draw(st.integers(1, 4)),
    }


configs = st.one_of(attention_configs(), state_configs())
lengths = st.integers(0, 300_000)


@settings(max_examples=60, deadline=None)
@given(cfg=configs, length=lengths, batch=st.integers(1, 64), engine=st.sampled_from(ENGINES))
def test_linear_in_batch(cfg: dict[str, Any], length: int, batch: int, engine: str) -> None:
    model = kvcalc.load_model(cfg)
    one = kvcalc.kv_cache_bytes(model, length, engine=engine)
    assert kvcalc.kv_cache_bytes(model, length, batch_size=batch, engine=engine) == batch * one


@settings(max_examples=60, deadline=None)
@given(cfg=configs, a=lengths, b=lengths, engine=st.sampled_from(ENGINES))
def test_monotone_in_length(cfg: dict[str, Any], a: int, b: int, engine: str) -> None:
    model = kvcalc.load_model(cfg)
    lo, hi = sorted((a, b))
    assert kvcalc.kv_cache_bytes(model, lo, engine=engine) <= kvcalc.kv_cache_bytes(model, hi, engine=engine)


@settings(max_examples=60, deadline=None)
@given(cfg=attention_configs(), length=lengths)
def test_bounded_layers_stop_growing(cfg: dict[str, Any], length: int) -> None:
    """Past every window, only full layers grow, at exactly kv_bytes_per_token per token."""
    model = kvcalc.load_model(cfg)
    horizon = max(cfg.get("sliding_window", 0), cfg.get("attention_chunk_size", 0))
    at = kvcalc.kv_cache_bytes(model, horizon + length)
    later = kvcalc.kv_cache_bytes(model, horizon + length + 1000)
    assert later - at == 1000 * kvcalc.kv_bytes_per_token(model)
    assert at <= (horizon + length) * kvcalc.kv_bytes_per_token(model) + horizon * 2 * 8 * 256 * 2 * 12


@settings(max_examples=40, deadline=None)
@given(cfg=state_configs(), a=st.integers(1, 10**6), b=st.integers(1, 10**6))
def test_state_layers_are_constant(cfg: dict[str, Any], a: int, b: int) -> None:
    model = kvcalc.load_model(cfg)
    for engine in ENGINES:
        per_layer_a = kvcalc.layer_bytes(model, a, engine=engine)
        per_layer_b = kvcalc.layer_bytes(model, b, engine=engine)
        for layer, x, y in zip(model.layers, per_layer_a, per_layer_b, strict=True):
            if layer.kind == "gated_deltanet":
                assert x == y > 0


@settings(max_examples=60, deadline=None)
@given(cfg=configs, length=lengths, engine=st.sampled_from(["ideal", "vllm"]))
def test_dtype_order(cfg: dict[str, Any], length: int, engine: str) -> None:
    model = kvcalc.load_model(cfg)
    size = {
        d: kvcalc.kv_cache_bytes(model, length, kv_dtype=d, engine=engine) for d in ("fp8", "bf16", "fp32")
    }
    assert size["fp8"] <= size["bf16"] <= size["fp32"]


@settings(max_examples=30, deadline=None)
@given(cfg=configs, length=lengths, dtype=st.sampled_from(FLOAT_DTYPES))
def test_transformers_never_exceeds_ideal_for_attention(cfg: dict[str, Any], length: int, dtype: str) -> None:
    """transformers keeps window − 1 tokens where theory keeps window: never more."""
    model = kvcalc.load_model(cfg)
    hf = kvcalc.kv_cache_bytes(model, length, kv_dtype=dtype, engine="transformers")
    if all(layer.kind in ("full", "sliding", "chunked") for layer in model.layers):
        assert hf <= kvcalc.kv_cache_bytes(model, length, kv_dtype=dtype)


JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**15), 10**15)
    | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KEYS = [
    "num_hidden_layers", "hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim",
    "sliding_window", "layer_types", "model_type", "kv_lora_rank", "qk_rope_head_dim", "text_config",
    "hybrid_override_pattern", "linear_num_key_heads", "attention_chunk_size", "full_attention_interval",
    "use_sliding_window", "max_window_layers", "sliding_window_pattern", "num_kv_shared_layers",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(base=configs, overrides=st.dictionaries(st.sampled_from(KEYS), JSONISH, max_size=4))
def test_bad_configs_raise_only_kvcalc_error(base: dict[str, Any], overrides: dict[str, Any]) -> None:
    cfg = {**base, **overrides}
    try:
        model = kvcalc.load_model(cfg)
        for engine in ENGINES:
            size = kvcalc.kv_cache_bytes(model, 4096, engine=engine)
            assert isinstance(size, int) and size >= 0
    except kvcalc.KVCalcError:
        pass
