"""Seed-compatible API for users of the memory-calculator library kvcalc replaces.

* ``calculate_kv_cache_size(ModelVariant(...), sequence_length, batch_size, precision_bits)`` — the
  textbook formula 2 · layers · batch · tokens · kv_heads · head_dim · bits / 8, in bytes (exact);
* ``calculate_memory(model_or_config, batch_size, seq_length, precision)`` → :class:`MemoryReport`;
* ``compare_models``, ``estimate_max_batch_size``, ``analyze_attention_efficiency``.

Weights (exact parameter count × the precision's format) and KV cache / state (exact, kvcalc's
``ideal`` engine) are computed; activations and framework overhead are estimates, as in the seed
(``framework_overhead`` = 1.2 multiplies the runtime memory). GB in ``*_gb`` fields means 10^9 bytes,
like the seed; every byte count is also given as an integer. Configs without a KV cache (diffusion
pipelines) get ``kv_cache_applicable = False`` and ``None`` instead of a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kvcalc.core.fields import check_int
from kvcalc.core.layers import MLA, _Attention, _State
from kvcalc.core.model import Model, load_model
from kvcalc.core.params import count_params, weight_bytes
from kvcalc.deploy.gpus import GPU, GPUS
from kvcalc.engines import layer_bytes
from kvcalc.errors import KVCalcError

__all__ = [
    "MemoryReport",
    "ModelVariant",
    "analyze_attention_efficiency",
    "calculate_kv_cache_size",
    "calculate_memory",
    "compare_models",
    "estimate_max_batch_size",
]

GB = 10**9
NOT_APPLICABLE = "not applicable: this model keeps no KV cache"


# ------------------------------------------------------------------------------------------------
# the seed's hand-entered geometry


@dataclass(frozen=True)
class ModelVariant:
    """Attention geometry typed in by hand. MoE fields are accepted; experts do not change the KV cache."""

    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int | None = None
    head_dim: int | None = None
    name: str = "custom"
    num_experts: int | None = None
    num_experts_per_tok: int | None = None
    expert_intermediate_size: int | None = None
    intermediate_size: int | None = None
    vocab_size: int | None = None

    def __post_init__(self) -> None:
        check_int(self.num_layers, "num_layers", maximum=100_000)
        check_int(self.hidden_size, "hidden_size", maximum=10_000_000)
        check_int(self.num_heads, "num_heads", maximum=1_000_000)
        kv = self.kv_heads
        check_int(kv, "num_kv_heads", maximum=1_000_000)
        if kv > self.num_heads or self.num_heads % kv:
            raise KVCalcError(f"num_kv_heads: {kv} must divide num_heads ({self.num_heads})")
        if self.head_dim is None and self.hidden_size % self.num_heads:
            raise KVCalcError(
                f"head_dim: hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}; "
                "give head_dim"
            )
        if self.head_dim is not None:
            check_int(self.head_dim, "head_dim", maximum=10_000_000)

    @property
    def kv_heads(self) -> int:
        """KV heads (num_heads when not given: plain multi-head attention)."""
        return self.num_kv_heads if self.num_kv_heads is not None else self.num_heads

    @property
    def dim_per_head(self) -> int:
        """head_dim, else hidden_size / num_heads."""
        return self.head_dim or self.hidden_size // self.num_heads


def calculate_kv_cache_size(
    variant: ModelVariant, sequence_length: int, batch_size: int = 1, precision_bits: int = 16
) -> int:
    """KV cache bytes: 2 (K and V) · layers · batch · tokens · kv_heads · head_dim · bits / 8."""
    if not isinstance(variant, ModelVariant):
        raise KVCalcError(f"variant: expected a ModelVariant, got {type(variant).__name__}")
    tokens = check_int(sequence_length, "sequence_length", minimum=0)
    batch = check_int(batch_size, "batch_size", maximum=1 << 24)
    bits = check_int(precision_bits, "precision_bits", maximum=64)
    total_bits = 2 * variant.num_layers * batch * tokens * variant.kv_heads * variant.dim_per_head * bits
    return -(-total_bits // 8)


# ------------------------------------------------------------------------------------------------
# whole-model report


#: precision → (weight format, KV cache dtype). Integer weights keep the KV cache in fp16.
_PRECISIONS = {
    "fp32": ("fp32", "fp32"),
    "fp16": ("fp16", "fp16"),
    "bf16": ("bf16", "bf16"),
    "fp8": ("fp8", "fp8"),
    "int8": ("int8", "fp16"),
    "int4": ("int4", "fp16"),
}
_PRECISION_ALIASES = {
    "float32": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16", "float8": "fp8",
}  # fmt: skip


def _precision(name: object) -> tuple[str, str]:
    key = name.strip().lower() if isinstance(name, str) else ""
    key = _PRECISION_ALIASES.get(key, key)
    if key not in _PRECISIONS:
        raise KVCalcError(f"precision: unknown {name!r}; choose one of {', '.join(_PRECISIONS)}")
    return _PRECISIONS[key]


@dataclass(frozen=True)
class MemoryReport:
    """Inference memory of one model (bytes; ``*_gb`` = 10^9 bytes). Exact vs estimated: module doc."""

    model: str
    precision: str
    batch_size: int
    seq_length: int
    parameter_count: int | None
    weight_memory_bytes: int | None
    vision_memory_bytes: int
    kv_cache_bytes: int | None
    state_memory_bytes: int
    activation_memory_bytes: int
    extra_work_bytes: int
    total_memory_bytes: int
    kv_cache_applicable: bool
    attention_type: str | None
    recommended_gpu: str | None
    recommended_gpu_memory_gb: float | None
    notes: tuple[str, ...] = field(default=())

    @property
    def weight_memory_gb(self) -> float | None:
        return None if self.weight_memory_bytes is None else self.weight_memory_bytes / GB

    @property
    def kv_cache_gb(self) -> float | None:
        return None if self.kv_cache_bytes is None else self.kv_cache_bytes / GB

    @property
    def state_memory_gb(self) -> float:
        return self.state_memory_bytes / GB

    @property
    def activation_memory_gb(self) -> float:
        return self.activation_memory_bytes / GB

    @property
    def total_memory_gb(self) -> float:
        return self.total_memory_bytes / GB

    @property
    def kv_cache_display(self) -> str:
        """"12.34 GB", or the not-applicable sentence."""
        return NOT_APPLICABLE if self.kv_cache_bytes is None else f"{self.kv_cache_bytes / GB:.2f} GB"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus the GB views."""
        out = asdict(self)
        out["notes"] = list(self.notes)
        for key in ("weight_memory", "kv_cache", "state_memory", "activation_memory", "total_memory"):
            out[f"{key}_gb"] = getattr(self, f"{key}_gb")
        return out


def _is_diffusion(cfg: Mapping[str, Any]) -> bool:
    return "_class_name" in cfg or "_diffusers_version" in cfg


def _as_model(source: Any) -> Model | Mapping[str, Any]:
    """A Model, or the raw dict of a config without a language model (diffusion)."""
    if isinstance(source, Model):
        return source
    if isinstance(source, ModelVariant):
        return _variant_model(source)
    if isinstance(source, Mapping) and _is_diffusion(source):
        return source
    if isinstance(source, str) and not source.lstrip().startswith("{"):
        from kvcalc.core.catalog import default_catalog_path, load_catalog

        path = default_catalog_path()
        if path is not None:
            catalog = load_catalog(path)
            if source in catalog:
                return catalog.model(source)
    return load_model(source)


def _variant_model(v: ModelVariant) -> Model:
    cfg = {
        "model_type": "llama",
        "num_hidden_layers": v.num_layers,
        "hidden_size": v.hidden_size,
        "num_attention_heads": v.num_heads,
        "num_key_value_heads": v.kv_heads,
        "head_dim": v.dim_per_head,
        "intermediate_size": v.intermediate_size or 4 * v.hidden_size,
        "vocab_size": v.vocab_size or 32000,
    }
    if v.num_experts:
        top_k = v.num_experts_per_tok or 2
        cfg.update(model_type="mixtral", num_local_experts=v.num_experts, num_experts_per_tok=top_k)
        if v.expert_intermediate_size:
            cfg["intermediate_size"] = v.expert_intermediate_size
    return load_model(cfg, name=v.name)


def attention_type(model: Model) -> str | None:
    """"mla", "mha", "gqa", "mqa", "hybrid" (recurrent state beside attention), "ssm", or None."""
    leaves = [leaf for layer in model.layers for leaf in layer.leaves()]
    attn = [x for x in leaves if isinstance(x, _Attention | MLA)]
    states = [x for x in leaves if isinstance(x, _State)]
    if not attn:
        return "ssm" if states else None
    if states:
        return "hybrid"
    if any(isinstance(x, MLA) for x in attn):
        return "mla"
    heads = model.text_config.get("num_attention_heads")
    kv = min(x.kv_heads for x in attn if isinstance(x, _Attention))
    if kv == 1:
        return "mqa"
    return "mha" if isinstance(heads, int) and kv >= heads else "gqa"


def _cache_split(model: Model, seq: int, batch: int, kv_dtype: str) -> tuple[int, int]:
    """(KV bytes, recurrent-state bytes) under the ideal engine."""

    def sizes(n: int) -> list[int]:
        return layer_bytes(model, n, batch_size=batch, kv_dtype=kv_dtype, engine="ideal")

    kv = state = 0
    mixed: list[int] = []
    for i, (layer, size) in enumerate(zip(model.layers, sizes(seq), strict=True)):
        kinds = [isinstance(x, _State) for x in layer.leaves()]
        if all(kinds):
            state += size
        elif any(kinds):
            mixed.append(i)  # Falcon-H1: attention and mamba in one layer
        else:
            kv += size
    if mixed and seq:
        at1, at2, at_seq = sizes(1), sizes(2), sizes(seq)
        for i in mixed:
            fixed = 2 * at1[i] - at2[i]  # a·L + s at L = 1, 2 → s = 2·(a + s) − (2a + s)
            state += fixed
            kv += at_seq[i] - fixed
    return kv, state


def _activations(model: Model, batch: int, seq: int, dtype_bytes: int) -> int:
    """Prefill activations estimate: residual stream + widest MLP intermediate + last-token logits."""
    cfg = model.text_config
    hidden = cfg.get("hidden_size") or 0
    inter = cfg.get("moe_intermediate_size") or cfg.get("intermediate_size") or 4 * hidden
    vocab = cfg.get("vocab_size") or 0
    tokens = batch * seq
    return tokens * (4 * hidden + 3 * inter) * dtype_bytes + batch * vocab * 4


def _recommend(total: int) -> tuple[str | None, float | None]:
    fitting: list[GPU] = sorted((g for g in GPUS if not g.unified), key=lambda g: g.memory_bytes)
    for g in fitting:
        if g.memory_bytes >= total:
            return g.key, round(g.memory_bytes / GB, 2)
    return None, math.ceil(total / GB / 8) * 8.0


def calculate_memory(
    model_or_config: Any,
    batch_size: int = 1,
    seq_length: int = 4096,
    precision: str = "fp16",
    *,
    framework_overhead: float = 1.2,
    kv_dtype: str | None = None,
) -> MemoryReport:
    """Memory to serve ``batch_size`` sequences of ``seq_length`` tokens on one device.

    ``model_or_config``: a :class:`kvcalc.Model`, a config dict, JSON text, a path, a preloaded model
    name, or a :class:`ModelVariant`. ``precision``: weights (fp32, fp16, bf16, fp8, int8, int4); the KV
    cache uses it too for float formats and stays fp16 under integer weights unless ``kv_dtype`` says.
    """
    batch = check_int(batch_size, "batch_size", maximum=1 << 24)
    seq = check_int(seq_length, "seq_length", minimum=0)
    weight_fmt, cache_dtype = _precision(precision)
    overhead = framework_overhead
    if isinstance(overhead, bool) or not isinstance(overhead, int | float) or overhead < 1:
        raise KVCalcError(f"framework_overhead: expected a number ≥ 1, got {framework_overhead!r}")
    resolved = _as_model(model_or_config)
    if not isinstance(resolved, Model):
        return _not_applicable(resolved, precision, batch, seq)
    model = resolved
    params = count_params(model)
    weights = weight_bytes(model, weight_fmt, params=params)
    vision = weights.parts.get("vision", 0) + weights.parts.get("audio", 0)
    kv, state = _cache_split(model, seq, batch, kv_dtype or cache_dtype)
    applicable = any(isinstance(x, _Attention | MLA) for layer in model.layers for x in layer.leaves())
    act = _activations(model, batch, seq, 4 if weight_fmt == "fp32" else 2)
    runtime = weights.total + kv + state + act
    extra = int(runtime * (framework_overhead - 1))
    total = runtime + extra
    gpu, gpu_gb = _recommend(total)
    notes = ["activations and framework overhead are estimates"]
    if not applicable:
        notes.append(NOT_APPLICABLE + " (recurrent state only)")
    return MemoryReport(
        model=model.name,
        precision=weight_fmt,
        batch_size=batch,
        seq_length=seq,
        parameter_count=params.total_with_towers,
        weight_memory_bytes=weights.total,
        vision_memory_bytes=vision,
        kv_cache_bytes=kv if applicable else None,
        state_memory_bytes=state,
        activation_memory_bytes=act,
        extra_work_bytes=extra,
        total_memory_bytes=total,
        kv_cache_applicable=applicable,
        attention_type=attention_type(model),
        recommended_gpu=gpu,
        recommended_gpu_memory_gb=gpu_gb,
        notes=tuple(notes + list(params.notes)),
    )


def _not_applicable(cfg: Mapping[str, Any], precision: str, batch: int, seq: int) -> MemoryReport:
    name = str(cfg.get("_class_name") or cfg.get("_name_or_path") or "diffusion model")
    return MemoryReport(
        model=name,
        precision=precision,
        batch_size=batch,
        seq_length=seq,
        parameter_count=None,
        weight_memory_bytes=None,
        vision_memory_bytes=0,
        kv_cache_bytes=None,
        state_memory_bytes=0,
        activation_memory_bytes=0,
        extra_work_bytes=0,
        total_memory_bytes=0,
        kv_cache_applicable=False,
        attention_type=None,
        recommended_gpu=None,
        recommended_gpu_memory_gb=None,
        notes=(NOT_APPLICABLE + " (diffusion pipeline config)", "weights cannot be counted from this config"),
    )


def compare_models(models: Sequence[Any], seq_length: int = 4096, **kw: Any) -> list[dict[str, Any]]:
    """One summary row per model at ``seq_length`` (same keyword arguments as :func:`calculate_memory`)."""
    if isinstance(models, str | bytes) or not isinstance(models, Sequence):
        raise KVCalcError("models: expected a list of models or configs")
    rows = []
    for m in models:
        r = calculate_memory(m, seq_length=seq_length, **kw)
        rows.append({
            "model": r.model,
            "attention_type": r.attention_type,
            "parameters": r.parameter_count,
            "weight_memory_bytes": r.weight_memory_bytes,
            "kv_cache_bytes": r.kv_cache_bytes,
            "state_memory_bytes": r.state_memory_bytes,
            "total_memory_bytes": r.total_memory_bytes,
            "kv_cache_gb": r.kv_cache_gb,
            "total_memory_gb": r.total_memory_gb,
            "kv_cache": r.kv_cache_display,
        })  # fmt: skip
    return rows


def estimate_max_batch_size(
    model: Any, gpu_memory_gb: float, seq_length: int = 4096, precision: str = "fp16", **kw: Any
) -> int:
    """Largest batch whose total memory stays within 90 % of ``gpu_memory_gb`` (GB = 10^9); 0 if none."""
    if isinstance(gpu_memory_gb, bool) or not isinstance(gpu_memory_gb, int | float) or gpu_memory_gb <= 0:
        raise KVCalcError(f"gpu_memory_gb: expected a positive number, got {gpu_memory_gb!r}")
    resolved = _as_model(model)
    budget = gpu_memory_gb * GB * 0.9

    def fits(batch: int) -> bool:
        return calculate_memory(resolved, batch, seq_length, precision, **kw).total_memory_bytes <= budget

    if not isinstance(resolved, Model) or not fits(1):
        return 0
    hi = 1
    while hi < 1 << 24 and fits(hi * 2):
        hi *= 2
    lo, hi = hi, min(hi * 2, 1 << 24)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


_RATINGS = {
    "mla": "excellent", "hybrid": "excellent", "ssm": "excellent",
    "gqa": "good", "mqa": "good", "mha": "moderate",
}  # fmt: skip


def analyze_attention_efficiency(
    model: Any,
    seq_lengths: Sequence[int] = (1024, 4096, 16384, 32768),
    batch_size: int = 1,
    precision: str = "fp16",
) -> dict[str, Any]:
    """Per sequence length: KV bytes, total bytes and the KV share of the total; bytes per token."""
    resolved = _as_model(model)
    if not isinstance(resolved, Model):
        return {"model": str(resolved.get("_class_name", "diffusion model")), "attention_type": None,
                "kv_cache_applicable": False, "results": {}, "memory_per_token_bytes": None,
                "efficiency_rating": NOT_APPLICABLE}  # fmt: skip
    lengths = [check_int(n, "seq_lengths", minimum=0) for n in seq_lengths]
    results: dict[int, dict[str, Any]] = {}
    for n in lengths:
        r = calculate_memory(resolved, batch_size, n, precision)
        kv = r.kv_cache_bytes or 0
        results[n] = {
            "kv_cache_bytes": r.kv_cache_bytes,
            "total_memory_bytes": r.total_memory_bytes,
            "kv_cache_share": kv / r.total_memory_bytes if r.total_memory_bytes else 0.0,
            "kv_cache_gb": r.kv_cache_gb,
            "total_memory_gb": r.total_memory_gb,
            "kv_cache_percent": 100 * kv / r.total_memory_bytes if r.total_memory_bytes else 0.0,
        }
    per_token = None
    if len(lengths) >= 2 and lengths[-1] != lengths[0]:
        a, b = results[lengths[0]]["kv_cache_bytes"] or 0, results[lengths[-1]]["kv_cache_bytes"] or 0
        per_token = (b - a) // (lengths[-1] - lengths[0])
    kind = attention_type(resolved)
    return {
        "model": resolved.name,
        "attention_type": kind,
        "kv_cache_applicable": any(r["kv_cache_bytes"] is not None for r in results.values()),
        "results": results,
        "memory_per_token_bytes": per_token,
        "efficiency_rating": _RATINGS.get(kind or "", "unknown"),
    }
