"""Nemotron-NAS / DeciLM ``block_configs`` (model_type ``nemotron-nas``): cache and parameters.

transformers has no class for it (the checkpoints ship remote code), so the expectations come from an
independent reimplementation of vLLM's per-layer rules (``vllm/model_executor/models/nemotron_nas.py``:
DeciLMDecoderLayer, ``_ffn_mult_to_intermediate_size``), written here from the file, not from kvcalc.
The config is SYNTHETIC: the first 12 blocks of nvidia/Llama-3_3-Nemotron-Super-49B-v1's block_configs
(n_heads_in_group 8, two no-op attention blocks, ffn_mult 2.625 / 5.25 / 3.28125) on its hidden size,
heads and vocabulary, plus one block with both halves no-op as Nemotron-Ultra has.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

import kvcalc


def block(group: int | None, ffn_mult: float | None) -> dict[str, Any]:
    attn = {"n_heads_in_group": group, "no_op": group is None, "num_sink_tokens": None,
            "replace_with_linear": False, "sparsify": None, "unshifted_sink": False,
            "use_prefill_window_in_sink_attention": False, "window_length": None}  # fmt: skip
    ffn = {"ffn_mult": ffn_mult, "no_op": ffn_mult is None, "replace_with_linear": False, "sparsify": None}
    return {"attention": attn, "ffn": ffn}


SUPER_BLOCKS = [(8, 2.625), *[(8, 5.25)] * 5, (None, 2.625), (None, 2.625), (8, 5.25), (8, 5.25), (8, 5.25),
                (None, 3.28125), (None, None)]  # fmt: skip
SYNTHETIC_SUPER_LIKE = {
    "architectures": ["DeciLMForCausalLM"], "model_type": "nemotron-nas", "hidden_size": 8192,
    "num_attention_heads": 64, "num_hidden_layers": len(SUPER_BLOCKS), "num_key_value_heads": None,
    "intermediate_size": None, "vocab_size": 128256, "tie_word_embeddings": False, "attention_bias": False,
    "mlp_bias": False, "rms_norm_eps": 1e-05, "torch_dtype": "bfloat16", "max_position_embeddings": 131072,
    "block_configs": [block(g, m) for g, m in SUPER_BLOCKS],
}  # fmt: skip


def vllm_rules(cfg: dict[str, Any]) -> tuple[list[int], int]:
    """(KV heads per layer, 0 for none; parameter count) as vLLM's DeciLM builds the model."""
    h, heads, vocab = cfg["hidden_size"], cfg["num_attention_heads"], cfg["vocab_size"]
    hd = h // heads
    kv_heads, params = [], vocab * h * 2 + h  # embed_tokens + lm_head (untied) + final norm
    for b in cfg["block_configs"]:
        if b["attention"]["no_op"]:
            kv_heads.append(0)
        else:
            kv = heads // b["attention"]["n_heads_in_group"]
            kv_heads.append(kv)
            params += h * heads * hd * 2 + h * kv * hd * 2 + h  # q, o, k, v, input_layernorm
        if not b["ffn"]["no_op"]:
            inter = int(2 * b["ffn"]["ffn_mult"] * h / 3)
            inter += (256 - inter % 256) % 256  # _find_multiple(n, 256)
            params += 3 * h * inter + h  # gate, up, down, post_attention_layernorm
    return kv_heads, params


def test_cache_per_layer_follows_block_configs() -> None:
    model = kvcalc.load_model(SYNTHETIC_SUPER_LIKE)
    kv_heads, _ = vllm_rules(SYNTHETIC_SUPER_LIKE)
    assert model.verified
    per_token = [2 * kv * 128 * 2 for kv in kv_heads]  # K and V, head_dim 128, bf16
    for engine in ("ideal", "transformers"):
        assert kvcalc.layer_bytes(model, 1000, engine=engine) == [1000 * b for b in per_token]
    # full attention pages of 16 tokens for the 9 attention blocks, nothing for the no-op ones
    assert kvcalc.kv_cache_bytes(model, 1000, engine="vllm") == 9 * 63 * 16 * (2 * 8 * 128 * 2)


def test_parameters_follow_vllm_decilm() -> None:
    _, expected = vllm_rules(SYNTHETIC_SUPER_LIKE)
    assert kvcalc.count_params(kvcalc.load_model(SYNTHETIC_SUPER_LIKE)).total == expected


@pytest.mark.parametrize(
    ("key", "value"),
    [("window_length", 4096), ("num_sink_tokens", 4), ("n_heads_in_group", 7)],
)
def test_unread_block_fields_are_refused(key: str, value: Any) -> None:
    cfg = copy.deepcopy(SYNTHETIC_SUPER_LIKE)
    cfg["block_configs"][0]["attention"][key] = value
    with pytest.raises(kvcalc.KVCalcError, match=rf"block_configs\[0\]\.attention\.{key}"):
        kvcalc.load_model(cfg)


def test_replace_with_linear_caches_nothing_and_parameters_are_refused() -> None:
    cfg = copy.deepcopy(SYNTHETIC_SUPER_LIKE)
    cfg["block_configs"][0]["attention"].update(replace_with_linear=True, n_heads_in_group=None)
    model = kvcalc.load_model(cfg)
    assert model.layers[0].kind == "none"
    with pytest.raises(kvcalc.KVCalcError, match=r"block_configs\[0\]\.attention\.replace_with_linear"):
        kvcalc.count_params(model)
