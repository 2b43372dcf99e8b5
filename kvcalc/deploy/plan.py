"""Whole-deployment memory plan under vLLM: does a model fit, and how many requests can it serve.

Arithmetic (GUIDE §4, vLLM's worker and KV-cache planner), per GPU of one tensor-parallel group::

    requested  = ceil(gpu_memory_bytes · gpu_memory_utilization)
    kv_budget  = requested − weights − activation_peak − non_torch − cudagraph
    num_blocks = kv_budget // bytes_per_block          bytes_per_block = group_size · page_bytes
    max_concurrency = num_blocks / Σ_groups pages_per_request(group)
    kv_tokens  = int(max_concurrency · max_model_len)   ("GPU KV cache size: N tokens")

What is exact and what is estimated:

* exact — page sizes, pages per request, block grouping, bytes per block, per-request bytes (from the
  core specs), the weight bytes of the chosen format at tp = 1, and the arithmetic above;
* estimated — weights per GPU at tp > 1 (vLLM's sharding, kernel padding ignored), the rotary cos/sin
  cache, the activation peak (vLLM profiles it: dominated by its sampler warm-up, ≈ 39 bytes per logit ×
  max_num_seqs × vocab, fitted to five H100 measurements within 3 %; or the forward pass at
  max_num_batched_tokens, whichever is larger), non-torch memory (0.13 GiB at tp = 1, 0.55 GiB with
  NCCL at tp > 1, measured on H100) and the CUDA-graph pool (0.5 GiB; measured −0.45…1.03 GiB).
  Pass measured values (``activation_bytes=`` …) to replace the estimates.

``gpu_memory_utilization`` defaults to 0.92, vLLM's current default (older releases and the issue text
say 0.9). ``gpu_memory_bytes`` is the runtime-reported total from :mod:`kvcalc.deploy.gpus`.
``max_num_seqs`` follows ``vllm serve`` (EngineArgs.get_batch_defaults): 1024 on GPUs with ≥ 70 GiB
that are not A100s, else 256. ``max_num_batched_tokens`` defaults to 8192 (GUIDE §4); ``vllm serve``
uses 2048 on the smaller GPUs — pass it to model that exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kvcalc.core.checkpoint import Checkpoint
from kvcalc.core.config import text_config
from kvcalc.core.dtypes import get_dtype
from kvcalc.core.fields import LIMITS, Fields, check_int
from kvcalc.core.model import Model
from kvcalc.core.params import ParamCount, WeightBytes, count_params, get_weight_format, weight_bytes
from kvcalc.deploy.gpus import GIB, GPU, GPUS, get_gpu
from kvcalc.deploy.vllm_kv import KVLayout, kv_layout, pp_stage_layers, report, stage_layouts
from kvcalc.deploy.vllm_versions import VLLMVersion, get_vllm_version
from kvcalc.engines import VLLMPage, vllm_layer_pages
from kvcalc.engines.base import check_query_heads_split
from kvcalc.errors import KVCalcError

__all__ = ["DEFAULT_GPU_MEMORY_UTILIZATION", "Budget", "Plan", "budget", "fits", "plan", "recommend"]

#: vLLM's current default (``EngineArgs.gpu_memory_utilization``); older releases used 0.9 — a plan
#: without ``gpu_memory_utilization`` takes the default of the modelled ``vllm_version``.
DEFAULT_GPU_MEMORY_UTILIZATION = 0.92
#: Activation peak of vLLM's sampler warm-up per logit (fp32 logits, sort, softmax copies): fitted to
#: H100 "PyTorch activation peak memory" of Llama-3.1-8B, Llama-3.3-70B (tp 2), Qwen3-0.6B, Qwen3-32B
#: and gpt-oss-20b at max_num_seqs 1024 (38.4–39.6 B per logit).
SAMPLER_BYTES_PER_LOGIT = 39
#: The figures below are the medians and ranges of published start-up logs kept with their sources in
#: bench/vllm_logs/fit.json (``python bench/vllm_logs.py --fit`` recomputes them; a test checks they agree).
#: Non-torch memory per GPU (NCCL, custom all-reduce buffers): tp = 1 median 0.13 GiB (0.07–0.35);
#: tp > 1 median 0.545 GiB on NVLink machines (0.54–1.38).
#: tp > 1 on PCIe cards (no NVLink: vLLM disables custom all-reduce beyond two PCIe GPUs) median 0.195 GiB
#: (8 × L40S ranks 0.17–0.21, 2 × RTX 4090 0.25).
NON_TORCH_BYTES = {1: 140 * (1 << 20), 2: 563 * (1 << 20)}  # 0.13 / 0.55 GiB (tp = 1 / tp > 1)
NON_TORCH_PCIE_BYTES = round(0.195 * GIB)
NON_TORCH_RANGE = {1: (round(0.07 * GIB), round(0.35 * GIB)), 2: (round(0.17 * GIB), round(1.38 * GIB))}
#: Data-centre GPUs whose tensor-parallel groups talk over NVLink / Infinity Fabric (the rest: PCIe).
NVLINK_GPUS = frozenset(
    {"h100", "h100-nvl", "h200", "b200", "b300", "a100-80gb", "a100-40gb", "mi300x", "mi325x"}
)
#: CUDA-graph pool vLLM profiles into the budget since v0.21 ("Estimated CUDA graph memory"), by the largest
#: captured batch: ≥ 512 (max_num_seqs ≥ 512) median 0.71 GiB, smaller 0.365 GiB; range of all nine
#: published estimates 0.22–1.97 GiB (the pool also grows with the model).
CUDAGRAPH_BYTES = round(0.71 * GIB)
CUDAGRAPH_SMALL_BYTES = round(0.365 * GIB)
CUDAGRAPH_RANGE = (round(0.22 * GIB), round(1.97 * GIB))
#: The activation peak: the sampler warm-up per logit spread 38.4–39.6 B in the fit; a vLLM 0.9.1 H100 log
#: (bench/vllm_logs/012) implies ~14 % less and V0's forward-pass peak was up to 8 % more than the
#: estimate (bench/vllm_logs/015-016): low / high factors of the estimate.
ACTIVATION_RANGE = (0.85, 1.10)
#: vLLM's default max_num_seqs for `vllm serve`: 1024 on ≥ 70 GiB GPUs other than A100, else 256.
BIG_GPU_BYTES = 70 * GIB
TP_CANDIDATES = (1, 2, 4, 8, 16, 32, 64)
_DEFAULTS: dict[str, Any] = {
    "kv_dtype": "auto",
    "weight_dtype": None,
    "engine": "vllm",
    "gpu_memory_utilization": None,
    "max_num_batched_tokens": 8192,
    "max_num_seqs": None,
    "block_size": 16,
    "enable_prefix_caching": None,
    "activation_bytes": None,
    "non_torch_bytes": None,
    "cudagraph_bytes": None,
    "vllm_version": None,
    "pipeline_parallel_size": 1,
    "data_parallel_size": None,
    "speculative_config": None,
    "kv_cache_memory": None,
    "enforce_eager": False,
    "checkpoint": None,
}
#: Speculative-decoding methods whose draft layers keep KV in the target's cache (vLLM
#: ``SpeculativeConfig.method``); ``None``: the count comes from the config (MTP layers).
_DRAFT_LAYERS: dict[str, int | None] = {
    "eagle": 1, "eagle3": 1, "mtp": None, "deepseek_mtp": None, "qwen3_next_mtp": None, "glm4_moe_mtp": None,
    "ernie_mtp": None, "mimo_mtp": None, "longcat_flash_mtp": None, "ngram": 0, "suffix": 0,
}  # fmt: skip
_MTP_KEYS = ("num_nextn_predict_layers", "mtp_num_hidden_layers", "num_mtp_modules", "mtp_transformer_layers")


@dataclass(frozen=True)
class _Args:
    """Validated plan arguments."""

    gpu: GPU
    num_gpus: int
    tp: int
    pp: int
    max_model_len: int
    batch_size: int | None
    kv_dtype: str
    weight_dtype: str | None
    utilization: float
    max_num_batched_tokens: int
    max_num_seqs: int
    block_size: int
    enable_prefix_caching: bool
    activation_bytes: int | None
    non_torch_bytes: int | None
    cudagraph_bytes: int | None
    version: VLLMVersion
    draft_layers: int = 0
    speculative: str | None = None
    kv_cache_memory: int | None = None
    enforce_eager: bool = False
    checkpoint: Checkpoint | None = None


@dataclass(frozen=True)
class Plan:
    """One deployment: memory per GPU (bytes) and what the KV cache can hold. See the module doc."""

    model: str
    gpu: str
    gpu_name: str
    gpu_memory_bytes: int
    num_gpus: int
    tensor_parallel_size: int
    replicas: int
    max_model_len: int
    kv_dtype: str
    weight_format: str
    gpu_memory_utilization: float
    requested_bytes: int
    weights_bytes: int
    buffers_bytes: int
    activation_bytes: int
    non_torch_bytes: int
    cudagraph_bytes: int
    kv_budget_bytes: int
    page_bytes: int
    group_size: int
    bytes_per_block: int
    num_blocks: int
    blocks_per_request: int
    per_request_bytes: int
    max_concurrency: float
    kv_tokens: int
    max_batch: int
    max_context: int
    fits: bool
    batch_size: int | None = None
    min_gpus: int | None = None
    message: str = ""
    params: int = 0
    active_params: int = 0
    estimated: tuple[str, ...] = ("weights_bytes", "buffers_bytes", "activation_bytes", "non_torch_bytes",
                                  "cudagraph_bytes")  # fmt: skip
    notes: tuple[str, ...] = field(default=())
    vllm_version: str = ""
    pipeline_parallel_size: int = 1
    draft_layers: int = 0
    kv_budget_range: tuple[int, int] = (0, 0)
    kv_tokens_range: tuple[int, int] = (0, 0)
    weights_source: str = "config"

    @property
    def kv_cache_bytes(self) -> int:
        """KV cache vLLM allocates per GPU: num_blocks · bytes_per_block."""
        return self.num_blocks * self.bytes_per_block

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (bytes as integers)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["kv_cache_bytes"] = self.kv_cache_bytes
        out["estimated"] = list(self.estimated)
        out["notes"] = list(self.notes)
        out["kv_budget_range"] = list(self.kv_budget_range)
        out["kv_tokens_range"] = list(self.kv_tokens_range)
        return out


# ------------------------------------------------------------------------------------------------
# argument checks


def _fraction(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise KVCalcError(f"{name}: expected a number in (0, 1], got {value!r}")
    return float(value)


def _opt_bytes(value: object, name: str) -> int | None:
    return None if value is None else check_int(value, name, minimum=0, maximum=1 << 50)




def _is_hybrid(model: Model) -> bool:
    """A model with both paged attention and a recurrent state (Mamba, gated delta net, …)."""
    leaves = [leaf for layer in model.layers for leaf in layer.leaves()]
    return any(x.state for x in leaves) and any(x.paged for x in leaves)


def _speculative(model: Model, value: object) -> tuple[str | None, int]:
    """(method, draft layers holding KV) of ``--speculative-config`` (a dict or its JSON text)."""
    if value is None:
        return None, 0
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise KVCalcError(f"speculative_config: not valid JSON: {value!r}") from None
    if not isinstance(value, Mapping):
        raise KVCalcError(
            f"speculative_config: expected a mapping such as {{'method': 'eagle'}}, got {value!r}"
        )
    method = str(value.get("method") or ("draft_model" if value.get("model") else "")).lower()
    if method not in _DRAFT_LAYERS:
        raise KVCalcError(f"speculative_config: method {method!r} is not modelled (a separate draft model "
                          f"keeps "
                          f"its own KV cache); use one of {', '.join(_DRAFT_LAYERS)}")  # fmt: skip
    layers = _DRAFT_LAYERS[method]
    if layers is None:
        text = text_config(model.config)[0]
        found = next((text[k] for k in _MTP_KEYS if isinstance(text.get(k), int) and text[k] > 0), None)
        if found is None:
            raise KVCalcError(f"speculative_config: {method!r} needs MTP layers, and the config has none "
                              f"({', '.join(_MTP_KEYS)})")  # fmt: skip
        layers = found
    return method, layers


def _parallel(model: Model, kw: Mapping[str, Any]) -> tuple[int, int, int]:
    """(num_gpus, tp, pp) from num_gpus, tensor_parallel_size, pipeline_parallel_size, data_parallel_size."""
    pp = check_int(kw["pipeline_parallel_size"] or 1, "pipeline_parallel_size", maximum=4096)
    dp_raw = kw["data_parallel_size"]
    dp = None if dp_raw is None else check_int(dp_raw, "data_parallel_size", maximum=4096)
    num = kw["num_gpus"]
    if kw["tensor_parallel_size"] is not None:
        tp = check_int(kw["tensor_parallel_size"], "tensor_parallel_size", maximum=4096)
    else:
        total = check_int(num if num is not None else pp * (dp or 1), "num_gpus", maximum=4096)
        if total % (pp * (dp or 1)):
            raise KVCalcError(
                f"num_gpus: {total} is not a multiple of pipeline × data parallel {pp * (dp or 1)}"
            )
        tp = total // (pp * (dp or 1))
    group = tp * pp
    num_gpus = check_int(num if num is not None else group * (dp or 1), "num_gpus", maximum=4096)
    if num_gpus % group:
        what = "tensor_parallel_size" + (f" {tp} × pipeline_parallel_size {pp}" if pp > 1 else f" {tp}")
        raise KVCalcError(f"num_gpus: {num_gpus} is not a multiple of {what}")
    if dp is not None and num_gpus != group * dp:
        raise KVCalcError(
            f"data_parallel_size: {dp} replicas of {group} GPUs need {group * dp} GPUs, not {num_gpus}"
        )
    check_query_heads_split(model, tp)
    return num_gpus, tp, pp


def _args(model: Model, kw: Mapping[str, Any]) -> _Args:
    if not isinstance(model, Model):
        raise KVCalcError(f"model: expected a kvcalc Model (use load_model), got {type(model).__name__}")
    gpu = get_gpu(kw["gpu"])
    version = get_vllm_version(kw["vllm_version"])
    num_gpus, tp, pp = _parallel(model, kw)
    max_len = model.max_position_embeddings if kw["max_model_len"] is None else kw["max_model_len"]
    if max_len is None:
        raise KVCalcError("max_model_len: required (the config has no max_position_embeddings)")
    if kw["engine"] != "vllm":
        raise KVCalcError(f"engine: plan follows vLLM's memory model; use 'vllm', not {kw['engine']!r}")
    kv_dtype = kw["kv_dtype"]
    kv_dtype = model.dtype if isinstance(kv_dtype, str) and kv_dtype.strip().lower() == "auto" else kv_dtype
    weight_dtype = kw["weight_dtype"]
    if weight_dtype is not None:
        weight_dtype = get_weight_format(weight_dtype).name
    mnbt = check_int(kw["max_num_batched_tokens"], "max_num_batched_tokens", maximum=LIMITS["tokens"])
    seqs = kw["max_num_seqs"]
    if seqs is None:
        seqs = 1024 if gpu.memory_bytes >= BIG_GPU_BYTES and not gpu.key.startswith("a100") else 256
    batch = kw["batch_size"]
    util = kw["gpu_memory_utilization"]
    prefix = kw["enable_prefix_caching"]
    if prefix is None:
        prefix = version.hybrid_prefix_caching if _is_hybrid(model) else True
    method, drafts = _speculative(model, kw["speculative_config"])
    return _Args(
        gpu=gpu,
        num_gpus=num_gpus,
        tp=tp,
        pp=pp,
        max_model_len=check_int(max_len, "max_model_len", maximum=LIMITS["tokens"]),
        batch_size=None if batch is None else check_int(batch, "batch_size", maximum=1 << 24),
        kv_dtype=get_dtype(kv_dtype).name,
        weight_dtype=weight_dtype,
        utilization=_fraction(
            version.default_gpu_memory_utilization if util is None else util, "gpu_memory_utilization"
        ),  # fmt: skip
        max_num_batched_tokens=mnbt,
        max_num_seqs=check_int(seqs, "max_num_seqs", maximum=1 << 24),
        block_size=check_int(kw["block_size"], "block_size", maximum=1 << 20),
        enable_prefix_caching=bool(prefix),
        activation_bytes=_opt_bytes(kw["activation_bytes"], "activation_bytes"),
        non_torch_bytes=_opt_bytes(kw["non_torch_bytes"], "non_torch_bytes"),
        cudagraph_bytes=_opt_bytes(kw["cudagraph_bytes"], "cudagraph_bytes"),
        version=version,
        draft_layers=drafts,
        speculative=method,
        kv_cache_memory=_opt_bytes(kw["kv_cache_memory"], "kv_cache_memory"),
        enforce_eager=bool(kw["enforce_eager"]),
        checkpoint=_checkpoint(kw.get("checkpoint")),
    )


def _checkpoint(value: object) -> Checkpoint | None:
    if value is not None and not isinstance(value, Checkpoint):
        raise KVCalcError(f"checkpoint: expected kvcalc.core.checkpoint.Checkpoint or None, got {value!r}")
    return value


# ------------------------------------------------------------------------------------------------
# estimates


def _rope_bytes(model: Model) -> int:
    """vLLM's rotary cos/sin cache: max_position × rotary_dim in the model dtype (one per model)."""
    text = text_config(model.config)[0]
    max_pos = model.max_position_embeddings or 0
    rot = text.get("qk_rope_head_dim") or text.get("rotary_dim")
    if not isinstance(rot, int):
        head_dim = text.get("head_dim")
        heads, hidden = text.get("num_attention_heads"), text.get("hidden_size")
        if not isinstance(head_dim, int):
            head_dim = hidden // heads if isinstance(hidden, int) and isinstance(heads, int) and heads else 0
        rope = text.get("rope_parameters") if isinstance(text.get("rope_parameters"), Mapping) else {}
        factor = text.get("partial_rotary_factor", rope.get("partial_rotary_factor", 1.0))
        rot = int(head_dim * factor) if isinstance(factor, int | float) else head_dim
    return max_pos * rot * (get_dtype(model.dtype).plain_bytes or 2)


def _forward_bytes(model: Model, a: _Args, p: ParamCount) -> int:
    """Largest per-layer intermediate of a forward over max_num_batched_tokens tokens (estimate)."""
    text = text_config(model.config)[0]
    f = Fields(text)
    hidden = f.int("hidden_size", "n_embd", "d_model", default=1)
    inter = f.int("intermediate_size", "ffn_hidden_size", default=4 * hidden)
    per_token = 3 * inter // a.tp + 2 * hidden
    if p.num_experts:
        moe_inter = f.int("moe_intermediate_size", default=inter)
        per_token = max(per_token, p.experts_per_token * (3 * moe_inter // a.tp + hidden))
    return a.max_num_batched_tokens * per_token * (get_dtype(model.dtype).plain_bytes or 2)


def _activation_bytes(model: Model, a: _Args, p: ParamCount) -> int:
    """vLLM profile_run peak: max(sampler warm-up, forward pass) — an estimate. V0 profiled one forward
    over max(max_model_len, 2048) tokens (chunked prefill was off up to 32K) and no sampler warm-up."""
    if a.activation_bytes is not None:
        return a.activation_bytes
    if not a.version.v1:
        tokens = max(a.max_model_len, 2048) if a.max_model_len <= 32_768 else a.max_num_batched_tokens
        text, prefix = text_config(model.config)
        vocab = Fields(text, prefix).int("vocab_size", default=32000)
        logits = min(a.max_num_seqs, 256) * vocab * 4  # fp32 logits of the profiled sequences' last tokens
        return _forward_bytes(model, replace(a, max_num_batched_tokens=tokens), p) + logits
    text, prefix = text_config(model.config)
    vocab = Fields(text, prefix).int("vocab_size", default=32000)
    seqs = min(a.max_num_seqs, a.max_num_batched_tokens)
    sampler = SAMPLER_BYTES_PER_LOGIT * seqs * vocab
    return max(sampler, _forward_bytes(model, a, p))


# ------------------------------------------------------------------------------------------------
# KV cache layout


def _layout_kw(a: _Args) -> dict[str, Any]:
    """The vLLM settings a KV layout depends on (kv_layout, stage_layouts)."""
    return {
        "kv_dtype": a.kv_dtype,
        "tensor_parallel_size": a.tp,
        "pipeline_parallel_size": a.pp,
        "block_size": a.block_size,
        "max_num_batched_tokens": a.max_num_batched_tokens,
        "enable_prefix_caching": a.enable_prefix_caching,
        "draft_layers": a.draft_layers,
    }


def _layout(model: Model, a: _Args, seq_len: int) -> KVLayout | None:
    return kv_layout(model, seq_len, **_layout_kw(a))


def _pages(model: Model, a: _Args, seq_len: int) -> list[tuple[VLLMPage, ...]]:
    return vllm_layer_pages(
        model,
        seq_len,
        kv_dtype=a.kv_dtype,
        tensor_parallel_size=a.tp,
        block_size=a.block_size,
        max_num_batched_tokens=a.max_num_batched_tokens,
        enable_prefix_caching=a.enable_prefix_caching,
    )


def _per_request(model: Model, a: _Args, seq_len: int) -> int:
    """Bytes one request of ``seq_len`` tokens holds on the binding GPU (all its layers' pages)."""
    if a.pp == 1 and not a.draft_layers:
        return sum(x.page_bytes * x.pages for layer in _pages(model, a, seq_len) for x in layer)
    layout = _layout(model, a, seq_len)
    return layout.per_request_bytes if layout else 0


def _max_context(model: Model, a: _Args, budget: int, limit: int) -> int:
    """Largest context (≤ limit) whose per-request bytes fit the budget (vLLM estimate_max_model_len)."""
    if budget <= 0 or _per_request(model, a, 1) > budget:
        return 0
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _per_request(model, a, mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


# ------------------------------------------------------------------------------------------------
# the plan


#: vLLM's mxfp4 MoE weights on Hopper take more than the checkpoint: padding the hidden dimension of every
#: expert matrix to a multiple of 256 (4.25 bits per element: e2m1 + an e8m0 scale per 32) reproduces the
#: published H100 figures, gpt-oss-20b +0.63 GiB (logged +0.65) and gpt-oss-120b +3.79 GiB (logged +3.61)
#: (bench/vllm_logs/018-019). An estimate, like every weight figure at tp > 1.
MXFP4_PAD = 256


def _mxfp4_padding(model: Model, w: WeightBytes, p: ParamCount, a: _Args) -> int:
    """Extra bytes per GPU of vLLM's padded mxfp4 expert weights (see MXFP4_PAD)."""
    if w.format != "mxfp4" or not p.num_experts:
        return 0
    text, prefix = text_config(model.config)
    f = Fields(text, prefix)
    hidden = f.int("hidden_size", default=0)
    inter = f.int("moe_intermediate_size", "intermediate_size", default=0)
    pad = -hidden % MXFP4_PAD
    layers = sum(1 for layer in model.layers if layer.leaves())
    return layers * p.num_experts * 3 * (inter // a.tp) * pad * 17 // 32


def _stage_weights(w: WeightBytes, p: ParamCount, a: _Args, model: Model) -> int:
    """Weights on the binding GPU: a pipeline stage keeps 1/pp of the decoder layers plus the larger of
    the embeddings (first stage) and the lm_head (last stage); EAGLE / MTP draft layers add one decoder
    layer's weights each (estimates)."""
    edge = w.parts.get("embeddings", 0), w.parts.get("lm_head", 0)
    body = w.total - sum(edge)
    layers = max(1, len(model.layers))
    out = w.total if a.pp == 1 else math.ceil(body / a.pp) + max(edge)
    return out + a.draft_layers * (body // layers) + math.ceil(_mxfp4_padding(model, w, p, a) / a.pp)


def _moe_layers(model: Model, p: ParamCount, layers: int) -> list[bool]:
    """Which decoder layers hold routed experts (the family rules of kvcalc.core.params); [] for dense."""
    if not p.num_experts:
        return []
    from kvcalc.core.params import _Cfg, _is_moe_layer  # the same rule the weight count uses

    try:
        c = _Cfg(model)
        return [_is_moe_layer(c, i) for i in range(layers)]
    except KVCalcError:
        return [True] * layers


def _pp_stages(
    model: Model, a: _Args, p: ParamCount, w: WeightBytes, extra: int, fixed: int, activation: int
) -> tuple[int, int, int, KVLayout | None]:
    """Pipeline parallel: (weights, activation, budget, layout) of the stage that keeps the fewest blocks.

    Each stage sizes its own KV cache from its own memory (vLLM ``get_kv_cache_configs`` keeps the smallest
    block count): stage i holds its layers' share of the decoder weights, the embeddings (first stage) or
    the lm_head, the sampler warm-up and the draft layers (last stage); the other stages' peak is the
    forward pass. ``extra``: checkpoint bytes beyond the formula, spread over the layers; ``fixed``:
    requested − buffers − non-torch − CUDA graphs (estimates)."""
    emb, head = w.parts.get("embeddings", 0), w.parts.get("lm_head", 0)
    body = w.total - emb - head + extra + _mxfp4_padding(model, w, p, a)
    total_layers = max(1, len(model.layers))
    moe = _moe_layers(model, p, total_layers)
    moe_bytes = sum(w.parts.get(k, 0) for k in ("experts", "shared_experts", "router"))
    dense_bytes = w.parts.get("mlp", 0) if moe else 0
    even = body - moe_bytes - dense_bytes  # attention, norms, mixers (and the MLPs of a dense model)

    def stage_body(first: int, n: int) -> int:
        part = -(-even * n // total_layers)
        if moe:
            k = sum(moe[first : first + n])
            part += -(-moe_bytes * k // max(1, sum(moe))) + -(
                -dense_bytes * (n - k) // max(1, len(moe) - sum(moe))
            )
        return part

    layouts = stage_layouts(model, a.max_model_len, **_layout_kw(a))
    forward = min(activation, _forward_bytes(model, a, p)) if a.activation_bytes is None else activation
    best: tuple[float, tuple[int, int, int, KVLayout | None]] | None = None
    first = 0
    for i, (n, layout) in enumerate(zip(pp_stage_layers(total_layers, a.pp), layouts, strict=True)):
        last = i == a.pp - 1
        weights = stage_body(first, n) + (emb if i == 0 else 0) + (head if last else 0)
        first += n
        weights += a.draft_layers * (body // total_layers) if last else 0
        act = activation if last else forward
        budget = fixed - weights - act
        blocks = max(0, budget) // layout.bytes_per_block if layout else math.inf
        if best is None or blocks < best[0]:
            best = (blocks, (weights, act, budget, layout))
    assert best is not None
    return best[1]


def _overheads(model: Model, a: _Args, p: ParamCount) -> tuple[int, int, int]:
    """(activation peak, non-torch, CUDA-graph pool) subtracted from the budget (estimates)."""
    activation = _activation_bytes(model, a, p)
    if a.non_torch_bytes is not None:
        non_torch = a.non_torch_bytes
    elif a.tp * a.pp > 1 and a.gpu.key not in NVLINK_GPUS:
        non_torch = NON_TORCH_PCIE_BYTES
    else:
        non_torch = NON_TORCH_BYTES[min(a.tp * a.pp, 2)]
    if a.cudagraph_bytes is not None:
        cudagraph = a.cudagraph_bytes
    else:
        pool = CUDAGRAPH_BYTES if a.max_num_seqs >= 512 else CUDAGRAPH_SMALL_BYTES
        cudagraph = pool if a.version.cudagraph_in_budget and not a.enforce_eager else 0
    return activation, non_torch, cudagraph


def _budget_range(a: _Args, budget: int, activation: int, non_torch: int, cudagraph: int) -> tuple[int, int]:
    """The KV budget when each estimated overhead sits at the low / high end of its published spread
    (measured values passed in are not spread; a --kv-cache-memory budget is exact)."""
    if a.kv_cache_memory is not None:
        return budget, budget
    lo = hi = budget
    if a.activation_bytes is None:
        lo -= round(activation * (ACTIVATION_RANGE[1] - 1))
        hi += round(activation * (1 - ACTIVATION_RANGE[0]))
    if a.non_torch_bytes is None:
        nt_lo, nt_hi = NON_TORCH_RANGE[min(a.tp * a.pp, 2)]
        lo, hi = lo - max(0, nt_hi - non_torch), hi + max(0, non_torch - nt_lo)
    if a.cudagraph_bytes is None and cudagraph:
        lo, hi = lo - max(0, CUDAGRAPH_RANGE[1] - cudagraph), hi + max(0, cudagraph - CUDAGRAPH_RANGE[0])
    return lo, hi


@dataclass(frozen=True)
class Budget:
    """vLLM's memory per GPU before the KV cache (bytes), as :func:`plan` computes it: what it requests,
    what it spends first, and the KV budget left. Independent of the context length and the cache dtype."""

    requested: int
    utilization: float
    weights: int
    weight_format: str
    weights_source: str
    buffers: int
    activation: int
    non_torch: int
    cudagraph: int
    kv: int  # requested − weights − buffers − activation − non_torch − cudagraph (or --kv-cache-memory)
    notes: tuple[str, ...] = ()
    #: pipeline parallel only: the binding stage's layout at the plan's max_model_len
    stage_layout: KVLayout | None = None


def _budget(model: Model, a: _Args, p: ParamCount) -> Budget:
    requested = math.ceil(a.gpu.memory_bytes * a.utilization)
    weights = weight_bytes(model, a.weight_dtype, tensor_parallel_size=a.tp, vocab_padding=64, params=p)
    rank_total, source, notes = _weights(model, a, p, weights)
    stage = _stage_weights(weights, p, a, model) + -(-(rank_total - weights.total) // a.pp)
    buffers = _rope_bytes(model)
    activation, non_torch, cudagraph = _overheads(model, a, p)
    layout = _layout(model, a, a.max_model_len) if a.pp > 1 else None  # one stage: _fit lays it out
    if a.kv_cache_memory is not None:
        kv = a.kv_cache_memory  # --kv-cache-memory: vLLM skips profiling and uses this budget
    elif a.pp > 1:
        fixed = requested - buffers - non_torch - cudagraph
        extra = rank_total - weights.total
        stage, activation, kv, layout = _pp_stages(model, a, p, weights, extra, fixed, activation)
    else:
        kv = requested - stage - buffers - activation - non_torch - cudagraph
    return Budget(requested, a.utilization, stage, weights.format, source, buffers, activation, non_torch,
                  cudagraph, kv, tuple(notes), layout)  # fmt: skip


@dataclass(frozen=True)
class _Fit:
    """What a KV budget holds at max_model_len: vLLM's blocks, the token line, concurrency, the verdict."""

    layout: KVLayout | None
    per_request: int
    num_blocks: int
    tokens: int
    concurrency: float
    fits: bool


def _fit(model: Model, a: _Args, b: Budget) -> _Fit:
    """Blocks, the token line and the verdict for budget ``b`` (pipeline parallel: its binding stage)."""
    budget = b.kv
    layout = b.stage_layout if a.pp > 1 else _layout(model, a, a.max_model_len)
    if a.pp == 1 and not a.draft_layers:  # one stage: its layout already summed every page
        per_request = layout.per_request_bytes if layout else 0
    else:
        per_request = _per_request(model, a, a.max_model_len)
    if layout is None:
        num_blocks, tokens, concurrency = 0, 0, math.inf if budget >= 0 else 0.0
    else:
        num_blocks = max(0, budget) // layout.bytes_per_block
        tokens, concurrency = report(layout, num_blocks, a.max_model_len, a.version)
    replicas = a.num_gpus // (a.tp * a.pp)
    fits_one = budget > 0 and per_request <= budget
    want = a.batch_size or 1
    fits = fits_one and (int(concurrency) if math.isfinite(concurrency) else want) * replicas >= want
    return _Fit(layout, per_request, num_blocks, tokens, concurrency, fits)


def _compute(model: Model, a: _Args, p: ParamCount) -> Plan:
    """The arithmetic of one configuration (no search for a bigger one)."""
    b = _budget(model, a, p)
    requested, stage, source, buffers, budget = b.requested, b.weights, b.weights_source, b.buffers, b.kv
    activation, non_torch, cudagraph, notes = b.activation, b.non_torch, b.cudagraph, list(b.notes)
    lo, hi = _budget_range(a, budget, activation, non_torch, cudagraph)
    f = _fit(model, a, b)
    layout, per_request, num_blocks, tokens, concurrency, fits = (
        f.layout, f.per_request, f.num_blocks, f.tokens, f.concurrency, f.fits
    )  # fmt: skip
    if layout is None:
        bpb, bpr = 0, 0
        notes.append("the model keeps no KV cache: concurrency is limited by compute, not memory")
    else:
        bpb, bpr = layout.bytes_per_block, layout.blocks_per_request
        if layout.block_size != a.block_size:
            notes.append(
                f"vLLM raises the attention block size to {layout.block_size} (one mamba state per page)"
            )
    replicas = a.num_gpus // (a.tp * a.pp)
    limit = max(a.max_model_len, model.max_position_embeddings or 0)
    return Plan(
        model=model.name,
        gpu=a.gpu.key,
        gpu_name=a.gpu.name,
        gpu_memory_bytes=a.gpu.memory_bytes,
        num_gpus=a.num_gpus,
        tensor_parallel_size=a.tp,
        replicas=replicas,
        max_model_len=a.max_model_len,
        kv_dtype=a.kv_dtype,
        weight_format=b.weight_format,
        gpu_memory_utilization=a.utilization,
        requested_bytes=requested,
        weights_bytes=stage,
        weights_source=source,
        buffers_bytes=buffers,
        activation_bytes=activation,
        non_torch_bytes=non_torch,
        cudagraph_bytes=cudagraph,
        kv_budget_bytes=budget,
        page_bytes=layout.page_bytes if layout else 0,
        group_size=layout.group_size if layout else 0,
        bytes_per_block=bpb,
        num_blocks=num_blocks,
        blocks_per_request=bpr,
        per_request_bytes=per_request,
        max_concurrency=concurrency,
        kv_tokens=tokens if math.isfinite(concurrency) else 0,
        max_batch=(int(concurrency) if math.isfinite(concurrency) else a.max_num_seqs) * replicas,
        max_context=_max_context(model, a, budget, limit) if layout else limit,
        fits=fits,
        batch_size=a.batch_size,
        params=p.total_with_towers,
        active_params=p.active,
        notes=tuple(notes + _notes(model, a, p)),
        vllm_version=a.version.name,
        pipeline_parallel_size=a.pp,
        draft_layers=a.draft_layers,
        kv_budget_range=(lo, hi),
        kv_tokens_range=(
            report(layout, max(0, lo) // bpb, a.max_model_len, a.version)[0],
            report(layout, max(0, hi) // bpb, a.max_model_len, a.version)[0],
        )
        if layout
        else (0, 0),
    )


def _weights(model: Model, a: _Args, p: ParamCount, weights: WeightBytes) -> tuple[int, str, list[str]]:
    """Weight bytes per tensor-parallel rank, where they come from, and notes.

    Without a checkpoint (or with ``weight_dtype`` set): ``weights`` (count_params × the format). With
    one: the bytes of its safetensors headers (exact: :mod:`kvcalc.core.checkpoint`) plus vLLM's vocabulary
    padding to 64 rows (the formula's padded minus unpadded bytes); at tp > 1 split in the formula's
    per-rank proportion, and over pipeline stages like the formula (estimates, as the formula's are).
    """
    ck = a.checkpoint
    if ck is None or a.weight_dtype is not None:
        return weights.total, f"config: count_params × {weights.format}", []
    unpadded = weight_bytes(model, None, params=p).total
    padded = weight_bytes(model, None, vocab_padding=64, params=p).total
    whole = ck.total_bytes + padded - unpadded
    total = whole if a.tp == 1 or not padded else -(-whole * weights.total // padded)
    notes = []
    if ck.parameters != p.total_with_towers:
        notes.append(f"the checkpoint holds {ck.parameters:,} parameters, the config counts "
                     f"{p.total_with_towers:,}: the weights are the checkpoint's bytes")  # fmt: skip
    return total, f"checkpoint: {ck.source} ({len(ck.files)} safetensors headers)", notes


def _notes(model: Model, a: _Args, p: ParamCount) -> list[str]:
    out = []
    if not p.exact:
        out.append("parameter count is an estimate for this architecture")
    if p.towers:
        out.append(f"weights include the vision/audio tower ({p.towers:,} parameters)")
    if a.weight_dtype is None and p.num_experts and "mxfp4" in str(model.config.get("quantization_config")):
        out.append(
            "weights include vLLM's mxfp4 expert padding (hidden dimension to a multiple of 256; "
            "estimate fitted to gpt-oss-20b +0.65 / gpt-oss-120b +3.61 GiB on H100)"
        )
    if a.tp > 1:
        out.append("weights per GPU follow vLLM's tensor-parallel sharding (estimate)")
    if a.gpu.unified:
        out.append(
            "vLLM does not run on Apple GPUs: vLLM's arithmetic applied to unified memory "
            "(macOS lets the GPU wire only part of it)"
        )
    v = a.version
    graphs = (
        "CUDA graphs profiled into the budget"
        if v.cudagraph_in_budget
        else "CUDA graphs captured after sizing"
    )
    out.append(f"models vLLM {v.span} releases: {graphs}; gpu_memory_utilization default "
               f"{v.default_gpu_memory_utilization}; see docs/vllm_versions.md")  # fmt: skip
    if _is_hybrid(model):
        out.append(f"hybrid model: prefix caching {'on' if a.enable_prefix_caching else 'off'} "
                   f"({3 if a.enable_prefix_caching else 1} state pages per layer per request)")  # fmt: skip
    if a.pp > 1:
        out.append(f"pipeline parallel {a.pp}: each stage holds ~1/{a.pp} of the layers and its own KV "
                   "cache; "
                   "vLLM keeps the smallest stage's block count")  # fmt: skip
    if a.draft_layers:
        out.append(f"speculative decoding ({a.speculative}): {a.draft_layers} draft layer(s) hold KV like "
                   "the "
                   "target's layers")  # fmt: skip
    if a.kv_cache_memory is not None:
        out.append("--kv-cache-memory: a fixed KV budget; gpu_memory_utilization and profiling are skipped")
    return out


def _fits_with(model: Model, a: _Args, p: ParamCount, n: int) -> bool:
    try:
        check_query_heads_split(model, n)
        return _compute(model, replace(a, num_gpus=n * a.pp, tp=n), p).fits
    except KVCalcError:
        return False


def _min_gpus(model: Model, a: _Args, p: ParamCount) -> int | None:
    """Smallest tensor-parallel GPU count of this GPU type that fits, or None."""
    return next((n for n in TP_CANDIDATES if n > a.tp and _fits_with(model, a, p, n)), None)


def _message(pl: Plan, gpu: GPU) -> str:
    gib = GIB
    where = f"{pl.num_gpus} × {gpu.name}" + (f" (tp {pl.tensor_parallel_size})" if pl.num_gpus > 1 else "")
    if pl.fits:
        return (f"fits on {where}: {pl.kv_tokens:,} KV tokens per replica, {pl.max_concurrency:.2f}× "
                f"concurrency at {pl.max_model_len:,} tokens")  # fmt: skip
    if pl.kv_budget_bytes <= 0:
        why = f"weights and overheads exceed the {pl.requested_bytes / gib:.2f} GiB vLLM may use"
    elif pl.per_request_bytes > pl.kv_budget_bytes:
        need_gib, left_gib = pl.per_request_bytes / gib, pl.kv_budget_bytes / gib
        why = (f"one {pl.max_model_len:,}-token request needs {need_gib:.2f} GiB of KV cache, "
               f"{left_gib:.2f} GiB is left (max context {pl.max_context:,})")  # fmt: skip
    else:
        why = f"only {pl.max_batch} concurrent requests fit, {pl.batch_size} asked"
    most = TP_CANDIDATES[-1]
    need = f"need ≥ {pl.min_gpus} × {gpu.name}" if pl.min_gpus else f"even {most} × {gpu.name} do not"
    return f"does not fit on {where}: {why}; {need}"


def plan(
    model: Model,
    *,
    gpu: str | GPU,
    num_gpus: int | None = None,
    tensor_parallel_size: int | None = None,
    max_model_len: int | None = None,
    batch_size: int | None = None,
    kv_dtype: str = "auto",
    weight_dtype: str | None = None,
    engine: str = "vllm",
    gpu_memory_utilization: float | None = None,
    max_num_batched_tokens: int = 8192,
    max_num_seqs: int | None = None,
    block_size: int = 16,
    enable_prefix_caching: bool | None = None,
    activation_bytes: int | None = None,
    non_torch_bytes: int | None = None,
    cudagraph_bytes: int | None = None,
    vllm_version: str | None = None,
    pipeline_parallel_size: int = 1,
    data_parallel_size: int | None = None,
    speculative_config: Mapping[str, Any] | str | None = None,
    kv_cache_memory: int | None = None,
    enforce_eager: bool = False,
    checkpoint: Checkpoint | None = None,
) -> Plan:
    """Plan serving ``model`` with vLLM on ``num_gpus`` × ``gpu``.

    ``vllm_version`` (default: the newest modelled, :data:`kvcalc.deploy.vllm_versions.DEFAULT_VLLM_VERSION`)
    selects the release's behaviours: default ``gpu_memory_utilization`` (0.92, 0.9 before), whether CUDA
    graphs are profiled into the budget, prefix caching for hybrids, how the token line is printed.
    ``num_gpus`` defaults to tp × pp × dp; ``tensor_parallel_size`` to num_gpus / (pp × dp); GPUs beyond
    one tp × pp group are data-parallel replicas (``data_parallel_size`` names their count).
    ``max_model_len`` defaults to the config's max_position_embeddings; ``weight_dtype`` to the
    checkpoint's format; ``kv_dtype="auto"`` to the model dtype. ``batch_size``: concurrent requests that
    must fit at max_model_len (default 1). ``speculative_config`` (``{"method": "eagle"}``, MTP methods):
    draft layers that hold KV. ``kv_cache_memory``: vLLM's ``--kv-cache-memory`` (bytes; replaces the
    utilization budget). The three ``*_bytes`` arguments replace the estimates with measured values.
    ``checkpoint`` (:func:`kvcalc.core.checkpoint.load_checkpoint`) replaces the config's weight count by
    the checkpoint's exact bytes (``weights_source`` says which). See the module doc for what is exact
    and what is estimated.
    """
    a = _args(model, locals())  # every keyword argument, validated
    p = count_params(model)
    result = _compute(model, a, p)
    if not result.fits:
        result = replace(result, min_gpus=_min_gpus(model, a, p))
    return replace(result, message=_message(result, a.gpu))


def _settings(model: Model, gpu: str | GPU, tp: int, max_model_len: int, kw: Mapping[str, Any]) -> _Args:
    """plan()'s validated arguments for one tensor-parallel group (budget() and fits() only: one stage)."""
    if kw.get("pipeline_parallel_size", 1) != 1:
        raise KVCalcError("pipeline_parallel_size: budget() and fits() model one stage; use plan()")
    return _args(model, {**_DEFAULTS, "batch_size": None, **kw, "gpu": gpu, "num_gpus": tp,
                         "tensor_parallel_size": tp, "max_model_len": max_model_len})  # fmt: skip


def budget(
    model: Model,
    *,
    gpu: str | GPU,
    tensor_parallel_size: int = 1,
    params: ParamCount | None = None,
    **kw: Any,
) -> Budget:
    """vLLM's memory per GPU before the KV cache, exactly as :func:`plan` computes it (``kw``: the same
    arguments); ``params``: the model's count when already known (counting is the slow part)."""
    a = _settings(model, gpu, tensor_parallel_size, model.max_position_embeddings or 1, kw)
    return _budget(model, a, params or count_params(model))


def fits(
    model: Model,
    kv_budget: Budget,
    *,
    gpu: str | GPU,
    max_model_len: int,
    batch_size: int = 1,
    tensor_parallel_size: int = 1,
    **kw: Any,
) -> bool:
    """``plan(...).fits`` for a :func:`budget` of the same settings: ``batch_size`` requests of
    ``max_model_len`` tokens fit in its KV budget (without the plan's searches for more GPUs)."""
    a = _settings(model, gpu, tensor_parallel_size, max_model_len, {**kw, "batch_size": batch_size})
    return _fit(model, a, kv_budget).fits


def recommend(
    model: Model,
    *,
    max_model_len: int | None = None,
    gpus: Sequence[str | GPU] | None = None,
    batch_size: int | None = None,
    max_gpus: int = 64,
    **kw: Any,
) -> list[Plan]:
    """The smallest tensor-parallel configuration that fits on each GPU type, fewest GPUs first.

    Sorted by GPU count, then total memory. ``gpus`` defaults to the catalog's discrete GPUs (vLLM does
    not run on Apple unified memory; name those explicitly to apply the same arithmetic); ``kw`` takes the
    remaining :func:`plan` arguments (kv_dtype, weight_dtype, gpu_memory_utilization, …).
    """
    p = count_params(model)
    out = []
    candidates = gpus if gpus is not None else [g for g in GPUS if not g.unified]
    for g in (get_gpu(x) for x in candidates):
        for n in (x for x in TP_CANDIDATES if x <= max_gpus):
            settings = {**_DEFAULTS, **kw, "gpu": g, "num_gpus": n, "tensor_parallel_size": n,
                        "max_model_len": max_model_len, "batch_size": batch_size}  # fmt: skip
            try:
                a = _args(model, settings)
            except KVCalcError as exc:
                if str(exc).startswith("tensor_parallel_size"):
                    continue
                raise
            pl = _compute(model, a, p)
            if pl.fits:
                out.append(replace(pl, message=_message(pl, g)))
                break
    return sorted(out, key=lambda pl: (pl.num_gpus, pl.num_gpus * pl.gpu_memory_bytes, pl.gpu))
