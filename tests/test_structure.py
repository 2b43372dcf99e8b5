"""Per-layer structure keys: read as transformers reads them, or refused — never guessed past (issue 11).

Real configs from configs/ where one exists; synthetic configs are built from a real one by changing one
documented key and are named as such.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kvcalc
from kvcalc.core.config import BUILDER_READS, PLAIN_READS, STRUCTURE_IGNORED, structure_keys
from tests.shared_configs import hf_config, hf_ids

#: Llama 4 Scout's text geometry as its config.json ships it (48 layers, chunk 8192,
#: ``"no_rope_layers": []``); everything else from Llama4TextConfig's defaults.
LLAMA4_SCOUT_TEXT = {
    "model_type": "llama4_text", "hidden_size": 5120, "num_attention_heads": 40, "num_key_value_heads": 8,
    "head_dim": 128, "num_hidden_layers": 48, "attention_chunk_size": 8192, "no_rope_layers": [],
    "vocab_size": 202048,
}  # fmt: skip


def kinds_per_layer(cfg: dict[str, Any]) -> list[str]:
    return [layer.kind for layer in kvcalc.load_model(cfg).layers]


def test_llama4_empty_no_rope_layers_is_the_class_default() -> None:
    """Llama4TextConfig: ``no_rope_layers if no_rope_layers else default`` — every 4th layer global."""
    kinds = kinds_per_layer(LLAMA4_SCOUT_TEXT)
    assert kinds == ["full" if (i + 1) % 4 == 0 else "chunked" for i in range(48)]
    without = {k: v for k, v in LLAMA4_SCOUT_TEXT.items() if k != "no_rope_layers"}
    assert kinds_per_layer(without) == kinds


def test_layer_types_empty_list_is_refused_as_transformers_does() -> None:
    """validate_layer_type: num_hidden_layers must equal len(layer_types) — [] is an error there too."""
    cfg = {**hf_config("openai/gpt-oss-20b"), "layer_types": []}
    with pytest.raises(kvcalc.KVCalcError, match="layer_types: has 0 entries for 24 layers"):
        kvcalc.load_model(cfg)


def test_unknown_type_honours_use_sliding_window_false() -> None:
    """Synthetic: Qwen2.5-7B renamed to a remote-code type, sliding_window set, use_sliding_window false."""
    real = hf_config("Qwen/Qwen2.5-7B-Instruct")
    synthetic = {**real, "model_type": "synthetic_qwen2_remote", "sliding_window": 4096,
                 "use_sliding_window": False}  # fmt: skip
    model = kvcalc.load_model(synthetic)
    assert not model.verified
    assert set(model.kinds()) == {"full"}
    for engine in ("transformers", "vllm"):
        assert kvcalc.kv_cache_bytes(model, 32768, engine=engine) == kvcalc.kv_cache_bytes(
            kvcalc.load_model(real), 32768, engine=engine
        )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("block_configs", [{"attention": {"n_heads_in_group": 8}}] * 28),
        ("hybrid_override_pattern", "M*" * 14),
        ("attn_layer_period", 4),
        ("attn_layer_offset", 1),
        ("layers_block_type", ["mamba", "attention"] * 14),
        ("global_attn_every_n_layers", 3),
        ("max_window_layers", 14),  # only with use_sliding_window: true (set below)
    ],
)
def test_unknown_type_refuses_unread_structure(key: str, value: Any) -> None:
    """Synthetic: Qwen2.5-7B renamed to a remote-code type, plus one per-layer structure key."""
    cfg = {**hf_config("Qwen/Qwen2.5-7B-Instruct"), "model_type": "synthetic_remote", key: value}
    cfg["use_sliding_window"] = key == "max_window_layers"
    with pytest.raises(kvcalc.KVCalcError, match=f"^{key}: per-layer structure kvcalc does not read"):
        kvcalc.load_model(cfg)


def test_every_real_config_passes_the_structure_guard() -> None:
    for hf_id in hf_ids():
        kvcalc.load_model(hf_config(hf_id))


#: Structure keys kvcalc reads for some architecture, with a value shaped like the real ones.
def _value(key: str, n: int) -> Any:
    return {
        "block_configs": [{"attention": {"no_op": True}, "ffn": {"no_op": True}}] * n,
        "hybrid_override_pattern": "M-*" * n,
        "layers_block_type": ["mamba"] * n,
        "attn_layer_period": 2,
        "attn_layer_offset": 1,
        "attn_layer_indices": [0],
        "attn_type_list": [0] * n,
        "full_attn_idxs": [0],
        "cross_attention_layers": [0],
        "full_attention_interval": 2,
        "no_rope_layers": [0] * n,
        "global_attn_every_n_layers": 2,
        "kv_source_layers": [0] * n,
        "swa_layers": [0],
        "sliding_window_layer_idx": [1],
    }[key]


UNREAD_CANDIDATES = [
    "block_configs", "hybrid_override_pattern", "layers_block_type", "attn_layer_period",
    "attn_layer_offset", "attn_layer_indices", "attn_type_list", "full_attn_idxs", "cross_attention_layers",
    "full_attention_interval", "no_rope_layers", "global_attn_every_n_layers", "kv_source_layers",
    "swa_layers", "sliding_window_layer_idx",
]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(hf_id=st.sampled_from(hf_ids()), key=st.sampled_from(UNREAD_CANDIDATES))
def test_known_type_with_an_unread_structure_key_is_refused(hf_id: str, key: str) -> None:
    """A real config (known model_type) plus a per-layer structure key its builder does not read: refused,
    never computed. Keys the builder reads (or that its transformers class ignores) are skipped."""
    cfg = copy.deepcopy(hf_config(hf_id))
    model = kvcalc.load_model(cfg)
    text = cfg.get("text_config", cfg)
    reads = PLAIN_READS | BUILDER_READS.get(model.model_type, frozenset())
    reads |= STRUCTURE_IGNORED.get(model.model_type, frozenset())
    if key in reads or key in text:
        return
    text[key] = _value(key, len(model.layers))
    assert key in structure_keys(text)
    if "layer_types" in text and key in {"layers_block_type", "attn_layer_period", "attn_layer_offset",
                                         "attn_layer_indices", "attn_type_list", "full_attn_idxs",
                                         "full_attention_interval", "no_rope_layers",
                                         "global_attn_every_n_layers"}:  # fmt: skip
        return  # transformers builds from the given layer_types; these only derive it
    with pytest.raises(kvcalc.KVCalcError, match=key):
        kvcalc.load_model(cfg)


def test_mamba_ssm_format_reads_as_transformers_conversion() -> None:
    """state-spaces/mamba2-2.7b ships mamba_ssm's own config (no model_type)."""
    model = kvcalc.load_model(hf_config("state-spaces/mamba2-2.7b"))
    assert model.model_type == "mamba2"
    assert model.kinds() == {"mamba2": 64}
    assert model.config["vocab_size"] == 50288  # 50277 padded to a multiple of 16
    assert model.config["num_heads"] == 80  # expand 2 · d_model 2560 / headdim 64


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"attn_layer_idx": [3]}, "attn_layer_idx"),
        ({"d_intermediate": 4096}, "d_intermediate"),
        ({"ssm_cfg": {"layer": "Mamba2", "d_ssm": 1024}}, "ssm_cfg.d_ssm"),
        ({"ssm_cfg": {"layer": "Mamba3"}}, "ssm_cfg.layer"),
    ],
)
def test_mamba_ssm_unread_fields_are_refused(change: dict[str, Any], key: str) -> None:
    cfg = {**hf_config("state-spaces/mamba2-2.7b"), **change}
    with pytest.raises(kvcalc.KVCalcError, match=f"^{key}"):
        kvcalc.load_model(cfg)


@pytest.mark.transformers
def test_llama4_layer_types_and_parameters_match_transformers() -> None:
    """Llama4TextConfig(no_rope_layers=[]) gives the same layer_types as kvcalc; a Maverick-shaped
    synthetic (interleave_moe_layer_step 2, intermediate_size_mlp, shrunk widths) counts the same
    parameters as Llama4ForCausalLM on the meta device."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.Llama4TextConfig(**{k: v for k, v in LLAMA4_SCOUT_TEXT.items() if k != "model_type"})
    expected = ["chunked" if t == "chunked_attention" else "full" for t in cfg.layer_types]
    assert kinds_per_layer(LLAMA4_SCOUT_TEXT) == expected
    synthetic = {"model_type": "llama4_text", "hidden_size": 256, "num_attention_heads": 4,
                 "num_key_value_heads": 2, "head_dim": 64, "num_hidden_layers": 6, "attention_chunk_size": 64,
                 "no_rope_layers": [], "vocab_size": 1000, "intermediate_size": 128,
                 "intermediate_size_mlp": 384, "num_local_experts": 8,
                 "interleave_moe_layer_step": 2}  # fmt: skip
    config = transformers.Llama4TextConfig(**{k: v for k, v in synthetic.items() if k != "model_type"})
    with torch.device("meta"):
        model = transformers.Llama4ForCausalLM(config)
    count = sum(p.numel() for p in model.parameters())
    assert kvcalc.count_params(kvcalc.load_model(synthetic)).total == count
