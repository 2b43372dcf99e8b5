"""Drop-in API for users of the older calculators kvcalc replaces (``from kvcalc.compat import …``).

* kv-cache-calculator (hsliuustc/kv_cache_calculator): :class:`ModelVariant`,
  :func:`calculate_kv_cache_size` (GiB, as that README prints it) and the ``kv-cache-calc`` command
  (also ``python -m kvcalc.compat …``);
* llm-memory-calculator (BudEcosystem/simulator, ``llm-memory-calculator/``): :func:`calculate_memory`,
  :func:`analyze_hf_model`, :func:`compare_models`, :func:`estimate_max_batch_size`,
  :func:`analyze_attention_efficiency`, and the classes :class:`ModelMemoryCalculator`,
  :class:`UniversalParameterCounter`, :class:`HuggingFaceConfigLoader`, :class:`MemoryReport`.

Units: every ``*_gb`` float is **GiB (2^30 bytes)**, the unit kvcalc prints everywhere; every size is
also given as an integer byte count (``*_bytes``). llm-memory-calculator divided by 10^9 instead, so its
"GB" figures were 7.4 % larger for the same bytes; kv-cache-calculator already divided by 2^30.

What is exact and what is estimated: weights (exact parameter count × the precision's format) and the
KV cache / recurrent state (kvcalc's ``ideal`` engine) are exact; activations and the framework overhead
are estimates, as in llm-memory-calculator (``framework_overhead`` = 1.2 multiplies the runtime memory —
KV cache, state and activations — not the weights). Configs without a KV cache (diffusion pipelines) get
``kv_cache_applicable = False`` and ``None`` instead of a number.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from kvcalc.core.checkpoint import Checkpoint
from kvcalc.core.facts import query_heads
from kvcalc.core.fields import check_int
from kvcalc.core.layers import MLA, SlidingWindow, _Attention, _State
from kvcalc.core.model import Model, load_model
from kvcalc.core.params import count_params, weight_bytes
from kvcalc.core.units import GIB, fmt_token_bytes
from kvcalc.deploy.gpus import GPU, GPUS
from kvcalc.engines import kv_bytes_per_token, kv_bytes_per_token_short, layer_bytes
from kvcalc.errors import KVCalcError

__all__ = [
    "HuggingFaceConfigLoader",
    "MemoryReport",
    "ModelMemoryCalculator",
    "ModelVariant",
    "UniversalParameterCounter",
    "analyze_attention_efficiency",
    "analyze_hf_model",
    "calculate_kv_cache_size",
    "calculate_memory",
    "compare_models",
    "estimate_max_batch_size",
    "kv_cache_bytes",
]

NOT_APPLICABLE = "not applicable: this model keeps no KV cache"
DEFAULT_SEQ_LENGTH = 2048  # llm-memory-calculator's default
BATCH_UTILIZATION = 0.9  # llm-memory-calculator's "leave 10 % buffer" (= vLLM's older default)


# ------------------------------------------------------------------------------------------------
# kv-cache-calculator: hand-entered geometry


@dataclass(frozen=True)
class ModelVariant:
    """Attention geometry typed in by hand, with kv-cache-calculator's field names and order
    (``name, num_layers, hidden_size, num_attention_heads, num_experts, expert_capacity, active_experts``).

    ``num_heads`` is accepted for ``num_attention_heads``, ``num_experts_per_tok`` for ``active_experts``;
    ``num_kv_heads`` (default: every head has its own K and V) and ``head_dim`` (default hidden / heads)
    describe GQA/MQA models. MoE fields are accepted and do not change the KV cache: attention runs
    before the experts, once per token, whatever expert the router picks.
    """

    name: str = "custom"
    num_layers: int | None = None
    hidden_size: int | None = None
    num_attention_heads: int | None = None
    num_experts: int | None = None
    expert_capacity: int | None = None
    active_experts: int | None = None
    num_kv_heads: int | None = None
    head_dim: int | None = None
    num_heads: int | None = None
    num_experts_per_tok: int | None = None
    expert_intermediate_size: int | None = None
    intermediate_size: int | None = None
    vocab_size: int | None = None

    def __post_init__(self) -> None:
        heads = self.num_attention_heads if self.num_attention_heads is not None else self.num_heads
        if self.num_heads is not None and heads != self.num_heads:
            raise KVCalcError(f"num_heads: {self.num_heads} disagrees with num_attention_heads {heads}")
        object.__setattr__(self, "num_attention_heads", heads)
        object.__setattr__(self, "num_heads", heads)
        top_k = self.active_experts if self.active_experts is not None else self.num_experts_per_tok
        object.__setattr__(self, "active_experts", top_k)
        object.__setattr__(self, "num_experts_per_tok", top_k)
        for key, limit in (
            ("num_layers", 100_000),
            ("hidden_size", 10_000_000),
            ("num_attention_heads", 1 << 20),
        ):
            if getattr(self, key) is None:
                raise KVCalcError(f"{key}: required")
            check_int(getattr(self, key), key, maximum=limit)
        kv = self.kv_heads
        check_int(kv, "num_kv_heads", maximum=1 << 20)
        if kv > heads or heads % kv:  # type: ignore[operator]
            raise KVCalcError(f"num_kv_heads: {kv} must divide num_attention_heads ({heads})")
        if self.head_dim is None and self.hidden_size % heads:  # type: ignore[operator]
            raise KVCalcError(
                f"head_dim: hidden_size {self.hidden_size} is not divisible by num_attention_heads {heads}; "
                "give head_dim"
            )
        if self.head_dim is not None:
            check_int(self.head_dim, "head_dim", maximum=10_000_000)
        for key in ("num_experts", "expert_capacity", "active_experts"):
            if getattr(self, key) is not None:
                check_int(getattr(self, key), key, maximum=1 << 20)

    @property
    def kv_heads(self) -> int:
        """KV heads (num_attention_heads when not given: plain multi-head attention)."""
        return self.num_kv_heads if self.num_kv_heads is not None else self.num_attention_heads  # type: ignore[return-value]

    @property
    def dim_per_head(self) -> int:
        """head_dim, else hidden_size / num_attention_heads."""
        return self.head_dim or self.hidden_size // self.num_attention_heads  # type: ignore[operator]


def kv_cache_bytes(
    model_variant: ModelVariant, sequence_length: int = 2048, batch_size: int = 1, precision_bits: int = 16
) -> int:
    """KV cache bytes, exact: 2 (K and V) · layers · batch · tokens · kv_heads · head_dim · bits / 8."""
    if not isinstance(model_variant, ModelVariant):
        raise KVCalcError(f"model_variant: expected a ModelVariant, got {type(model_variant).__name__}")
    tokens = check_int(sequence_length, "sequence_length", minimum=0)
    batch = check_int(batch_size, "batch_size", maximum=1 << 24)
    bits = check_int(precision_bits, "precision_bits", maximum=64)
    v = model_variant
    total_bits = 2 * v.num_layers * batch * tokens * v.kv_heads * v.dim_per_head * bits  # type: ignore[operator]
    return -(-total_bits // 8)


def calculate_kv_cache_size(
    model_variant: ModelVariant, sequence_length: int = 2048, batch_size: int = 1, precision_bits: int = 16
) -> float:
    """KV cache size in GiB (2^30 bytes) — what kv-cache-calculator's README prints as "GB" (it divides
    by 1024³): :func:`kv_cache_bytes` / 2^30. The exact integer is :func:`kv_cache_bytes`.

    Formula 2 · layers · batch · tokens · kv_heads · head_dim · bits / 8 (transformers' K and V tensors of
    shape [batch, kv_heads, tokens, head_dim]). kv-cache-calculator multiplied hidden_size by the head
    count and by the active experts; neither is in the cache, so its numbers were num_heads × (and
    active_experts ×) too large: 32 GiB instead of 1 GiB for 32 layers × 4096 hidden × 2048 tokens.
    """
    return kv_cache_bytes(model_variant, sequence_length, batch_size, precision_bits) / GIB


# ------------------------------------------------------------------------------------------------
# resolving a model


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
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+(@[\w./-]+)?")


def _precision(name: object) -> tuple[str, str]:
    key = name.strip().lower() if isinstance(name, str) else ""
    key = _PRECISION_ALIASES.get(key, key)
    if key not in _PRECISIONS:
        raise KVCalcError(f"precision: unknown {name!r}; choose one of {', '.join(_PRECISIONS)}")
    return _PRECISIONS[key]


def _is_diffusion(cfg: Mapping[str, Any]) -> bool:
    return "_class_name" in cfg or "_diffusers_version" in cfg


def _catalog_model(name: str) -> Model | None:
    from kvcalc.core.catalog import default_catalog_path, load_catalog

    path = default_catalog_path()
    if path is None:
        return None
    catalog = load_catalog(path)
    return catalog.model(name) if name in catalog else None


def _hub_model(hf_id: str, token: str | None) -> Model:
    """A Hugging Face id that is not preloaded, through kvcalc's Hub client (``kvcalc.core.hub``: config.json
    over HTTP, the Hub cache, ``HF_TOKEN``, ``HF_HUB_OFFLINE``); ``token`` stands in for ``HF_TOKEN``."""
    from kvcalc.core.hub import fetch_config

    saved = os.environ.get("HF_TOKEN")
    try:
        if token:
            os.environ["HF_TOKEN"] = token
        config = fetch_config(hf_id)
    finally:
        if token:
            if saved is None:
                os.environ.pop("HF_TOKEN", None)
            else:
                os.environ["HF_TOKEN"] = saved
    return load_model(config, name=hf_id.split("@", 1)[0].rsplit("/", 1)[-1])


def _as_model(source: Any, token: str | None = None) -> Model | Mapping[str, Any]:
    """A Model, or the raw dict of a config without a language model (diffusion)."""
    if isinstance(source, Model):
        return source
    if isinstance(source, ModelVariant):
        return _variant_model(source)
    if isinstance(source, Mapping) and _is_diffusion(source):
        return source
    if isinstance(source, str) and not source.lstrip().startswith("{"):
        found = _catalog_model(source)
        if found is not None:
            return found
        from pathlib import Path

        if not Path(source).exists() and _HUB_ID.fullmatch(source.strip()):
            return _hub_model(source.strip(), token)
    return load_model(source)


def _variant_model(v: ModelVariant) -> Model:
    cfg: dict[str, Any] = {
        "model_type": "llama",
        "num_hidden_layers": v.num_layers,
        "hidden_size": v.hidden_size,
        "num_attention_heads": v.num_attention_heads,
        "num_key_value_heads": v.kv_heads,
        "head_dim": v.dim_per_head,
        "intermediate_size": v.intermediate_size or 4 * v.hidden_size,  # type: ignore[operator]
        "vocab_size": v.vocab_size or 32000,
    }
    if v.num_experts:
        top_k = v.active_experts or 2
        cfg.update(model_type="mixtral", num_local_experts=v.num_experts, num_experts_per_tok=top_k)
        if v.expert_intermediate_size:
            cfg["intermediate_size"] = v.expert_intermediate_size
    return load_model(cfg, name=v.name)


def _leaves(model: Model) -> list[Any]:
    return [leaf for layer in model.layers for leaf in layer.leaves()]


def attention_type(model: Model) -> str | None:
    """ "mla", "mha", "gqa", "mqa", "hybrid" (recurrent state beside attention), "ssm", or None.

    The head count is read under any of its config names (``num_attention_heads``, ``n_head``,
    ``num_heads``, ``decoder_attention_heads``, …), as the display labels of :mod:`kvcalc.facts`.
    """
    leaves = _leaves(model)
    attn = [x for x in leaves if isinstance(x, _Attention | MLA)]
    states = [x for x in leaves if isinstance(x, _State)]
    if not attn:
        return "ssm" if states else None
    if states:
        return "hybrid"
    if any(isinstance(x, MLA) for x in attn):
        return "mla"
    heads = query_heads(model)
    kv = min(x.kv_heads for x in attn if isinstance(x, _Attention))
    if kv == 1:
        return "mqa"
    return "mha" if heads is not None and kv >= heads else "gqa"


# ------------------------------------------------------------------------------------------------
# llm-memory-calculator: the report


def _gib(n: int | None) -> float | None:
    return None if n is None else n / GIB


@dataclass(frozen=True)
class MemoryReport:
    """Inference memory of one model: integer ``*_bytes`` and their ``*_gb`` views in GiB (2^30).

    ``str(report)`` is a readable report (each note once); ``report["total_memory_gb"]`` reads any field
    or GiB view by name, as a dict would.
    """

    model: str
    model_type: str
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
    tensor_parallel: int = 1
    notes: tuple[str, ...] = field(default=())

    @property
    def weight_memory_gb(self) -> float | None:
        """Weights, GiB."""
        return _gib(self.weight_memory_bytes)

    @property
    def kv_cache_gb(self) -> float | None:
        """KV cache, GiB (None when the model keeps none)."""
        return _gib(self.kv_cache_bytes)

    @property
    def state_memory_gb(self) -> float:
        """Recurrent state (Mamba, DeltaNet…), GiB."""
        return self.state_memory_bytes / GIB

    @property
    def activation_memory_gb(self) -> float:
        """Activations (estimate), GiB."""
        return self.activation_memory_bytes / GIB

    @property
    def image_memory_bytes(self) -> int:
        """llm-memory-calculator's name for the vision/audio tower weights (part of the weights)."""
        return self.vision_memory_bytes

    @property
    def image_memory_gb(self) -> float:
        """Vision/audio tower weights, GiB."""
        return self.vision_memory_bytes / GIB

    @property
    def extra_work_gb(self) -> float:
        """Framework overhead (estimate), GiB."""
        return self.extra_work_bytes / GIB

    @property
    def total_memory_gb(self) -> float:
        """Total, GiB."""
        return self.total_memory_bytes / GIB

    @property
    def kv_cache_display(self) -> str:
        """ "12.34 GiB", or the not-applicable sentence."""
        return NOT_APPLICABLE if self.kv_cache_bytes is None else f"{self.kv_cache_bytes / GIB:.2f} GiB"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus the GiB views."""
        out = asdict(self)
        out["notes"] = list(self.notes)
        for key in ("weight_memory", "kv_cache", "state_memory", "activation_memory", "image_memory",
                    "extra_work", "total_memory"):  # fmt: skip
            out[f"{key}_gb"] = getattr(self, f"{key}_gb")
        out["image_memory_bytes"] = self.image_memory_bytes
        return out

    def __getitem__(self, key: str) -> Any:
        """Dict-style access to :meth:`as_dict` (``report["total_memory_gb"]``)."""
        data = self.as_dict()
        if key not in data:
            raise KeyError(key)
        return data[key]

    def __str__(self) -> str:
        def line(label: str, n: int | None, extra: str = "") -> str:
            if n is None:
                return f"  {label + ':':<16}{NOT_APPLICABLE}"
            return f"  {label + ':':<16}{n / GIB:>10,.2f} GiB  ({n:,} bytes){extra}"

        params = "unknown" if self.parameter_count is None else f"{self.parameter_count:,}"
        tp = f" · tensor parallel {self.tensor_parallel} (per GPU)" if self.tensor_parallel > 1 else ""
        kind = f" ({self.model_type})" if self.model_type else ""
        out = [
            f"{self.model}{kind} · attention {self.attention_type or 'n/a'} · {params} parameters",
            f"precision {self.precision} · batch {self.batch_size:,} × {self.seq_length:,} tokens{tp}",
            "",
            line("Weights", self.weight_memory_bytes,
                 f", of which vision/audio {self.vision_memory_bytes / GIB:,.2f} GiB"
                 if self.vision_memory_bytes else ""),
            line("KV cache", self.kv_cache_bytes),
        ]  # fmt: skip
        if self.state_memory_bytes:
            out.append(line("State", self.state_memory_bytes))
        out += [line("Activations", self.activation_memory_bytes), line("Overhead", self.extra_work_bytes)]
        out += ["", line("Total", self.total_memory_bytes)]
        if self.recommended_gpu:
            out.append(
                f"  Recommended GPU: {self.recommended_gpu} ({self.recommended_gpu_memory_gb:.2f} GiB)"
            )
        elif self.recommended_gpu_memory_gb:
            out.append(
                f"  No single GPU in the catalog holds it: ≥ {self.recommended_gpu_memory_gb:,.0f} GiB"
            )
        if self.notes:
            out += ["", "Notes:", *(f"  - {n}" for n in dict.fromkeys(self.notes))]
        out.append("GiB = 2^30 bytes")
        return "\n".join(out)


def _cache_split(model: Model, seq: int, batch: int, kv_dtype: str, tp: int = 1) -> tuple[int, int]:
    """(KV bytes, recurrent-state bytes) under the ideal engine."""

    def sizes(n: int) -> list[int]:
        return layer_bytes(
            model, n, batch_size=batch, kv_dtype=kv_dtype, engine="ideal", tensor_parallel_size=tp
        )

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
    """The smallest discrete GPU of the catalog holding ``total`` bytes, and its memory in GiB."""
    for g in sorted((g for g in GPUS if not g.unified), key=lambda g: g.memory_bytes):
        if g.memory_bytes >= total:
            return g.key, round(g.memory_bytes / GIB, 2)
    return None, math.ceil(total / GIB / 8) * 8.0


def calculate_memory(
    model_id_or_config: Any,
    batch_size: int = 1,
    seq_length: int = DEFAULT_SEQ_LENGTH,
    precision: str = "fp16",
    tensor_parallel: int = 1,
    framework_overhead: float = 1.2,
    include_gradients: bool = False,
    token: str | None = None,
    *,
    kv_dtype: str | None = None,
    checkpoint: Any = "auto",
) -> MemoryReport:
    """Memory to serve ``batch_size`` sequences of ``seq_length`` tokens, per GPU of ``tensor_parallel``.

    ``model_id_or_config``: a preloaded name or Hugging Face id, a config dict, JSON text, a path, a
    :class:`kvcalc.Model` or a :class:`ModelVariant`. ``precision``: weights (fp32, fp16, bf16, fp8,
    int8, int4); the KV cache uses it too for float formats and stays fp16 under integer weights unless
    ``kv_dtype`` says. ``framework_overhead`` multiplies the runtime memory (KV cache, state,
    activations), as llm-memory-calculator does; ``include_gradients`` adds one gradient per weight in
    the weights' format (training). Sizes in the report: bytes and GiB.

    ``checkpoint``: ``"auto"`` reads the safetensors headers of ``model_id_or_config`` itself when it is
    a local folder holding them or a Hugging Face id (:mod:`kvcalc.core.checkpoint`); a folder, an id or
    a :class:`~kvcalc.core.checkpoint.Checkpoint` names one; ``None`` never reads one. At
    ``tensor_parallel=1`` its exact bytes are the weights when ``precision`` is the checkpoint's storage
    width (16-bit float, fp32, fp8, nothing packed); otherwise — and when no checkpoint is reachable —
    count_params × the format. A note says which.
    """
    batch = check_int(batch_size, "batch_size", maximum=1 << 24)
    seq = check_int(seq_length, "seq_length", minimum=0)
    tp = check_int(tensor_parallel, "tensor_parallel", maximum=4096)
    weight_fmt, cache_dtype = _precision(precision)
    overhead = framework_overhead
    if isinstance(overhead, bool) or not isinstance(overhead, int | float) or overhead < 1:
        raise KVCalcError(f"framework_overhead: expected a number ≥ 1, got {framework_overhead!r}")
    resolved = _as_model(model_id_or_config, token)
    if not isinstance(resolved, Model):
        return _not_applicable(resolved, weight_fmt, batch, seq)
    model, count_notes = _countable(resolved)
    params = count_params(model)
    weights = weight_bytes(model, weight_fmt, params=params, tensor_parallel_size=tp)
    ck = _checkpoint_for(model_id_or_config, model, checkpoint) if tp == 1 else None
    weights_total, weights_note = weights.total, f"weights: count_params × {weights.format} (config.json)"
    if ck is not None and _same_format(ck, weight_fmt):
        weights_total = ck.total_bytes
        weights_note = f"weights: {ck.total_bytes:,} bytes from the safetensors headers of {ck.source}"
    if include_gradients:
        weights_total *= 2
    vision = weights.parts.get("vision", 0) + weights.parts.get("audio", 0)
    kv, state = _cache_split(model, seq, batch, kv_dtype or cache_dtype, tp)
    applicable = any(isinstance(x, _Attention | MLA) for x in _leaves(model))
    act = _activations(model, batch, seq, 4 if weight_fmt == "fp32" else 2)
    runtime = kv + state + act
    extra = round(runtime * overhead) - runtime
    total = weights_total + runtime + extra
    gpu, gpu_gb = _recommend(total)
    notes = ["activations and framework overhead are estimates", weights_note]
    if tp > 1:
        notes.append("weights per GPU follow vLLM's tensor-parallel sharding (estimate)")
    if include_gradients:
        notes.append("weights include one gradient per parameter in the same format (training)")
    if not applicable:
        notes.append(NOT_APPLICABLE + " (recurrent state only)")
    return MemoryReport(
        model=model.name,
        model_type=model.model_type,
        precision=weight_fmt,
        batch_size=batch,
        seq_length=seq,
        parameter_count=params.total_with_towers,
        weight_memory_bytes=weights_total,
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
        tensor_parallel=tp,
        notes=tuple(dict.fromkeys([*notes, *count_notes, *params.notes])),
    )


def _countable(model: Model) -> tuple[Model, list[str]]:
    """``model``, or — for a hand-written config without ``model_type``, whose parameters kvcalc does not
    count — the same config read as a Llama decoder, with a note saying the weights are then an estimate
    (llm-memory-calculator counted such dicts as a generic decoder). Other uncounted types are refused."""
    if model.model_type or "model_type" in model.config:
        return model, []
    try:
        count_params(model)
        return model, []
    except KVCalcError:
        llama = load_model({**model.config, "model_type": "llama"}, name=model.name)
        return llama, ["config has no model_type: weights counted as a Llama decoder (estimate; give "
                       "model_type for an exact count)"]  # fmt: skip


_STORED_AS = {"BF16": ("bf16", "fp16"), "F16": ("bf16", "fp16"), "F32": ("fp32",),
              "F8_E4M3": ("fp8",), "F8_E5M2": ("fp8",)}  # fmt: skip


def _same_format(ck: Checkpoint, weight_fmt: str) -> bool:
    """True when most parameters are stored as the requested plain format (16-bit, fp32 or fp8) and none
    are packed: then the checkpoint's bytes are that format's bytes."""
    if ck.packed_params or not ck.params_by_dtype:
        return False
    stored = max(ck.params_by_dtype, key=lambda d: ck.params_by_dtype[d])
    return weight_fmt.split("_")[0] in _STORED_AS.get(stored, ())


def _checkpoint_for(source: Any, model: Model, choice: Any) -> Checkpoint | None:
    """The checkpoint ``choice`` names (see :func:`calculate_memory`); None when there is none."""
    from pathlib import Path

    from kvcalc.core.checkpoint import from_folder, from_hub, load_checkpoint
    from kvcalc.core.hub import parse_hub_id

    if choice is None or isinstance(choice, Checkpoint):
        return choice
    if not isinstance(choice, str | os.PathLike):
        raise KVCalcError(f"checkpoint: expected 'auto', a folder, a Hugging Face id or None, got {choice!r}")
    if str(choice) != "auto":
        return load_checkpoint(choice, model.config)
    if not isinstance(source, str | os.PathLike) or (isinstance(source, str) and source.lstrip()[:1] in "{["):
        return None
    try:
        path = Path(source)
        if path.is_dir():
            return from_folder(path, model.config) if any(path.glob("*.safetensors")) else None
        if path.exists() or parse_hub_id(str(source)) is None:
            return None
        return from_hub(str(source).strip(), model.config)
    except (KVCalcError, OSError):
        return None  # not reachable: the config's count stands (the note says so)


def _not_applicable(cfg: Mapping[str, Any], precision: str, batch: int, seq: int) -> MemoryReport:
    name = str(cfg.get("_class_name") or cfg.get("_name_or_path") or "diffusion model")
    return MemoryReport(
        model=name,
        model_type="diffusion",
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


# ------------------------------------------------------------------------------------------------
# llm-memory-calculator: analyses


def _analysis(model_id: Any, report: MemoryReport, config: Mapping[str, Any] | None) -> dict[str, Any]:
    """llm-memory-calculator's analysis dict, plus kvcalc's byte and GiB fields."""
    return {
        "model_id": model_id if isinstance(model_id, str) else report.model,
        "model": report.model,
        "model_type": report.model_type,
        "attention_type": report.attention_type,
        "parameter_count": report.parameter_count,
        "parameters": report.parameter_count,
        "weight_memory_bytes": report.weight_memory_bytes,
        "kv_cache_bytes": report.kv_cache_bytes,
        "state_memory_bytes": report.state_memory_bytes,
        "total_memory_bytes": report.total_memory_bytes,
        "kv_cache_gb": report.kv_cache_gb,
        "total_memory_gb": report.total_memory_gb,
        "kv_cache": report.kv_cache_display,
        "memory_report": report,
        "config": dict(config) if config is not None else None,
    }


def analyze_hf_model(
    model_id: Any,
    seq_length: int = DEFAULT_SEQ_LENGTH,
    batch_size: int = 1,
    precision: str = "fp16",
    token: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """One model's analysis: ids, attention type, parameter count, the :class:`MemoryReport`, the config."""
    return HuggingFaceConfigLoader(token=token).analyze_model(
        model_id, seq_length=seq_length, batch_size=batch_size, precision=precision, **kw
    )


def compare_models(
    model_ids: Sequence[Any],
    seq_length: int = DEFAULT_SEQ_LENGTH,
    precision: str = "fp16",
    token: str | None = None,
    **kw: Any,
) -> list[dict[str, Any]]:
    """One analysis per model (keyword arguments as :func:`calculate_memory`); a model that cannot be
    loaded gives ``{"model_id": …, "error": "…"}`` in its place instead of aborting the comparison."""
    return HuggingFaceConfigLoader(token=token).compare_models(model_ids, seq_length=seq_length,
                                                               precision=precision, **kw)  # fmt: skip


def _batch_gpu(gpu_memory_gb: float | str) -> GPU:
    """A GPU with ``gpu_memory_gb`` GiB for :func:`kvcalc.plan`, or a catalog GPU by name."""
    if isinstance(gpu_memory_gb, str):
        from kvcalc.deploy.gpus import get_gpu

        return get_gpu(gpu_memory_gb)
    if isinstance(gpu_memory_gb, bool) or not isinstance(gpu_memory_gb, int | float) or not gpu_memory_gb > 0:
        raise KVCalcError(f"gpu_memory_gb: expected a positive number of GiB, got {gpu_memory_gb!r}")
    if not math.isfinite(gpu_memory_gb) or gpu_memory_gb > 1 << 20:
        raise KVCalcError(f"gpu_memory_gb: {gpu_memory_gb!r} is not a GPU size in GiB")
    return GPU(
        key="custom", name=f"{gpu_memory_gb:g} GiB GPU", memory_bytes=round(gpu_memory_gb * GIB), bandwidth=0,
        fp8=True, vendor="custom", memory_source="gpu_memory_gb argument (GiB = 2^30 bytes)",
    )  # fmt: skip


def estimate_max_batch_size(
    model_id_or_config: Any,
    gpu_memory_gb: float | str,
    seq_length: int = DEFAULT_SEQ_LENGTH,
    precision: str = "fp16",
    token: str | None = None,
    *,
    gpu_memory_utilization: float = BATCH_UTILIZATION,
    **plan_kw: Any,
) -> int:
    """Concurrent ``seq_length``-token requests one GPU of ``gpu_memory_gb`` GiB (or a catalog GPU by
    name: ``"h100"``) holds under vLLM: the ``max_batch`` of :func:`kvcalc.plan` (``kvcalc plan MODEL
    --gpu … --max-model-len seq_length --gpu-memory-utilization 0.9``), so the two agree; 0 when even
    one request does not fit. A bare size gets vLLM's defaults for a GPU of that size (max_num_seqs 1024
    from 70 GiB up, else 256); name an A100 to get its 256.

    Assumes vLLM's memory model (kvcalc.plan's module doc): ``gpu_memory_utilization`` 0.9 of the GPU
    (llm-memory-calculator's "leave 10 % buffer", vLLM's older default; kvcalc plan's default is 0.92),
    weights in ``precision`` on one GPU, KV cache in the precision's cache dtype (fp16 under int8/int4
    weights), vLLM's estimated activation peak, non-torch memory and CUDA-graph pool, every request at
    the full ``seq_length`` in paged blocks of 16 tokens. ``plan_kw`` passes further :func:`kvcalc.plan`
    arguments (``max_num_seqs``, ``block_size``, measured ``activation_bytes``, …).
    """
    from kvcalc.deploy.plan import plan

    gpu = _batch_gpu(gpu_memory_gb)
    seq = check_int(seq_length, "seq_length", maximum=1 << 40)
    weight_fmt, cache_dtype = _precision(precision)
    resolved = _as_model(model_id_or_config, token)
    if not isinstance(resolved, Model):
        return 0
    plan_kw.setdefault("kv_dtype", cache_dtype)
    result = plan(resolved, gpu=gpu, max_model_len=seq, weight_dtype=weight_fmt,
                  gpu_memory_utilization=gpu_memory_utilization, **plan_kw)  # fmt: skip
    return result.max_batch if result.fits else 0


_RATINGS = {
    "mla": "excellent", "hybrid": "excellent", "ssm": "excellent",
    "gqa": "good", "mqa": "good", "mha": "moderate",
}  # fmt: skip


def analyze_attention_efficiency(
    model_id_or_config: Any,
    seq_lengths: Sequence[int] = (1024, 4096, 16384, 32768),
    batch_size: int = 1,
    precision: str = "fp16",
    token: str | None = None,
) -> dict[str, Any]:
    """Per sequence length: KV and total bytes/GiB and the KV share of the total; bytes per token.

    ``memory_per_token_bytes`` is what one more cached token costs while every layer still holds it
    (short context); ``memory_per_token_beyond_window_bytes`` what it costs once sliding windows are
    full (equal for models without windows; 0 for Mistral-7B-v0.1, whose every layer slides), and
    ``memory_per_token`` says both in words ("131,072 within the window, 0 beyond").
    """
    resolved = _as_model(model_id_or_config, token)
    if not isinstance(resolved, Model):
        return {"model": str(resolved.get("_class_name", "diffusion model")), "attention_type": None,
                "kv_cache_applicable": False, "results": {}, "memory_per_token_bytes": None,
                "memory_per_token_beyond_window_bytes": None, "memory_per_token": NOT_APPLICABLE,
                "sliding_window": None, "efficiency_rating": NOT_APPLICABLE}  # fmt: skip
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
    _, cache_dtype = _precision(precision)
    short = kv_bytes_per_token_short(resolved, cache_dtype)
    long = kv_bytes_per_token(resolved, cache_dtype)
    windows = [x.window for x in _leaves(resolved) if isinstance(x, SlidingWindow)]
    kind = attention_type(resolved)
    return {
        "model": resolved.name,
        "attention_type": kind,
        "kv_cache_applicable": any(r["kv_cache_bytes"] is not None for r in results.values()),
        "results": results,
        "memory_per_token_bytes": short,
        "memory_per_token_beyond_window_bytes": long,
        "memory_per_token": fmt_token_bytes(short, long),
        "sliding_window": min(windows) if windows else None,
        "efficiency_rating": _RATINGS.get(kind or "", "unknown"),
    }


# ------------------------------------------------------------------------------------------------
# llm-memory-calculator: classes


class ModelMemoryCalculator:
    """llm-memory-calculator's core class over kvcalc's exact counts."""

    def calculate_total_memory(self, config: Any, batch_size: int = 1, seq_length: int = DEFAULT_SEQ_LENGTH,
                               precision: str = "fp16", tensor_parallel: int = 1,
                               framework_overhead: float = 1.2, **kw: Any) -> MemoryReport:  # fmt: skip
        """:func:`calculate_memory` for one config (dict, JSON text, path, id)."""
        return calculate_memory(
            config, batch_size, seq_length, precision, tensor_parallel, framework_overhead, **kw
        )

    def detect_attention_type(self, config: Any) -> str | None:
        """ "mha", "gqa", "mqa", "mla", "hybrid", "ssm", or None (no attention, no state)."""
        resolved = _as_model(config)
        return attention_type(resolved) if isinstance(resolved, Model) else None

    def detect_model_type(self, config: Any) -> str:
        """The config's model_type as kvcalc reads it ("diffusion" for diffusers pipelines)."""
        resolved = _as_model(config)
        return resolved.model_type if isinstance(resolved, Model) else "diffusion"

    def calculate_kv_cache(self, config: Any, batch_size: int = 1, seq_length: int = DEFAULT_SEQ_LENGTH,
                           precision: str = "fp16") -> int:  # fmt: skip
        """KV cache bytes (exact, ideal engine; 0 for models without one)."""
        return calculate_memory(config, batch_size, seq_length, precision).kv_cache_bytes or 0


class UniversalParameterCounter:
    """Exact parameter counts (kvcalc.count_params), vision/audio towers included."""

    def count_parameters(self, config: Any) -> int:
        """Parameters of the model a config describes (0 when a diffusion config cannot be counted; a
        config without model_type is counted as a Llama decoder, see :func:`calculate_memory`)."""
        resolved = _as_model(config)
        return count_params(_countable(resolved)[0]).total_with_towers if isinstance(resolved, Model) else 0


class HuggingFaceConfigLoader:
    """Configs by Hugging Face id: preloaded ones offline, others through kvcalc's Hub client."""

    def __init__(self, token: str | None = None) -> None:
        self.token = token

    def fetch_model_config(self, model_id: str) -> dict[str, Any]:
        """The config.json dict of ``model_id`` (preloaded name or id, path, or Hub id)."""
        resolved = _as_model(model_id, self.token)
        return dict(resolved.config if isinstance(resolved, Model) else resolved)

    def get_model_config(self, model_id: str, add_param_count: bool = True) -> dict[str, Any]:
        """:meth:`fetch_model_config` plus ``num_parameters`` (exact count) when asked."""
        config = self.fetch_model_config(model_id)
        if add_param_count and "num_parameters" not in config:
            config["num_parameters"] = UniversalParameterCounter().count_parameters(model_id)
        return config

    def analyze_model(self, model_id: Any, seq_length: int = DEFAULT_SEQ_LENGTH, batch_size: int = 1,
                      precision: str = "fp16", **kw: Any) -> dict[str, Any]:  # fmt: skip
        """One model's analysis (see :func:`analyze_hf_model`)."""
        resolved = _as_model(model_id, self.token)
        report = calculate_memory(resolved, batch_size, seq_length, precision, **kw)
        config = resolved.config if isinstance(resolved, Model) else resolved
        return _analysis(model_id, report, config)

    def compare_models(self, model_ids: Sequence[Any], seq_length: int = DEFAULT_SEQ_LENGTH,
                       precision: str = "fp16", **kw: Any) -> list[dict[str, Any]]:  # fmt: skip
        """One analysis per model; an error entry for each model that fails."""
        if isinstance(model_ids, str | bytes) or not isinstance(model_ids, Sequence):
            raise KVCalcError("model_ids: expected a list of models or configs")
        out = []
        for m in model_ids:
            try:
                out.append(self.analyze_model(m, seq_length=seq_length, precision=precision, **kw))
            except KVCalcError as exc:
                out.append({"model_id": m if isinstance(m, str) else repr(m)[:80], "error": str(exc)})
        return out


# ------------------------------------------------------------------------------------------------
# python -m kvcalc.compat = kv-cache-calc


if __name__ == "__main__":  # the script entry point, not a dependency of the module
    from kvcalc.cli.main import seed_main

    sys.exit(seed_main())
