"""Parameter counts and weight bytes from config.json alone (stdlib only).

``count_params(model)`` lists every weight tensor the architecture holds, as transformers builds it
(checked on the ``meta`` device: ``sum(p.numel() for p in model.parameters())``, tied weights once),
then sums them by part. Exact for the architectures in :data:`EXACT_TYPES`; other model types are
counted as a Llama-like decoder and flagged ``exact=False``.

Conventions (the same as transformers):

* buffers are not parameters: DeepSeek's ``e_score_correction_bias``, rotary caches;
* MTP / next-token-prediction layers (``num_nextn_predict_layers``, ``mtp_*``) are not built, not counted;
* ``total`` is the language model; vision / audio towers are counted apart (``vision``, ``audio``) and
  included in ``total_with_towers`` and, by default, in weight bytes (a server loads them).

``weight_bytes(model, weight_dtype)`` prices each tensor in a weight format: unquantised formats store
every element in that dtype; quantised formats (fp8, int8, int4, mxfp4, nvfp4) store the Linear weight
matrices of the decoder (attention, MLP, experts, mixers) quantised with their scales, and keep
embeddings, lm_head, norms, routers, biases and small vectors in the model dtype (bf16), as vLLM and
the published checkpoints do. The default is the checkpoint's own format (``quantization_config``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kvcalc.core.config import HEAD_KEYS, HIDDEN_KEYS, MLA_TYPES, nas_blocks, text_config
from kvcalc.core.dtypes import get_dtype
from kvcalc.core.fields import Fields, check_int
from kvcalc.core.layers import MLA, GatedDeltaNet, LayerSpec, Mamba1, Mamba2, _Attention, cdiv
from kvcalc.core.model import Model
from kvcalc.errors import KVCalcError

__all__ = [
    "EXACT_TYPES",
    "PARTS",
    "WEIGHT_FORMATS",
    "ParamCount",
    "Tensor",
    "WeightBytes",
    "WeightFormat",
    "checkpoint_weight_format",
    "count_params",
    "get_weight_format",
    "weight_bytes",
]

#: Model types whose count is checked exactly against transformers (tests/test_params_transformers.py).
EXACT_TYPES = frozenset(
    {
        "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "qwen3_next", "qwen3_5",
        "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text", "deepseek_v2", "deepseek_v3", "deepseek_v32",
        "kimi_k2", "glm_moe_dsa", "gpt_oss", "minimax_m2", "nemotron_h", "glm4_moe", "olmo", "olmo2",
        "olmo3", "gemma2", "gemma3_text", "llama4_text",
    }
)  # fmt: skip
#: Llama-like decoders (gate/up/down MLP, q/k/v/o attention, two RMSNorms, the MoE rules above) whose
#: count equals transformers' at the config-class defaults (tests/test_architecture_coverage.py).
LLAMA_LIKE_TYPES = frozenset(
    {
        "bamba", "cwm", "ernie4_5", "gemma", "granite", "granitemoe", "granitemoeshared", "helium",
        "internlm3", "iquestcoder", "kimi_k25", "minicpm3", "ministral3", "mistral4", "phi3", "smollm3",
        "solar_open", "vaultgemma", "youtu",
    }
)  # fmt: skip

#: Breakdown buckets, in display order (towers last; they are not part of ``total``).
PARTS = (
    "embeddings", "attention", "mlp", "experts", "shared_experts", "router", "mixers", "norms", "lm_head",
    "vision", "audio",
)  # fmt: skip
TOWER_PARTS = ("vision", "audio")

_DSA_TYPES = {"deepseek_v32", "glm_moe_dsa"}
_GATED_Q = {"qwen3_next", "qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text"}
_QK_NORM_PER_HEAD = {"qwen3", "qwen3_moe", "gemma3_text"} | _GATED_Q
#: Gemma 2 / 3: four RMSNorms per layer (input, post-attention, pre- and post-feed-forward).
_SANDWICH_NORMS = {"gemma2", "gemma3_text"}
_QWEN_MOE = {"qwen2_moe", "qwen3_moe", "qwen3_next", "qwen3_5_moe", "qwen3_5_moe_text"}
_ALL_MOE = {"mixtral", "gpt_oss", "minimax_m2"}
_TIED_BY_DEFAULT = {"gemma", "gemma2", "gemma3", "gemma3_text"}
_VOCAB_PAD = 64  # vLLM pads embedding / lm_head rows to a multiple of 64 (DEFAULT_VOCAB_PADDING_SIZE)


# ------------------------------------------------------------------------------------------------
# tensors


@dataclass(frozen=True)
class Tensor:
    """One weight tensor (``count`` identical copies: layers × experts).

    ``shape`` is (out, in, …) for matrices. ``quantizable``: a decoder Linear weight a quantised format
    stores quantised. ``split``: how tensor parallelism shards it — "col" (dim 0), "row" (dim 1),
    "kv" (dim 0 by KV heads, replicated when tp > heads), "vocab" (rows, padded), "replicate".
    ``experts``: routed experts per layer when this is an expert tensor (for active counts).
    """

    name: str
    part: str
    shape: tuple[int, ...]
    count: int = 1
    quantizable: bool = False
    split: str = "replicate"
    heads: int = 0
    experts: int = 0

    @property
    def numel(self) -> int:
        """Elements of one copy."""
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def total(self) -> int:
        """Elements of all copies."""
        return self.numel * self.count

    def rank_shape(self, tp: int, vocab_pad: int = 1) -> tuple[int, ...]:
        """Shape one tensor-parallel rank holds (vLLM sharding; padding beyond vocab ignored)."""
        shape = list(self.shape)
        if self.split == "vocab":
            shape[0] = cdiv(cdiv(shape[0], vocab_pad) * vocab_pad, tp)
        elif tp == 1 or self.split == "replicate":
            pass
        elif self.split == "kv":
            per_head = shape[0] // max(1, self.heads)
            shape[0] = max(1, self.heads // tp) * per_head
        elif self.split == "col":
            shape[0] = cdiv(shape[0], tp)
        elif self.split == "row" and len(shape) > 1:
            shape[1] = cdiv(shape[1], tp)
        return tuple(shape)


def _t(name: str, part: str, *shape: int, **kw: Any) -> Tensor:
    return Tensor(name, part, tuple(shape), **kw)


def _linear(
    name: str, part: str, out: int, inp: int, *, split: str, bias: bool = False, **kw: Any
) -> list[Tensor]:
    """A Linear weight (quantizable) and its optional bias (sharded with the output)."""
    out_t = [_t(f"{name}.weight", part, out, inp, quantizable=True, split=split, **kw)]
    if bias:
        bias_split = "replicate" if split == "row" else split
        out_t.append(_t(f"{name}.bias", part, out, split=bias_split, **kw))
    return out_t


def _norm(name: str, n: int, *, bias: bool = False) -> list[Tensor]:
    out = [_t(f"{name}.weight", "norms", n)]
    if bias:
        out.append(_t(f"{name}.bias", "norms", n))
    return out


# ------------------------------------------------------------------------------------------------
# reading the config


class _Cfg:
    """Alias-aware reads of the text config, with transformers' class defaults per model type."""

    def __init__(self, model: Model) -> None:
        cfg, prefix = text_config(model.config)
        self.cfg = cfg
        self.top = model.config
        self.f = Fields(cfg, prefix)
        self.model_type = model.model_type
        self.hidden = self.f.int(*HIDDEN_KEYS)
        self.heads = self.f.int(*HEAD_KEYS, default=0, minimum=0, limit="heads")  # 0: no attention
        self.vocab = self.f.int("vocab_size", "padded_vocab_size", "n_vocab")

    def int(self, *keys: str, default: int | None = None, minimum: int = 1) -> int:
        if default is None:
            return self.f.int(*keys, minimum=minimum)
        return self.f.int(*keys, default=default, minimum=minimum)

    def flag(self, key: str, default: bool) -> bool:
        return self.f.bool(key, default)

    def tied(self) -> bool:
        for src in (self.cfg, self.top):
            value = src.get("tie_word_embeddings")
            if isinstance(value, bool):
                return value
        return self.model_type in _TIED_BY_DEFAULT or _TIE_DEFAULTS.get(self.model_type, False)


# ------------------------------------------------------------------------------------------------
# mixers


def _attention(c: _Cfg, spec: _Attention) -> list[Tensor]:
    """q/k/v/o projections (+ biases, q/k norms, sinks) of standard (GQA/MQA/MHA) attention."""
    mt, h, heads = c.model_type, c.hidden, c.heads
    kv, hd = spec.kv_heads, spec.head_dim
    q_out = heads * hd * (2 if mt in _GATED_Q and c.flag("attn_output_gate", True) else 1)
    if mt in ("qwen2", "qwen2_moe"):
        qkv_bias, o_bias = True, False
    elif mt == "glm4_moe":  # Glm4MoeAttention: q/k/v bias = attention_bias, o_proj never
        qkv_bias, o_bias = c.flag("attention_bias", False), False
    else:
        qkv_bias = o_bias = c.flag("attention_bias", mt == "gpt_oss")
    p = "self_attn"
    out = _linear(f"{p}.q_proj", "attention", q_out, h, split="col", bias=qkv_bias)
    for name in ("k_proj", "v_proj"):
        out += _linear(f"{p}.{name}", "attention", kv * hd, h, split="kv", heads=kv, bias=qkv_bias)
    out += _linear(f"{p}.o_proj", "attention", h, heads * hd, split="row", bias=o_bias)
    if mt in _QK_NORM_PER_HEAD or (mt == "glm4_moe" and c.flag("use_qk_norm", False)):
        out += _norm(f"{p}.q_norm", hd) + _norm(f"{p}.k_norm", hd)
    if mt in ("olmo2", "olmo3"):  # Olmo2Attention: RMSNorm over all heads' q and k
        out += _norm(f"{p}.q_norm", heads * hd) + _norm(f"{p}.k_norm", kv * hd)
    if mt == "minimax_m2" and c.flag("use_qk_norm", True):
        out += _norm(f"{p}.q_norm", heads * hd) + _norm(f"{p}.k_norm", kv * hd)
    if mt == "gpt_oss":
        out.append(_t(f"{p}.sinks", "attention", heads, split="col"))
    return out


def _mla(c: _Cfg, spec: MLA) -> list[Tensor]:
    """Multi-head latent attention (DeepSeek V2/V3, Kimi K2, GLM-5) plus the DSA indexer."""
    h, heads, p = c.hidden, c.heads, "self_attn"
    rope, lora = spec.qk_rope_head_dim, spec.kv_lora_rank
    nope = c.int("qk_nope_head_dim")
    v_dim = c.int("v_head_dim")
    bias = c.flag("attention_bias", False)
    q_lora = c.f.int("q_lora_rank", default=0, minimum=0)
    out: list[Tensor] = []
    if q_lora:
        out += _linear(f"{p}.q_a_proj", "attention", q_lora, h, split="replicate", bias=bias)
        out += _norm(f"{p}.q_a_layernorm", q_lora)
        out += _linear(f"{p}.q_b_proj", "attention", heads * (nope + rope), q_lora, split="col")
    else:
        out += _linear(f"{p}.q_proj", "attention", heads * (nope + rope), h, split="col")
    out += _linear(f"{p}.kv_a_proj_with_mqa", "attention", lora + rope, h, split="replicate", bias=bias)
    out += _norm(f"{p}.kv_a_layernorm", lora)
    out += _linear(f"{p}.kv_b_proj", "attention", heads * (nope + v_dim), lora, split="col")
    out += _linear(f"{p}.o_proj", "attention", h, heads * v_dim, split="row", bias=bias)
    if c.model_type in _DSA_TYPES or c.f.has("index_topk"):
        out += _indexer(c, q_lora)
    return out


def _indexer(c: _Cfg, q_lora: int) -> list[Tensor]:
    """DSA lightning indexer: wq_b, wk, LayerNorm k_norm, weights_proj (replicated in vLLM)."""
    n_heads = c.int("index_n_heads", default=64)
    hd = c.int("index_head_dim", default=128)
    p = "self_attn.indexer"
    out = _linear(f"{p}.wq_b", "attention", n_heads * hd, q_lora or c.hidden, split="replicate")
    out += _linear(f"{p}.wk", "attention", hd, c.hidden, split="replicate")
    out += _norm(f"{p}.k_norm", hd, bias=True)
    out.append(_t(f"{p}.weights_proj.weight", "attention", n_heads, c.hidden))
    return out


def _gated_deltanet(c: _Cfg, s: GatedDeltaNet) -> list[Tensor]:
    """Gated DeltaNet (Qwen3-Next: fused qkvz/ba projections; Qwen3.5: split qkv/z/b/a)."""
    h, p = c.hidden, "linear_attn"
    key, value, nv = s.num_k_heads * s.k_head_dim, s.num_v_heads * s.v_head_dim, s.num_v_heads
    conv_dim = 2 * key + value
    if c.model_type == "qwen3_next":
        out = _linear(f"{p}.in_proj_qkvz", "mixers", 2 * key + 2 * value, h, split="col")
        out += _linear(f"{p}.in_proj_ba", "mixers", 2 * nv, h, split="col")
    else:
        out = _linear(f"{p}.in_proj_qkv", "mixers", conv_dim, h, split="col")
        out += _linear(f"{p}.in_proj_z", "mixers", value, h, split="col")
        out += _linear(f"{p}.in_proj_b", "mixers", nv, h, split="col")
        out += _linear(f"{p}.in_proj_a", "mixers", nv, h, split="col")
    out += [
        _t(f"{p}.conv1d.weight", "mixers", conv_dim, 1, s.conv_kernel, split="col"),
        _t(f"{p}.dt_bias", "mixers", nv, split="col"),
        _t(f"{p}.A_log", "mixers", nv, split="col"),
    ]
    out += _norm(f"{p}.norm", s.v_head_dim)
    out += _linear(f"{p}.out_proj", "mixers", h, value, split="row")
    return out


def _mamba2(c: _Cfg, s: Mamba2) -> list[Tensor]:
    """Mamba-2 mixer (Nemotron-H): in_proj, depthwise conv, dt/A/D, gated norm, out_proj."""
    h, p = c.hidden, "mixer"
    d_inner = s.d_inner or s.n_heads * s.head_dim
    conv_dim = d_inner + 2 * s.n_groups * s.d_state
    bias = c.flag("use_bias", False)
    out = _linear(f"{p}.in_proj", "mixers", d_inner + conv_dim + s.n_heads, h, split="col", bias=bias)
    out.append(_t(f"{p}.conv1d.weight", "mixers", conv_dim, 1, s.d_conv, split="col"))
    if c.flag("use_conv_bias", True):
        out.append(_t(f"{p}.conv1d.bias", "mixers", conv_dim, split="col"))
    out += [_t(f"{p}.{n}", "mixers", s.n_heads, split="col") for n in ("dt_bias", "A_log", "D")]
    out.append(_t(f"{p}.norm.weight", "norms", d_inner, split="col"))
    out += _linear(f"{p}.out_proj", "mixers", h, d_inner, split="row", bias=bias)
    return out


def _mixer(c: _Cfg, layer: LayerSpec, notes: list[str]) -> list[Tensor]:
    """The token mixer of one layer, from its cache spec (the core parser decides the layer kinds)."""
    out: list[Tensor] = []
    for leaf in layer.leaves():
        if isinstance(leaf, MLA):
            out += _mla(c, leaf)
        elif isinstance(leaf, _Attention):
            out += _attention(c, leaf)
        elif isinstance(leaf, GatedDeltaNet):
            out += _gated_deltanet(c, leaf)
        elif isinstance(leaf, Mamba2):
            out += _mamba2(c, leaf)
        elif leaf.kind == "shared_kv":
            kv = c.f.int("num_key_value_heads", default=c.heads, limit="heads")
            hd = c.int("head_dim", default=c.hidden // c.heads)
            out += _attention(c, _Attention(kv_heads=kv, head_dim=hd))
        elif leaf.kind != "none":
            notes.append(f"{leaf.kind} mixers are not counted")
    return out


# ------------------------------------------------------------------------------------------------
# MLPs


def _gated_mlp(prefix: str, part: str, h: int, inter: int, *, bias: bool = False) -> list[Tensor]:
    """gate/up/down SwiGLU MLP."""
    out = _linear(f"{prefix}.gate_proj", part, inter, h, split="col", bias=bias)
    out += _linear(f"{prefix}.up_proj", part, inter, h, split="col", bias=bias)
    out += _linear(f"{prefix}.down_proj", part, h, inter, split="row", bias=bias)
    return out


def _plain_mlp(prefix: str, part: str, h: int, inter: int, *, bias: bool = False) -> list[Tensor]:
    """Non-gated up/down MLP (Nemotron-H relu²)."""
    out = _linear(f"{prefix}.up_proj", part, inter, h, split="col", bias=bias)
    out += _linear(f"{prefix}.down_proj", part, h, inter, split="row", bias=bias)
    return out


@dataclass(frozen=True)
class _MoE:
    experts: int
    top_k: int
    inter: int
    shared: int = 0
    shared_gate: bool = False
    router_bias: bool = False
    expert_bias: bool = False
    gated: bool = True


def _moe_spec(c: _Cfg) -> _MoE | None:
    """Routed-expert geometry, or None for a dense model."""
    f, mt = c.f, c.model_type
    llama4 = mt == "llama4_text"  # Llama4TextConfig defaults: 16 local experts, 1 per token
    n = f.int("n_routed_experts", "num_local_experts", "num_experts", default=16 if llama4 else 0, minimum=0)
    if not n:
        return None
    keys = ("num_experts_per_tok", "experts_per_token", "moe_topk")
    top_k = f.int(*keys, default=1, minimum=1) if llama4 else f.int(*keys, minimum=1)
    if mt in ("mixtral", "gpt_oss", "minimax_m2", "llama4_text"):
        inter = f.int("intermediate_size")
    else:
        inter = f.int("moe_intermediate_size", "intermediate_size")
    shared, gate = 0, False
    if mt == "nemotron_h":
        shared = f.int("moe_shared_expert_intermediate_size", default=0, minimum=0)
    elif mt == "llama4_text":  # Llama4TextMoe: one shared expert of intermediate_size
        shared = inter
    elif mt == "glm4_moe":  # Glm4MoeMoE: shared experts of moe_intermediate_size · n_shared_experts
        shared = f.int("n_shared_experts", default=1, minimum=0) * inter
    elif mt in MLA_TYPES or "n_shared_experts" in c.cfg:
        shared = f.int("n_shared_experts", default=0, minimum=0) * inter
    elif mt in _QWEN_MOE:
        shared = f.int("shared_expert_intermediate_size", default=0, minimum=0)
        gate = shared > 0
    return _MoE(
        experts=n,
        top_k=top_k,
        inter=inter,
        shared=shared,
        shared_gate=gate,
        router_bias=mt == "gpt_oss",
        expert_bias=mt == "gpt_oss",
        gated=mt != "nemotron_h",
    )


def _moe(c: _Cfg, m: _MoE) -> list[Tensor]:
    """Router + routed experts (checkpoint layout: one matrix per expert) + shared experts."""
    h, e, i = c.hidden, m.experts, m.inter
    out = [_t("mlp.gate.weight", "router", e, h)]
    if m.router_bias:
        out.append(_t("mlp.gate.bias", "router", e))
    kw = {"count": e, "experts": e}
    names = (("gate_proj", "col"), ("up_proj", "col")) if m.gated else (("up_proj", "col"),)
    for name, split in names:
        out += _linear(f"mlp.experts.{name}", "experts", i, h, split=split, bias=m.expert_bias, **kw)
    out += _linear("mlp.experts.down_proj", "experts", h, i, split="row", bias=m.expert_bias, **kw)
    if m.shared:
        mlp = _gated_mlp if m.gated else _plain_mlp
        out += mlp("mlp.shared_experts", "shared_experts", h, m.shared)
    if m.shared_gate:
        out.append(_t("mlp.shared_expert_gate.weight", "shared_experts", 1, h))
    return out


def _is_moe_layer(c: _Cfg, i: int) -> bool:
    """Whether layer ``i`` has routed experts (per family rule, as transformers builds it)."""
    mt, f = c.model_type, c.f
    if mt in _ALL_MOE:
        return True
    if mt == "llama4_text":  # Llama4TextDecoderLayer: layer_idx in moe_layers (default every step-th)
        given = f.list("moe_layers")
        if given is None:
            step = f.int("interleave_moe_layer_step", default=1, limit="layers")
            return (i + 1) % step == 0
        return i in given
    if mt == "glm4_moe":  # Glm4MoeDecoderLayer: MoE from first_k_dense_replace (default 1)
        return i >= f.int("first_k_dense_replace", default=1, minimum=0, limit="layers")
    if mt in MLA_TYPES:
        types = f.list("mlp_layer_types")
        if types is not None and i < len(types):
            return types[i] == "sparse"
        default_dense = 3 if mt in _DSA_TYPES else 0
        first = f.int("first_k_dense_replace", default=default_dense, minimum=0, limit="layers")
        return i >= first
    if mt in _QWEN_MOE:
        only = f.list("mlp_only_layers") or []
        step = f.int("decoder_sparse_step", default=1, limit="layers")
        return i not in only and (i + 1) % step == 0
    return True


def _mlp(c: _Cfg, i: int, moe: _MoE | None, notes: list[str]) -> list[Tensor]:
    """The feed-forward block of layer ``i`` (dense, MoE, or none for Nemotron-H mixer layers)."""
    if c.model_type == "nemotron_h":
        code = _nemotron_code(c, i)
        if code == "-":
            inter = c.int("intermediate_size")
            return _plain_mlp("mixer", "mlp", c.hidden, inter, bias=c.flag("mlp_bias", False))
        if code == "E" and moe is not None:
            if c.f.has("moe_latent_size"):
                notes.append("Nemotron-H latent MoE projections are not counted")
            return _moe(c, moe)
        return []
    if moe is not None and _is_moe_layer(c, i):
        return _moe(c, moe)
    dense_keys = ("intermediate_size_mlp",) if c.model_type == "llama4_text" else ()
    inter = c.f.int(*dense_keys, "intermediate_size", "ffn_hidden_size", "n_inner", default=0, minimum=0)
    if not inter:
        notes.append("intermediate_size missing: MLP not counted")
        return []
    return _gated_mlp("mlp", "mlp", c.hidden, inter, bias=c.flag("mlp_bias", False))


_NEMOTRON_CODES = {"mamba": "M", "linear_attention": "M", "attention": "*", "full_attention": "*", "mlp": "-",
                   "moe": "E"}  # fmt: skip


def _nemotron_code(c: _Cfg, i: int) -> str:
    """Layer ``i``'s Nemotron-H code: ``layers_block_type`` names (as the parser reads them first), else
    the ``hybrid_override_pattern`` character."""
    names = c.f.list("layers_block_type")
    if names is not None:
        return _NEMOTRON_CODES.get(str(names[i]), "?") if i < len(names) else "-"
    pattern = c.f.str("hybrid_override_pattern")
    return pattern[i] if i < len(pattern) else "-"


# ------------------------------------------------------------------------------------------------
# whole model


def _layer_norms(c: _Cfg) -> list[Tensor]:
    if c.model_type == "olmo":  # OlmoLayerNorm: a LayerNorm without weight or bias
        return []
    if c.model_type == "nemotron_h":
        return _norm("norm", c.hidden)
    out = _norm("input_layernorm", c.hidden) + _norm("post_attention_layernorm", c.hidden)
    if c.model_type in _SANDWICH_NORMS:  # Gemma2/3DecoderLayer: RMSNorms before and after the MLP too
        out += _norm("pre_feedforward_layernorm", c.hidden) + _norm("post_feedforward_layernorm", c.hidden)
    return out


def _merge(tensors: Iterable[tuple[str, Tensor]]) -> tuple[Tensor, ...]:
    """Collapse identical per-layer tensors into one entry with a count."""
    merged: dict[tuple[Any, ...], Tensor] = {}
    for prefix, t in tensors:
        name = f"{prefix}{t.name}"
        key = (name, t.part, t.shape, t.quantizable, t.split, t.heads, t.experts)
        old = merged.get(key)
        merged[key] = Tensor(name, t.part, t.shape, t.count + (old.count if old else 0), t.quantizable,
                             t.split, t.heads, t.experts)  # fmt: skip
    return tuple(merged.values())


def _decoder(model: Model, c: _Cfg, notes: list[str]) -> tuple[Tensor, ...]:
    family = _FAMILIES.get(model.model_type)
    if family is not None:
        items = family(model, c)
        if not c.tied():
            head = "proj_out" if model.model_type == "whisper" else "lm_head"
            items.append(("", _t(f"{head}.weight", "lm_head", c.vocab, c.hidden, split="vocab")))
        return _merge(items)
    moe = _moe_spec(c)
    items: list[tuple[str, Tensor]] = [("model.", _t("embed_tokens.weight", "embeddings", c.vocab, c.hidden,
                                                     split="vocab"))]  # fmt: skip
    for i, layer in enumerate(model.layers):
        for t in _mixer(c, layer, notes) + _mlp(c, i, moe, notes) + _layer_norms(c):
            items.append(("model.layers.N.", t))
    if c.model_type != "olmo":
        items += [("model.", t) for t in _norm("norm", c.hidden)]
    if not c.tied():
        items.append(("", _t("lm_head.weight", "lm_head", c.vocab, c.hidden, split="vocab")))
    return _merge(items)


# ------------------------------------------------------------------------------------------------
# families with their own layout (GPT-2, Falcon, Phi, MPT, Mamba, Jamba, encoder-decoders)
#
# Each function lists the parameters transformers 5.23 builds for the causal LM (or seq2seq model),
# read from the family's modeling file (named in the docstring). tests/test_architecture_coverage.py
# checks each against ``sum(p.numel())`` of the meta-device model; tests/test_params_transformers.py
# checks the real configs.


def _ln(name: str, n: int) -> list[Tensor]:
    """torch LayerNorm: weight and bias."""
    return _norm(name, n, bias=True)


def _conv1d(name: str, part: str, out: int, inp: int) -> list[Tensor]:
    """GPT-2 ``Conv1D`` (weight [in, out]) with bias; stored like a Linear."""
    return _linear(name, part, out, inp, split="col", bias=True)


def _gpt2(c: _Cfg, n_layers: int) -> list[tuple[str, Tensor]]:
    """transformers models/gpt2/modeling_gpt2.py: wte, wpe, per block ln_1 / c_attn / c_proj / ln_2 /
    c_fc / c_proj (Conv1D with bias), ln_f; lm_head tied (``tie_word_embeddings`` default True)."""
    h = c.hidden
    inner = c.f.int("n_inner", default=4 * h)
    if c.flag("add_cross_attention", False):
        raise KVCalcError(f"{c.f.where}add_cross_attention: GPT-2 with cross-attention is not supported yet")
    pos = c.int("n_positions", "max_position_embeddings")
    block = _ln("ln_1", h) + _conv1d("attn.c_attn", "attention", 3 * h, h)
    block += _conv1d("attn.c_proj", "attention", h, h) + _ln("ln_2", h)
    block += _conv1d("mlp.c_fc", "mlp", inner, h) + _conv1d("mlp.c_proj", "mlp", h, inner)
    items = [("transformer.", _t("wte.weight", "embeddings", c.vocab, h, split="vocab"))]
    items.append(("transformer.", _t("wpe.weight", "embeddings", pos, h)))
    items += [("transformer.h.N.", t) for _ in range(n_layers) for t in block]
    items += [("transformer.", t) for t in _ln("ln_f", h)]
    return items


def _falcon(c: _Cfg, n_layers: int) -> list[tuple[str, Tensor]]:
    """transformers models/falcon/modeling_falcon.py: fused query_key_value ((heads + 2·kv)·hd with
    new_decoder_architecture, h + 2·hd for multi_query, else 3h), dense, dense_h_to_4h / dense_4h_to_h
    (``ffn_hidden_size``, default 4h), ``bias`` on all four; LayerNorms: ln_attn + ln_mlp (new decoder,
    num_ln_in_parallel_attn 2), input_layernorm (parallel_attn) or input + post_attention."""
    h, heads = c.hidden, c.heads
    hd = h // heads
    if c.flag("alibi", False):
        pass  # ALiBi has no parameters
    new = c.flag("new_decoder_architecture", False)
    if new:
        kv = c.f.int("num_kv_heads", "n_head_kv", default=heads, limit="heads")
        qkv = (2 * kv + heads) * hd
    elif c.flag("multi_query", True):
        qkv = h + 2 * hd
    else:
        qkv = 3 * h
    bias = c.flag("bias", False)
    ffn = c.f.int("ffn_hidden_size", default=4 * h)
    block = _linear("self_attention.query_key_value", "attention", qkv, h, split="col", bias=bias)
    block += _linear("self_attention.dense", "attention", h, h, split="row", bias=bias)
    block += _linear("mlp.dense_h_to_4h", "mlp", ffn, h, split="col", bias=bias)
    block += _linear("mlp.dense_4h_to_h", "mlp", h, ffn, split="row", bias=bias)
    n_ln = c.f.int("num_ln_in_parallel_attn", default=2 if new else 1)
    if not c.flag("parallel_attn", True):
        block += _ln("input_layernorm", h) + _ln("post_attention_layernorm", h)
    elif n_ln == 2:
        block += _ln("ln_attn", h) + _ln("ln_mlp", h)
    else:
        block += _ln("input_layernorm", h)
    items = [("transformer.", _t("word_embeddings.weight", "embeddings", c.vocab, h, split="vocab"))]
    items += [("transformer.h.N.", t) for _ in range(n_layers) for t in block]
    items += [("transformer.", t) for t in _ln("ln_f", h)]
    return items


def _phi(c: _Cfg, n_layers: int) -> list[tuple[str, Tensor]]:
    """transformers models/phi/modeling_phi.py: q/k/v/dense with biases, optional per-head q/k LayerNorm
    (``qk_layernorm``), fc1/fc2 with biases, one input_layernorm (parallel block), final_layernorm,
    lm_head with bias (untied by default)."""
    h, heads = c.hidden, c.heads
    hd = h // heads
    kv = c.f.int("num_key_value_heads", default=heads, limit="heads")
    inter = c.int("intermediate_size")
    block = _linear("self_attn.q_proj", "attention", heads * hd, h, split="col", bias=True)
    for name in ("k_proj", "v_proj"):
        block += _linear(f"self_attn.{name}", "attention", kv * hd, h, split="kv", heads=kv, bias=True)
    block += _linear("self_attn.dense", "attention", h, heads * hd, split="row", bias=True)
    if c.flag("qk_layernorm", False):
        block += _ln("self_attn.q_layernorm", hd) + _ln("self_attn.k_layernorm", hd)
    block += _linear("mlp.fc1", "mlp", inter, h, split="col", bias=True)
    block += _linear("mlp.fc2", "mlp", h, inter, split="row", bias=True)
    block += _ln("input_layernorm", h)
    items = [("model.", _t("embed_tokens.weight", "embeddings", c.vocab, h, split="vocab"))]
    items += [("model.layers.N.", t) for _ in range(n_layers) for t in block]
    items += [("model.", t) for t in _ln("final_layernorm", h)]
    if not c.tied():
        items.append(("", _t("lm_head.bias", "lm_head", c.vocab, split="vocab")))
    return items


def _mpt(c: _Cfg, n_layers: int) -> list[tuple[str, Tensor]]:
    """transformers models/mpt/modeling_mpt.py: Wqkv (3h) and out_proj, up/down 4h (the checkpoint's
    ``expansion_ratio`` is not read), LayerNorms without bias; no biases anywhere; lm_head tied."""
    h = c.hidden
    block = _linear("attn.Wqkv", "attention", 3 * h, h, split="col")
    block += _linear("attn.out_proj", "attention", h, h, split="row")
    block += _linear("ffn.up_proj", "mlp", 4 * h, h, split="col")
    block += _linear("ffn.down_proj", "mlp", h, 4 * h, split="row")
    block += _norm("norm_1", h) + _norm("norm_2", h)
    items = [("transformer.", _t("wte.weight", "embeddings", c.vocab, h, split="vocab"))]
    items += [("transformer.blocks.N.", t) for _ in range(n_layers) for t in block]
    items += [("transformer.", t) for t in _norm("norm_f", h)]
    return items


def _mamba1_mixer(c: _Cfg, s: Mamba1, *, jamba: bool = False) -> list[Tensor]:
    """Mamba-1 mixer (transformers models/mamba, falcon_mamba, jamba): in_proj (2·inner), depthwise
    conv1d, x_proj (dt_rank + 2·d_state), dt_proj (+ bias), A_log, D, out_proj; Jamba adds RMSNorms of
    dt_rank, d_state, d_state."""
    h, p, inner = c.hidden, "mixer", s.d_inner
    prefix = "mamba_" if jamba else ""
    rank_key = "mamba_dt_rank" if jamba else "time_step_rank"
    rank_value = c.cfg.get(rank_key, "auto")
    rank = cdiv(h, 16) if rank_value in ("auto", None) else c.int(rank_key)
    proj_bias = c.flag(f"{prefix}proj_bias" if jamba else "use_bias", False)
    conv_bias = c.flag(f"{prefix}conv_bias" if jamba else "use_conv_bias", True)
    out = _linear(f"{p}.in_proj", "mixers", 2 * inner, h, split="col", bias=proj_bias)
    out.append(_t(f"{p}.conv1d.weight", "mixers", inner, 1, s.d_conv, split="col"))
    if conv_bias:
        out.append(_t(f"{p}.conv1d.bias", "mixers", inner, split="col"))
    out += _linear(f"{p}.x_proj", "mixers", rank + 2 * s.d_state, inner, split="row")
    out += _linear(f"{p}.dt_proj", "mixers", inner, rank, split="col", bias=True)
    out += [
        _t(f"{p}.A_log", "mixers", inner, s.d_state, split="col"),
        _t(f"{p}.D", "mixers", inner, split="col"),
    ]
    out += _linear(f"{p}.out_proj", "mixers", h, inner, split="row", bias=proj_bias)
    if jamba:
        out += _norm(f"{p}.dt_layernorm", rank) + _norm(f"{p}.b_layernorm", s.d_state)
        out += _norm(f"{p}.c_layernorm", s.d_state)
    return out


def _ssm_lm(model: Model, c: _Cfg) -> list[tuple[str, Tensor]]:
    """Mamba / FalconMamba / Mamba-2 causal LMs: embeddings, per layer an RMSNorm and the mixer, norm_f
    (transformers models/mamba, falcon_mamba, mamba2 modeling files)."""
    h = c.hidden
    items = [("backbone.", _t("embeddings.weight", "embeddings", c.vocab, h, split="vocab"))]
    for layer in model.layers:
        leaf = layer.leaves()[0]
        mixer = _mamba1_mixer(c, leaf) if isinstance(leaf, Mamba1) else _mamba2(c, leaf)  # type: ignore[arg-type]
        items += [("backbone.layers.N.", t) for t in mixer + _norm("norm", h)]
    items += [("backbone.", t) for t in _norm("norm_f", h)]
    return items


def _jamba(model: Model, c: _Cfg) -> list[tuple[str, Tensor]]:
    """transformers models/jamba/modeling_jamba.py: attention (no bias) or Mamba-1 mixer per layer;
    feed-forward is a sparse MoE where ``i % expert_layer_period == expert_layer_offset`` (router
    without bias, ``intermediate_size`` experts), else a gated MLP; input_layernorm + pre_ff_layernorm;
    final_layernorm."""
    h = c.hidden
    period = c.f.int("expert_layer_period", default=2, limit="layers")
    offset = c.f.int("expert_layer_offset", default=1, minimum=0, limit="layers")
    experts = c.f.int("num_experts", default=16)
    inter = c.int("intermediate_size")
    moe = _MoE(experts=experts, top_k=c.f.int("num_experts_per_tok", default=2), inter=inter)
    items = [("model.", _t("embed_tokens.weight", "embeddings", c.vocab, h, split="vocab"))]
    for i, layer in enumerate(model.layers):
        leaf = layer.leaves()[0]
        is_mamba = isinstance(leaf, Mamba1)
        mixer = _mamba1_mixer(c, leaf, jamba=True) if is_mamba else _attention(c, leaf)  # type: ignore[arg-type]
        ff = _moe(c, moe) if experts > 1 and i % period == offset else _gated_mlp("mlp", "mlp", h, inter)
        items += [("model.layers.N.", t) for t in mixer + ff]
        items += [("model.layers.N.", t) for t in _norm("input_layernorm", h) + _norm("pre_ff_layernorm", h)]
    items += [("model.", t) for t in _norm("final_layernorm", h)]
    return items


def _enc_dec_attention(name: str, d: int, *, k_bias: bool = True) -> list[Tensor]:
    """BART-style attention: q/k/v/out_proj d×d with biases (Whisper's k_proj has none)."""
    out = _linear(f"{name}.q_proj", "attention", d, d, split="col", bias=True)
    out += _linear(f"{name}.k_proj", "attention", d, d, split="col", bias=k_bias)
    out += _linear(f"{name}.v_proj", "attention", d, d, split="col", bias=True)
    out += _linear(f"{name}.out_proj", "attention", d, d, split="row", bias=True)
    return out


def _bart_like(c: _Cfg) -> list[tuple[str, Tensor]]:
    """BART / mBART (transformers models/bart, mbart modeling files) and Whisper (models/whisper).

    Encoder and decoder layers: self_attn (+ encoder_attn in the decoder) with LayerNorms, fc1/fc2 with
    biases, final_layer_norm. BART/mBART: learned positions of max_position_embeddings + 2 rows on both
    sides, layernorm_embedding on both; mBART adds a final layer_norm on both. Whisper: conv1/conv2 over
    the mel bins, learned encoder positions (max_source_positions) and decoder positions
    (max_target_positions), a final layer_norm on both, k_proj without bias. Embeddings shared, output
    projection tied (``tie_word_embeddings`` default True); BART's final_logits_bias is a buffer.
    """
    mt, f, d = c.model_type, c.f, c.hidden
    whisper = mt == "whisper"
    items: list[tuple[str, Tensor]] = [
        ("model.", _t("shared.weight", "embeddings", c.vocab, d, split="vocab"))
    ]
    for side in ("encoder", "decoder"):
        n = f.int(f"{side}_layers", limit="layers")
        ffn = f.int(f"{side}_ffn_dim")
        pre = f"model.{side}."
        if whisper and side == "encoder":
            mel = f.int("num_mel_bins", default=80)
            items += [
                (pre, _t("conv1.weight", "embeddings", d, mel, 3)),
                (pre, _t("conv1.bias", "embeddings", d)),
            ]
            items += [
                (pre, _t("conv2.weight", "embeddings", d, d, 3)),
                (pre, _t("conv2.bias", "embeddings", d)),
            ]
            items.append((pre, _t("embed_positions.weight", "embeddings", f.int("max_source_positions"), d)))
        elif whisper:
            items.append((pre, _t("embed_positions.weight", "embeddings", f.int("max_target_positions"), d)))
        else:
            rows = f.int("max_position_embeddings") + 2
            items.append((pre, _t("embed_positions.weight", "embeddings", rows, d)))
            items += [(pre, t) for t in _ln("layernorm_embedding", d)]
        block = _enc_dec_attention("self_attn", d, k_bias=not whisper) + _ln("self_attn_layer_norm", d)
        if side == "decoder":
            block += _enc_dec_attention("encoder_attn", d, k_bias=not whisper)
            block += _ln("encoder_attn_layer_norm", d)
        block += _linear("fc1", "mlp", ffn, d, split="col", bias=True)
        block += _linear("fc2", "mlp", d, ffn, split="row", bias=True)
        block += _ln("final_layer_norm", d)
        items += [(f"{pre}layers.N.", t) for _ in range(n) for t in block]
        if whisper or mt == "mbart":
            items += [(pre, t) for t in _ln("layer_norm", d)]
    return items


def _t5(c: _Cfg) -> list[tuple[str, Tensor]]:
    """transformers models/t5/modeling_t5.py: shared embedding; per block self-attention q/k/v/o (inner =
    heads·d_kv, no bias) + T5LayerNorm (weight only), decoder cross-attention likewise, feed-forward wi/wo
    or gated wi_0/wi_1/wo (``feed_forward_proj`` "gated-…"); relative_attention_bias (buckets × heads) in
    the first block of each stack; final_layer_norm per stack; lm_head untied when tie_word_embeddings
    is false (default true)."""
    f, d = c.f, c.hidden
    heads = f.int("num_heads", limit="heads")
    inner = heads * f.int("d_kv")
    d_ff = f.int("d_ff")
    buckets = f.int("relative_attention_num_buckets", default=32)
    gated = str(c.cfg.get("feed_forward_proj", "relu")).startswith("gated-")
    n_enc = f.int("num_layers", limit="layers")
    n_dec = f.int("num_decoder_layers", default=n_enc, limit="layers")

    def attention(name: str) -> list[Tensor]:
        out: list[Tensor] = []
        for proj in ("q", "k", "v"):
            out += _linear(f"{name}.{proj}", "attention", inner, d, split="col")
        return out + _linear(f"{name}.o", "attention", d, inner, split="row")

    ff = (
        [*_linear("wi_0", "mlp", d_ff, d, split="col"), *_linear("wi_1", "mlp", d_ff, d, split="col")]
        if gated
        else _linear("wi", "mlp", d_ff, d, split="col")
    )
    ff = ff + _linear("wo", "mlp", d, d_ff, split="row") + _norm("ff_layer_norm", d)
    items: list[tuple[str, Tensor]] = [("", _t("shared.weight", "embeddings", c.vocab, d, split="vocab"))]
    for side, n in (("encoder", n_enc), ("decoder", n_dec)):
        block = attention("SelfAttention") + _norm("self_attn_layer_norm", d)
        if side == "decoder":
            block += attention("EncDecAttention") + _norm("cross_attn_layer_norm", d)
        items += [(f"{side}.block.N.", t) for _ in range(n) for t in block + ff]
        items.append((f"{side}.block.0.", _t("relative_attention_bias.weight", "attention", buckets, heads)))
        items += [(f"{side}.", t) for t in _norm("final_layer_norm", d)]
    return items


def _nas_intermediate(ffn: Mapping[str, Any], h: int, where: str) -> int:
    """DeciLM ``_ffn_mult_to_intermediate_size``: int(2·ffn_mult·h/3) rounded up to a multiple of 256
    (vLLM nemotron_nas.py), else the block's own ``intermediate_size``."""
    mult = ffn.get("ffn_mult")
    if mult is None:
        return check_int(ffn.get("intermediate_size"), f"{where}.intermediate_size")
    if isinstance(mult, bool) or not isinstance(mult, int | float) or mult <= 0:
        raise KVCalcError(f"{where}.ffn_mult: expected a positive number, got {mult!r}")
    inter = int(2 * mult * h / 3)
    return cdiv(inter, 256) * 256


def _nemotron_nas(model: Model, c: _Cfg) -> list[tuple[str, Tensor]]:
    """Nemotron-NAS / DeciLM (vLLM model_executor/models/nemotron_nas.py, DeciLMDecoderLayer): per layer,
    unless attention is no_op, q/k/v/o with num_attention_heads // n_heads_in_group KV heads (biases =
    attention_bias) and input_layernorm; unless the FFN is no_op, a gated MLP of
    :func:`_nas_intermediate` and post_attention_layernorm. ``replace_with_linear`` blocks are refused."""
    h, heads = c.hidden, c.heads
    hd = c.int("head_dim", default=h // heads)
    bias = c.flag("attention_bias", False)
    items = [("model.", _t("embed_tokens.weight", "embeddings", c.vocab, h, split="vocab"))]
    for i, (attn, ffn) in enumerate(nas_blocks(c.f, len(model.layers))):
        where = f"{c.f.where}block_configs[{i}]"
        for name, part in (("attention", attn), ("ffn", ffn)):
            if part.get("replace_with_linear") and not part.get("no_op"):
                raise KVCalcError(f"{where}.{name}.replace_with_linear: parameters not counted yet")
        block: list[Tensor] = []
        if not attn.get("no_op"):
            kv = heads // check_int(attn.get("n_heads_in_group"), f"{where}.attention.n_heads_in_group")
            block += _linear("self_attn.q_proj", "attention", heads * hd, h, split="col", bias=bias)
            for name in ("k_proj", "v_proj"):
                block += _linear(
                    f"self_attn.{name}", "attention", kv * hd, h, split="kv", heads=kv, bias=bias
                )
            block += _linear("self_attn.o_proj", "attention", h, heads * hd, split="row", bias=bias)
            block += _norm("input_layernorm", h)
        if not ffn.get("no_op"):
            inter = _nas_intermediate(ffn, h, f"{where}.ffn")
            block += _gated_mlp("mlp", "mlp", h, inter, bias=c.flag("mlp_bias", False))
            block += _norm("post_attention_layernorm", h)
        items += [("model.layers.N.", t) for t in block]
    items += [("model.", t) for t in _norm("norm", h)]
    return items


def _starcoder2(model: Model, c: _Cfg) -> list[tuple[str, Tensor]]:
    """transformers models/starcoder2/modeling_starcoder2.py: q/k/v/o and c_fc/c_proj (non-gated) with
    ``use_bias`` (default True), LayerNorms with bias, tied lm_head by default."""
    h, heads = c.hidden, c.heads
    hd = h // heads
    kv = c.f.int("num_key_value_heads", default=heads, limit="heads")
    inter, bias = c.int("intermediate_size"), c.flag("use_bias", True)
    block = _linear("self_attn.q_proj", "attention", heads * hd, h, split="col", bias=bias)
    for name in ("k_proj", "v_proj"):
        block += _linear(f"self_attn.{name}", "attention", kv * hd, h, split="kv", heads=kv, bias=bias)
    block += _linear("self_attn.o_proj", "attention", h, heads * hd, split="row", bias=bias)
    block += _linear("mlp.c_fc", "mlp", inter, h, split="col", bias=bias)
    block += _linear("mlp.c_proj", "mlp", h, inter, split="row", bias=bias)
    block += _ln("input_layernorm", h) + _ln("post_attention_layernorm", h)
    items = [("model.", _t("embed_tokens.weight", "embeddings", c.vocab, h, split="vocab"))]
    items += [("model.layers.N.", t) for _ in model.layers for t in block]
    return items + [("model.", t) for t in _ln("norm", h)]


def _gpt_neox(model: Model, c: _Cfg) -> list[tuple[str, Tensor]]:
    """transformers models/gpt_neox/modeling_gpt_neox.py: fused query_key_value (3h) and dense with
    ``attention_bias`` (default True), dense_h_to_4h / dense_4h_to_h with biases, two LayerNorms per
    layer, final_layer_norm, untied embed_out (lm_head) by default."""
    h = c.hidden
    inter, bias = c.int("intermediate_size"), c.flag("attention_bias", True)
    block = _linear("attention.query_key_value", "attention", 3 * h, h, split="col", bias=bias)
    block += _linear("attention.dense", "attention", h, h, split="row", bias=bias)
    block += _linear("mlp.dense_h_to_4h", "mlp", inter, h, split="col", bias=True)
    block += _linear("mlp.dense_4h_to_h", "mlp", h, inter, split="row", bias=True)
    block += _ln("input_layernorm", h) + _ln("post_attention_layernorm", h)
    items = [("gpt_neox.", _t("embed_in.weight", "embeddings", c.vocab, h, split="vocab"))]
    items += [("gpt_neox.layers.N.", t) for _ in model.layers for t in block]
    return items + [("gpt_neox.", t) for t in _ln("final_layer_norm", h)]


#: Model types counted by their own layout: function of (model, config reader) → (prefix, tensor) items.
_FAMILIES: dict[str, Any] = {
    "gpt2": lambda m, c: _gpt2(c, len(m.layers)),
    "falcon": lambda m, c: _falcon(c, len(m.layers)),
    "phi": lambda m, c: _phi(c, len(m.layers)),
    "mpt": lambda m, c: _mpt(c, len(m.layers)),
    "mamba": _ssm_lm,
    "falcon_mamba": _ssm_lm,
    "mamba2": _ssm_lm,
    "jamba": _jamba,
    "bart": lambda m, c: _bart_like(c),
    "mbart": lambda m, c: _bart_like(c),
    "whisper": lambda m, c: _bart_like(c),
    "t5": lambda m, c: _t5(c),
    "nemotron-nas": _nemotron_nas,
    "starcoder2": _starcoder2,
    "gpt_neox": _gpt_neox,
}
#: transformers config-class ``tie_word_embeddings`` defaults where they differ from False.
_TIE_DEFAULTS = {
    "gpt2": True, "falcon": True, "mpt": True, "mamba": True, "falcon_mamba": True, "bart": True,
    "mbart": True, "whisper": True, "t5": True, "starcoder2": True,
}  # fmt: skip


#: Every model type count_params answers for; the rest are refused.
COUNTED_TYPES = EXACT_TYPES | LLAMA_LIKE_TYPES | frozenset(_FAMILIES)


# ------------------------------------------------------------------------------------------------
# vision towers


def _vision_config(cfg: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for key in ("vision_config", "visual"):
        sub = cfg.get(key)
        if isinstance(sub, Mapping):
            return sub
    return None


def _qwen_vision(v: Fields, out_hidden: int) -> list[Tensor]:
    """Qwen3-VL / Qwen3.5 ViT: patch conv, learned positions, blocks, patch merger (+ deepstack)."""
    h = v.int("hidden_size")
    inter = v.int("intermediate_size")
    depth = v.int("depth", limit="layers")
    patch, tpatch = v.int("patch_size"), v.int("temporal_patch_size", default=2)
    chans, merge = v.int("in_channels", default=3), v.int("spatial_merge_size", default=2)
    merged = h * merge * merge
    out = [
        _t("patch_embed.proj.weight", "vision", h, chans, tpatch, patch, patch),
        _t("patch_embed.proj.bias", "vision", h),
        _t("pos_embed.weight", "vision", v.int("num_position_embeddings"), h),
    ]
    block = _norm("norm1", h, bias=True) + _norm("norm2", h, bias=True)
    block += _linear("attn.qkv", "vision", 3 * h, h, split="col", bias=True)
    block += _linear("attn.proj", "vision", h, h, split="row", bias=True)
    block += _linear("mlp.linear_fc1", "vision", inter, h, split="col", bias=True)
    block += _linear("mlp.linear_fc2", "vision", h, inter, split="row", bias=True)
    out += [Tensor(f"blocks.N.{t.name}", "vision", t.shape, depth, False, t.split) for t in block]
    merger = _norm("merger.norm", h, bias=True)
    merger += _linear("merger.linear_fc1", "vision", merged, merged, split="col", bias=True)
    merger += _linear("merger.linear_fc2", "vision", out_hidden, merged, split="row", bias=True)
    deep = len(v.list("deepstack_visual_indexes") or [])
    if deep:
        ds = _norm("norm", merged, bias=True)
        ds += _linear("linear_fc1", "vision", merged, merged, split="col", bias=True)
        ds += _linear("linear_fc2", "vision", out_hidden, merged, split="row", bias=True)
        name = "deepstack_merger_list.N."
        merger += [Tensor(f"{name}{t.name}", "vision", t.shape, deep, False, t.split) for t in ds]
    out += merger
    return [Tensor(f"model.visual.{t.name}", "vision", t.shape, t.count, False, t.split) for t in out]


_QWEN_VL_TYPES = {"qwen3_5", "qwen3_5_moe", "qwen3_vl", "qwen3_vl_moe"}


def _towers(model: Model, c: _Cfg, notes: list[str]) -> tuple[Tensor, ...]:
    """Vision tower tensors of a multimodal wrapper config (exact for Qwen3-VL / Qwen3.5)."""
    vision = _vision_config(model.config)
    if vision is None:
        return ()
    top_type = model.config.get("model_type")
    if top_type in _QWEN_VL_TYPES:
        out_hidden = Fields(vision, "vision_config.").int("out_hidden_size", default=c.hidden)
        return tuple(_qwen_vision(Fields(vision, "vision_config."), out_hidden))
    return _generic_vision(vision, c, notes)


def _generic_vision(vision: Mapping[str, Any], c: _Cfg, notes: list[str]) -> tuple[Tensor, ...]:
    """Estimate an unknown ViT: depth × (4·h² + 2·h·inter) plus a projector to the text width."""
    v = Fields(vision, "vision_config.")
    try:
        h = v.int("hidden_size", "embed_dim", "width")
        depth = v.int("depth", "num_hidden_layers", "layers", limit="layers")
        inter = v.int("intermediate_size", default=4 * h)
    except KVCalcError:
        notes.append("vision tower present but its size is unknown: not counted")
        return ()
    notes.append("vision tower estimated as a plain ViT (not an exact count)")
    blocks = Tensor("model.visual.blocks.N", "vision", (4 * h * h + 2 * h * inter + 9 * h + inter,), depth)
    return (blocks, Tensor("model.visual.projector", "vision", (h * c.hidden + c.hidden,)))


# ------------------------------------------------------------------------------------------------
# the count


@dataclass(frozen=True)
class ParamCount:
    """Parameters of a model by part. ``total``/``active`` cover the language model only.

    ``active``: parameters one token uses — everything except the routed experts, plus ``top_k`` of
    ``num_experts`` experts in every MoE layer. ``exact``: False when a part was estimated.
    """

    total: int
    active: int
    parts: Mapping[str, int]
    num_experts: int = 0
    experts_per_token: int = 0
    tied_embeddings: bool = False
    exact: bool = True
    notes: tuple[str, ...] = ()
    tensors: tuple[Tensor, ...] = field(default=(), repr=False, compare=False)

    def part(self, name: str) -> int:
        """Parameters of one part of :data:`PARTS` (0 when absent)."""
        return self.parts.get(name, 0)

    embeddings = property(lambda self: self.part("embeddings"), doc="Input embedding table.")
    attention = property(lambda self: self.part("attention"), doc="Attention projections, biases, sinks.")
    mlp = property(lambda self: self.part("mlp"), doc="Dense feed-forward blocks.")
    experts = property(lambda self: self.part("experts"), doc="Routed experts (all of them).")
    shared_experts = property(lambda self: self.part("shared_experts"), doc="Shared experts and their gates.")
    router = property(lambda self: self.part("router"), doc="MoE routers (gate weights and biases).")
    mixers = property(lambda self: self.part("mixers"), doc="Mamba / Gated DeltaNet mixers (norms apart).")
    norms = property(lambda self: self.part("norms"), doc="Every normalisation weight and bias.")
    lm_head = property(lambda self: self.part("lm_head"), doc="Output head (0 when tied).")
    vision = property(lambda self: self.part("vision"), doc="Vision tower (not in total).")
    audio = property(lambda self: self.part("audio"), doc="Audio tower (not in total).")

    @property
    def towers(self) -> int:
        """Vision + audio tower parameters."""
        return sum(self.parts.get(p, 0) for p in TOWER_PARTS)

    @property
    def total_with_towers(self) -> int:
        """Everything the checkpoint holds: language model plus towers."""
        return self.total + self.towers

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no tensor list)."""
        return {
            "total": self.total,
            "active": self.active,
            "total_with_towers": self.total_with_towers,
            "parts": {p: self.parts.get(p, 0) for p in PARTS},
            "num_experts": self.num_experts,
            "experts_per_token": self.experts_per_token,
            "tied_embeddings": self.tied_embeddings,
            "exact": self.exact,
            "notes": list(self.notes),
        }


def count_params(model: Model) -> ParamCount:
    """Exact parameter counts of ``model`` (a :class:`kvcalc.Model`), from its config alone."""
    if not isinstance(model, Model):
        raise KVCalcError(f"model: expected a kvcalc Model (use load_model), got {type(model).__name__}")
    if model.model_type not in COUNTED_TYPES:
        raise KVCalcError(
            f"model_type: parameters of {model.model_type or '(missing)'!r} are not counted exactly yet "
            "(kvcalc refuses rather than estimate)"
        )
    c = _Cfg(model)
    notes: list[str] = []
    tensors = _decoder(model, c, notes) + _towers(model, c, notes)
    moe = _moe_spec(c)
    top_k = moe.top_k if moe else 0
    parts = {p: 0 for p in PARTS}
    active_experts = 0
    for t in tensors:
        parts[t.part] += t.total
        if t.experts:
            active_experts += t.total // t.experts * top_k
    total = sum(v for p, v in parts.items() if p not in TOWER_PARTS)
    exact = not notes
    return ParamCount(
        total=total,
        active=total - parts["experts"] + active_experts,
        parts=parts,
        num_experts=moe.experts if moe else 0,
        experts_per_token=moe.top_k if moe else 0,
        tied_embeddings=c.tied(),
        exact=exact,
        notes=tuple(notes),
        tensors=tensors,
    )


# ------------------------------------------------------------------------------------------------
# weight formats


@dataclass(frozen=True)
class WeightFormat:
    """How a weight matrix [out, in] is stored: data bits plus scale overheads (all in bits).

    ``group``/``group_bits``: one scale (+ zero point) per ``group`` input elements of each row.
    ``block``/``block_bits``: one scale per (block_out × block_in) tile (fp8 block scaling).
    ``row_bits``: per output channel; ``col_bits``: per input column (GPTQ ``g_idx``);
    ``tensor_bits``: per matrix. ``experts_only``: in MoE models only the routed experts are quantised
    (gpt-oss mxfp4); dense models get every Linear quantised.
    """

    name: str
    bits: int
    group: int = 0
    group_bits: int = 0
    block: tuple[int, int] = (0, 0)
    block_bits: int = 0
    row_bits: int = 0
    col_bits: int = 0
    tensor_bits: int = 0
    experts_only: bool = False
    description: str = ""

    @property
    def quantized(self) -> bool:
        """True for formats that keep some tensors in the model dtype."""
        return self.bits < 16

    def matrix_bits(self, out: int, inp: int) -> int:
        """Bits of one [out, in] matrix in this format, scales included."""
        bits = out * inp * self.bits + out * self.row_bits + inp * self.col_bits + self.tensor_bits
        if self.group:
            bits += out * cdiv(inp, self.group) * self.group_bits
        if self.block_bits:
            bo, bi = self.block
            bits += cdiv(out, bo) * cdiv(inp, bi) * self.block_bits
        return bits


WEIGHT_FORMATS: dict[str, WeightFormat] = {
    f.name: f
    for f in (
        WeightFormat("fp32", 32, description="float32"),
        WeightFormat("bf16", 16, description="bfloat16"),
        WeightFormat("fp16", 16, description="float16"),
        WeightFormat("fp8", 8, tensor_bits=32, description="fp8 e4m3, one fp32 scale per matrix"),
        WeightFormat("fp8_channel", 8, row_bits=32, description="fp8 e4m3, fp32 scale per output channel"),
        WeightFormat(
            "fp8_block", 8, block=(128, 128), block_bits=32,
            description="fp8 e4m3, fp32 scale per 128×128 block (DeepSeek-V3 weight_scale_inv, Qwen3-FP8)",
        ),
        WeightFormat("int8", 8, row_bits=32, description="int8 W8A8, fp32 scale per output channel"),
        WeightFormat(
            "int4", 4, group=128, group_bits=20,
            description="int4 group 128 (AWQ): fp16 scale + packed 4-bit zero per group",
        ),
        WeightFormat(
            "int4_gptq", 4, group=128, group_bits=20, col_bits=32,
            description="int4 group 128 (GPTQ): fp16 scale + 4-bit zero per group, int32 g_idx per column",
        ),
        WeightFormat(
            "mxfp4", 4, group=32, group_bits=8, experts_only=True,
            description="MXFP4 experts (gpt-oss): 4-bit e2m1 + one e8m0 scale byte per 32; rest bf16",
        ),
        WeightFormat(
            "nvfp4", 4, group=16, group_bits=8, tensor_bits=32,
            description="NVFP4: 4-bit e2m1 + fp8 scale per 16 + fp32 global scale per matrix",
        ),
    )
}  # fmt: skip

_FORMAT_ALIASES = {
    "bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32", "float": "fp32",
    "fp8_e4m3": "fp8", "float8": "fp8", "w8a8": "int8", "awq": "int4", "gptq": "int4_gptq",
}  # fmt: skip


def get_weight_format(name: object, field_name: str = "weight_dtype") -> WeightFormat:
    """A weight format by name (case-insensitive; torch dtype names accepted)."""
    if isinstance(name, WeightFormat):
        return name
    if not isinstance(name, str):
        raise KVCalcError(f"{field_name}: expected a weight format name, got {name!r}")
    key = name.strip().lower().replace("-", "_")
    key = _FORMAT_ALIASES.get(key, key)
    try:
        return WEIGHT_FORMATS[key]
    except KeyError:
        raise KVCalcError(
            f"{field_name}: unknown weight format {name!r}; choose one of {', '.join(WEIGHT_FORMATS)}"
        ) from None


def checkpoint_weight_format(model: Model) -> WeightFormat:
    """The checkpoint's own format, from ``quantization_config`` (else the model dtype)."""
    q = model.config.get("quantization_config")
    if not isinstance(q, Mapping):
        q = text_config(model.config)[0].get("quantization_config")
    if not isinstance(q, Mapping):
        return WEIGHT_FORMATS[model.dtype]
    method = str(q.get("quant_method", "")).lower()
    if method == "fp8":
        block = q.get("weight_block_size")
        if isinstance(block, list) and len(block) == 2 and all(isinstance(b, int) and b > 0 for b in block):
            base = WEIGHT_FORMATS["fp8_block"]
            if tuple(block) == base.block:
                return base
            bo, bi = block
            desc = f"fp8 e4m3, fp32 scale per {bo}×{bi} block"
            return WeightFormat(f"fp8_block{bo}x{bi}", 8, block=(bo, bi), block_bits=32, description=desc)
        return WEIGHT_FORMATS["fp8"]
    if method == "mxfp4":
        return WEIGHT_FORMATS["mxfp4"]
    if method in ("gptq", "awq"):
        return _int_format(method, q)
    return WEIGHT_FORMATS[model.dtype]


def _int_format(method: str, q: Mapping[str, Any]) -> WeightFormat:
    """GPTQ / AWQ int-N with its group size (fp16 scale + N-bit zero per group)."""
    bits = q.get("bits", q.get("w_bit", 4))
    group = q.get("group_size", q.get("q_group_size", 128))
    if not isinstance(bits, int) or bits not in (2, 3, 4, 8):
        raise KVCalcError(f"quantization_config.bits: unsupported {bits!r}")
    if not isinstance(group, int) or group == 0 or group < -1:
        raise KVCalcError(f"quantization_config.group_size: unsupported {group!r}")
    col = 32 if method == "gptq" else 0
    if group == -1:
        return WeightFormat(f"int{bits}_{method}_channel", bits, row_bits=16 + bits, col_bits=col,
                            description=f"int{bits} {method.upper()} per channel")  # fmt: skip
    return WeightFormat(f"int{bits}_{method}_g{group}", bits, group=group, group_bits=16 + bits, col_bits=col,
                        description=f"int{bits} {method.upper()} group {group}")  # fmt: skip


@dataclass(frozen=True)
class WeightBytes:
    """Bytes of the weights in one format, per tensor-parallel rank (``tp`` = 1: the whole model)."""

    total: int
    parts: Mapping[str, int]
    format: str
    tensor_parallel_size: int = 1
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "total": self.total,
            "parts": dict(self.parts),
            "format": self.format,
            "tensor_parallel_size": self.tensor_parallel_size,
            "description": self.description,
        }


def _tensor_bytes(t: Tensor, fmt: WeightFormat, base: int, tp: int, vocab_pad: int, moe: bool) -> int:
    """Bytes of all copies of one tensor on one rank (``moe``: the model has routed experts)."""
    shape = t.rank_shape(tp, vocab_pad)
    n = 1
    for d in shape:
        n *= d
    quantize = fmt.quantized and t.quantizable and (not (fmt.experts_only and moe) or t.part == "experts")
    if not quantize:
        return n * (fmt.bits // 8 if not fmt.quantized else base) * t.count
    inp = n // shape[0]
    return cdiv(fmt.matrix_bits(shape[0], inp), 8) * t.count


def weight_bytes(
    model: Model,
    weight_dtype: str | WeightFormat | None = None,
    *,
    tensor_parallel_size: int = 1,
    include_towers: bool = True,
    vocab_padding: int = 1,
    params: ParamCount | None = None,
) -> WeightBytes:
    """Weight bytes in ``weight_dtype`` (default: the checkpoint's format) on one tensor-parallel rank.

    Exact for the format as described by :class:`WeightFormat` at ``tensor_parallel_size=1``; with
    tp > 1 it follows vLLM's sharding (column/row split, KV heads replicated when tp > heads, MLA down
    projections, routers and norms replicated) and is an estimate (kernel padding ignored).
    ``vocab_padding``: round embedding rows up to this multiple (vLLM: 64).
    """
    fmt = checkpoint_weight_format(model) if weight_dtype is None else get_weight_format(weight_dtype)
    tp = tensor_parallel_size
    if isinstance(tp, bool) or not isinstance(tp, int) or tp < 1:
        raise KVCalcError(f"tensor_parallel_size: expected an integer ≥ 1, got {tp!r}")
    base = get_dtype(model.dtype).plain_bytes or 2
    counted = params or count_params(model)
    moe = any(t.experts for t in counted.tensors)
    parts: dict[str, int] = {}
    for t in counted.tensors:
        if t.part in TOWER_PARTS and not include_towers:
            continue
        parts[t.part] = parts.get(t.part, 0) + _tensor_bytes(t, fmt, base, tp, vocab_padding, moe)
    return WeightBytes(
        total=sum(parts.values()),
        parts={p: parts[p] for p in PARTS if p in parts},
        format=fmt.name,
        tensor_parallel_size=tp,
        description=fmt.description,
    )
