"""Smaller copies of configs for real CPU runs: presets, shallower copies, fewer MoE experts (stdlib only).

``shallow_config(config, n)`` keeps the first ``n`` decoder layers of a real config and slices every
per-layer key with them (``layer_types``, ``hybrid_override_pattern``, ``layers_block_type``,
``attn_type_list``, ``no_rope_layers``; index lists such as ``mlp_only_layers`` keep the indices below
``n``), so the copy has exactly the layer kinds of the original's first ``n`` layers — Qwen3-Next cut to
4 layers is still 3 Gated DeltaNet + 1 full attention. Periodic rules (``full_attention_interval``,
``attn_layer_period``) need no change. The result is checked with :func:`kvcalc.load_model`.

``fewer_experts(config, n)`` keeps ``n`` routed experts per MoE layer (at least the top-k the router
picks): the cache and the per-token compute do not change, only the weights' memory.

``preset_config(name)`` builds the decoder-only Llama presets of ``kvcalc measure``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from kvcalc.core.config import LAYER_KEYS, TEXT_CONFIG_KEYS
from kvcalc.core.model import Model, load_model
from kvcalc.errors import KVCalcError

__all__ = [
    "PRESETS",
    "expert_counts",
    "fewer_experts",
    "kinds_in_order",
    "preset_config",
    "shallow_config",
]

#: Per-layer lists and strings: sliced to the first n entries.
PER_LAYER_KEYS = (
    "layer_types",
    "layers_block_type",
    "hybrid_override_pattern",
    "attn_type_list",
    "no_rope_layers",
    "indexer_types",
    "block_types",
    "mlp_layer_types",
)
#: Lists of layer indices: keep the indices below n.
LAYER_INDEX_KEYS = (
    "mlp_only_layers",
    "full_attn_idxs",
    "attn_layer_indices",
    "cross_attention_layers",
    "moe_layers",
)
EXPERT_KEYS = ("num_experts", "n_routed_experts", "num_local_experts", "moe_num_experts")
TOP_K_KEYS = ("num_experts_per_tok", "moe_topk", "num_experts_per_token")


#: name -> (hidden_size, attention heads, max context, default layers); head_dim 64, Llama-2 style MHA.
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "small": (512, 8, 1024, 4),
    "medium": (1024, 16, 2048, 4),
    "large": (2048, 32, 4096, 4),
    "xlarge": (4096, 64, 8192, 4),
}
PRESET_VOCAB = 32000


def _ffn(hidden: int) -> int:
    """Llama's MLP width: 8/3 of hidden, rounded up to a multiple of 256 (4096 -> 11008)."""
    return -(-hidden * 8 // 3 // 256) * 256 if hidden != 4096 else 11008


def preset_config(name: str, layers: int | None = None) -> dict[str, Any]:
    """The config.json of a ``kvcalc measure`` preset (decoder-only Llama, fp32, random weights)."""
    if name not in PRESETS:
        raise KVCalcError(f"preset {name!r} is not one of {', '.join(PRESETS)}")
    hidden, heads, context, default_layers = PRESETS[name]
    return {
        "_name_or_path": f"kvcalc-preset-{name}",
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": _ffn(hidden),
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "head_dim": hidden // heads,
        "num_hidden_layers": layers or default_layers,
        "max_position_embeddings": context,
        "vocab_size": PRESET_VOCAB,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": "float32",
    }


# ------------------------------------------------------------------------------------------------
# shallower copies


def _sections(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The dicts that describe decoder layers: the root and any nested text config."""
    return [config] + [config[k] for k in TEXT_CONFIG_KEYS if isinstance(config.get(k), dict)]


def kinds_in_order(model: Model) -> list[str]:
    """Distinct layer kinds of a model, in first-seen order."""
    return list(dict.fromkeys(layer.kind for layer in model.layers))


def _slice_section(section: dict[str, Any], n: int, old: int) -> list[str]:
    """Cut one config dict to n layers in place; returns the keys changed."""
    changed = []
    for key in LAYER_KEYS + ("num_decoder_layers", "decoder_layers"):
        if isinstance(section.get(key), int) and not isinstance(section[key], bool):
            section[key] = n
            changed.append(key)
    for key in PER_LAYER_KEYS:
        value = section.get(key)
        if isinstance(value, (list, str)) and len(value) >= n:
            section[key] = value[:n]
            changed.append(key)
    for key in LAYER_INDEX_KEYS:
        value = section.get(key)
        if isinstance(value, list) and all(isinstance(i, int) for i in value):
            section[key] = [i for i in value if i < n]
            if len(section[key]) != len(value):
                changed.append(key)
    shared = section.get("num_kv_shared_layers")
    if isinstance(shared, int) and shared > 0:
        section["num_kv_shared_layers"] = shared * n // old
        changed.append("num_kv_shared_layers")
    return changed


def shallow_config(config: Mapping[str, Any], layers: int) -> tuple[dict[str, Any], list[str]]:
    """(copy of config with its first ``layers`` decoder layers, notes on what changed)."""
    original = load_model(config)
    old = len(original.layers)
    if layers < 1:
        raise KVCalcError(f"--layers: expected at least 1 layer, got {layers}")
    if layers > old:
        raise KVCalcError(f"--layers {layers}: the model has only {old} layers")
    new = copy.deepcopy(dict(config))
    if layers == old:
        return new, []
    changed: list[str] = []
    for section in _sections(new):
        changed += _slice_section(section, layers, old)
    model = load_model(new)
    kinds = [layer.kind for layer in model.layers]
    shared = any(s.get("num_kv_shared_layers") for s in _sections(dict(config)))
    if not shared and kinds != [layer.kind for layer in original.layers[:layers]]:
        raise KVCalcError(f"--layers {layers}: could not keep the layer pattern of {original.name}")
    notes = [f"layers {old} → {layers} (the first {layers}; sliced: {', '.join(dict.fromkeys(changed))})"]
    missing = [k for k in kinds_in_order(original) if k not in kinds]
    if missing:
        keep = next(
            i + 1 for i in range(old) if set(kinds_in_order(original)) <= _kinds_upto(original, i + 1)
        )
        notes.append(
            f"the first {layers} layers have no {', '.join(missing)} layer; --layers {keep} keeps every kind"
        )
    return new, notes


def _kinds_upto(model: Model, n: int) -> set[str]:
    return {layer.kind for layer in model.layers[:n]}


# ------------------------------------------------------------------------------------------------
# fewer experts


def expert_counts(config: Mapping[str, Any]) -> tuple[int, int] | None:
    """(routed experts, experts per token) of a MoE config, or None for dense models."""
    for section in _sections(dict(config)):
        experts = next((section[k] for k in EXPERT_KEYS if isinstance(section.get(k), int)), None)
        top_k = next((section[k] for k in TOP_K_KEYS if isinstance(section.get(k), int)), None)
        if experts and top_k and experts > 1:
            return experts, top_k
    return None


def fewer_experts(config: Mapping[str, Any], experts: int) -> tuple[dict[str, Any], list[str]]:
    """(copy of config with ``experts`` routed experts per MoE layer, notes); at least top-k experts."""
    counts = expert_counts(config)
    new = copy.deepcopy(dict(config))
    if counts is None or experts >= counts[0]:
        return new, []
    total, top_k = counts
    if experts < top_k:
        raise KVCalcError(
            f"--experts {experts}: the router picks {top_k} experts per token; use at least that"
        )
    for section in _sections(new):
        for key in EXPERT_KEYS:
            if isinstance(section.get(key), int) and section[key] == total:
                section[key] = experts
        if isinstance(section.get("n_group"), int) and section["n_group"] > 1:
            section["n_group"] = section["topk_group"] = 1  # group-limited routing needs whole groups
    note = (
        f"routed experts {total} → {experts} per MoE layer (the router still picks {top_k} per token: "
        "the cache and the per-token compute are unchanged, only the weights shrink)"
    )
    return new, [note]
