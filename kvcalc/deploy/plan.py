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

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from kvcalc.core.config import text_config
from kvcalc.core.dtypes import get_dtype
from kvcalc.core.fields import LIMITS, Fields, check_int
from kvcalc.core.model import Model
from kvcalc.core.params import ParamCount, count_params, get_weight_format, weight_bytes
from kvcalc.deploy.gpus import GIB, GPU, GPUS, get_gpu
from kvcalc.engines import VLLMPage, vllm_layer_pages
from kvcalc.errors import KVCalcError

__all__ = ["DEFAULT_GPU_MEMORY_UTILIZATION", "Plan", "plan", "recommend"]

DEFAULT_GPU_MEMORY_UTILIZATION = 0.92
#: Activation peak of vLLM's sampler warm-up per logit (fp32 logits, sort, softmax copies): fitted to
#: H100 "PyTorch activation peak memory" of Llama-3.1-8B, Llama-3.3-70B (tp 2), Qwen3-0.6B, Qwen3-32B
#: and gpt-oss-20b at max_num_seqs 1024 (38.4–39.6 B per logit).
SAMPLER_BYTES_PER_LOGIT = 39
NON_TORCH_BYTES = {1: 140 * (1 << 20), 2: 563 * (1 << 20)}  # 0.13 / 0.55 GiB (tp = 1 / tp > 1)
CUDAGRAPH_BYTES = 512 * (1 << 20)
#: vLLM's default max_num_seqs for `vllm serve`: 1024 on ≥ 70 GiB GPUs other than A100, else 256.
BIG_GPU_BYTES = 70 * GIB
TP_CANDIDATES = (1, 2, 4, 8, 16, 32, 64)
_DEFAULTS: dict[str, Any] = {
    "kv_dtype": "auto",
    "weight_dtype": None,
    "engine": "vllm",
    "gpu_memory_utilization": 0.92,
    "max_num_batched_tokens": 8192,
    "max_num_seqs": None,
    "block_size": 16,
    "enable_prefix_caching": True,
    "activation_bytes": None,
    "non_torch_bytes": None,
    "cudagraph_bytes": None,
}
#: vLLM groups layers of different cache types in groups of equal size (kv_cache_utils).
GROUP_SIZE_SLACK = 1.25


@dataclass(frozen=True)
class _Args:
    """Validated plan arguments."""

    gpu: GPU
    num_gpus: int
    tp: int
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
        return out


# ------------------------------------------------------------------------------------------------
# argument checks


def _fraction(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise KVCalcError(f"{name}: expected a number in (0, 1], got {value!r}")
    return float(value)


def _opt_bytes(value: object, name: str) -> int | None:
    return None if value is None else check_int(value, name, minimum=0, maximum=1 << 50)


def _heads(model: Model) -> int:
    text, prefix = text_config(model.config)
    return Fields(text, prefix).int("num_attention_heads", "n_head", "num_heads", "n_heads", default=1,
                                    limit="heads")  # fmt: skip


def _check_tp(model: Model, tp: int) -> None:
    heads = _heads(model)
    if heads % tp:
        raise KVCalcError(f"tensor_parallel_size: {tp} does not divide num_attention_heads {heads}")


def _args(model: Model, kw: Mapping[str, Any]) -> _Args:
    if not isinstance(model, Model):
        raise KVCalcError(f"model: expected a kvcalc Model (use load_model), got {type(model).__name__}")
    gpu = get_gpu(kw["gpu"])
    num_gpus = check_int(kw["num_gpus"], "num_gpus", maximum=4096)
    tp = check_int(kw["tensor_parallel_size"] or num_gpus, "tensor_parallel_size", maximum=4096)
    if num_gpus % tp:
        raise KVCalcError(f"num_gpus: {num_gpus} is not a multiple of tensor_parallel_size {tp}")
    _check_tp(model, tp)
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
    return _Args(
        gpu=gpu,
        num_gpus=num_gpus,
        tp=tp,
        max_model_len=check_int(max_len, "max_model_len", maximum=LIMITS["tokens"]),
        batch_size=None if batch is None else check_int(batch, "batch_size", maximum=1 << 24),
        kv_dtype=get_dtype(kv_dtype).name,
        weight_dtype=weight_dtype,
        utilization=_fraction(kw["gpu_memory_utilization"], "gpu_memory_utilization"),
        max_num_batched_tokens=mnbt,
        max_num_seqs=check_int(seqs, "max_num_seqs", maximum=1 << 24),
        block_size=check_int(kw["block_size"], "block_size", maximum=1 << 20),
        enable_prefix_caching=bool(kw["enable_prefix_caching"]),
        activation_bytes=_opt_bytes(kw["activation_bytes"], "activation_bytes"),
        non_torch_bytes=_opt_bytes(kw["non_torch_bytes"], "non_torch_bytes"),
        cudagraph_bytes=_opt_bytes(kw["cudagraph_bytes"], "cudagraph_bytes"),
    )


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
    """vLLM profile_run peak: max(sampler warm-up, forward pass) — an estimate."""
    if a.activation_bytes is not None:
        return a.activation_bytes
    text, prefix = text_config(model.config)
    vocab = Fields(text, prefix).int("vocab_size", default=32000)
    seqs = min(a.max_num_seqs, a.max_num_batched_tokens)
    sampler = SAMPLER_BYTES_PER_LOGIT * seqs * vocab
    return max(sampler, _forward_bytes(model, a, p))


# ------------------------------------------------------------------------------------------------
# KV cache groups


@dataclass(frozen=True)
class _Groups:
    """vLLM KV-cache grouping: ``group_size`` layers share each block; pages per request summed."""

    page_bytes: int
    group_size: int
    pages_per_request: int
    block_size: int

    @property
    def bytes_per_block(self) -> int:
        return self.page_bytes * self.group_size


def _groups(pages: Sequence[tuple[VLLMPage, ...]]) -> _Groups | None:
    """Group cache slots by type like vLLM (equal-size groups; one group for a uniform model)."""
    by_type: dict[tuple[str, int, int], int] = {}
    for layer in pages:
        for x in layer:
            key = (x.kind, x.page_bytes, x.pages)
            by_type[key] = by_type.get(key, 0) + 1
    if not by_type:
        return None
    counts = by_type.values()
    lo, hi = min(counts), max(counts)
    size = hi if hi < lo * GROUP_SIZE_SLACK else lo
    page = max(k[1] for k in by_type)
    per_request = sum(math.ceil(n / size) * math.ceil(k[2] * k[1] / page) for k, n in by_type.items())
    block = next(x.block_size for layer in pages for x in layer)
    return _Groups(page_bytes=page, group_size=size, pages_per_request=per_request, block_size=block)


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


def _per_request(pages: Iterable[tuple[VLLMPage, ...]]) -> int:
    return sum(x.page_bytes * x.pages for layer in pages for x in layer)


def _max_context(model: Model, a: _Args, budget: int, limit: int) -> int:
    """Largest context (≤ limit) whose per-request bytes fit the budget (vLLM estimate_max_model_len)."""
    if budget <= 0 or _per_request(_pages(model, a, 1)) > budget:
        return 0
    lo, hi = 1, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _per_request(_pages(model, a, mid)) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


# ------------------------------------------------------------------------------------------------
# the plan


def _compute(model: Model, a: _Args, p: ParamCount) -> Plan:
    """The arithmetic of one configuration (no search for a bigger one)."""
    requested = math.ceil(a.gpu.memory_bytes * a.utilization)
    weights = weight_bytes(model, a.weight_dtype, tensor_parallel_size=a.tp, vocab_padding=64, params=p)
    buffers = _rope_bytes(model)
    activation = _activation_bytes(model, a, p)
    non_torch = a.non_torch_bytes if a.non_torch_bytes is not None else NON_TORCH_BYTES[min(a.tp, 2)]
    cudagraph = a.cudagraph_bytes if a.cudagraph_bytes is not None else CUDAGRAPH_BYTES
    budget = requested - weights.total - buffers - activation - non_torch - cudagraph
    pages = _pages(model, a, a.max_model_len)
    per_request = _per_request(pages)
    g = _groups(pages)
    notes: list[str] = []
    if g is None:
        bpb, num_blocks, bpr, concurrency = 0, 0, 0, math.inf if budget >= 0 else 0.0
        notes.append("the model keeps no KV cache: concurrency is limited by compute, not memory")
    else:
        bpb, bpr = g.bytes_per_block, g.pages_per_request
        num_blocks = max(0, budget) // bpb
        concurrency = num_blocks / bpr if bpr else 0.0
        if g.block_size != a.block_size:
            notes.append(f"vLLM raises the attention block size to {g.block_size} (one mamba state per page)")
    replicas = a.num_gpus // a.tp
    fits_one = budget > 0 and per_request <= budget
    want = a.batch_size or 1
    fits = fits_one and (int(concurrency) if math.isfinite(concurrency) else want) * replicas >= want
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
        weight_format=weights.format,
        gpu_memory_utilization=a.utilization,
        requested_bytes=requested,
        weights_bytes=weights.total,
        buffers_bytes=buffers,
        activation_bytes=activation,
        non_torch_bytes=non_torch,
        cudagraph_bytes=cudagraph,
        kv_budget_bytes=budget,
        page_bytes=g.page_bytes if g else 0,
        group_size=g.group_size if g else 0,
        bytes_per_block=bpb,
        num_blocks=num_blocks,
        blocks_per_request=bpr,
        per_request_bytes=per_request,
        max_concurrency=concurrency,
        kv_tokens=int(concurrency * a.max_model_len) if math.isfinite(concurrency) else 0,
        max_batch=(int(concurrency) if math.isfinite(concurrency) else a.max_num_seqs) * replicas,
        max_context=_max_context(model, a, budget, limit) if g else limit,
        fits=fits,
        batch_size=a.batch_size,
        params=p.total_with_towers,
        active_params=p.active,
        notes=tuple(notes + _notes(model, a, p)),
    )


def _notes(model: Model, a: _Args, p: ParamCount) -> list[str]:
    out = []
    if not p.exact:
        out.append("parameter count is an estimate for this architecture")
    if p.towers:
        out.append(f"weights include the vision/audio tower ({p.towers:,} parameters)")
    if a.weight_dtype is None and p.num_experts and "mxfp4" in str(model.config.get("quantization_config")):
        out.append("vLLM's mxfp4 MoE kernels may pad the expert width (gpt-oss-20b measured +0.65 GiB)")
    if a.tp > 1:
        out.append("weights per GPU follow vLLM's tensor-parallel sharding (estimate)")
    if a.gpu.unified:
        out.append("vLLM does not run on Apple GPUs: vLLM's arithmetic applied to unified memory "
                   "(macOS lets the GPU wire only part of it)")
    return out


def _fits_with(model: Model, a: _Args, p: ParamCount, n: int) -> bool:
    try:
        _check_tp(model, n)
        return _compute(model, replace(a, num_gpus=n, tp=n), p).fits
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
    num_gpus: int = 1,
    tensor_parallel_size: int | None = None,
    max_model_len: int | None = None,
    batch_size: int | None = None,
    kv_dtype: str = "auto",
    weight_dtype: str | None = None,
    engine: str = "vllm",
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    max_num_batched_tokens: int = 8192,
    max_num_seqs: int | None = None,
    block_size: int = 16,
    enable_prefix_caching: bool = True,
    activation_bytes: int | None = None,
    non_torch_bytes: int | None = None,
    cudagraph_bytes: int | None = None,
) -> Plan:
    """Plan serving ``model`` with vLLM on ``num_gpus`` × ``gpu`` (tensor parallel = num_gpus by default).

    ``max_model_len`` defaults to the config's max_position_embeddings; ``weight_dtype`` to the
    checkpoint's format; ``kv_dtype="auto"`` to the model dtype; ``gpu_memory_utilization`` to 0.92
    (vLLM's current default; 0.9 in older releases). ``batch_size``: concurrent requests that must fit
    at max_model_len (default 1). GPUs beyond one tensor-parallel group are data-parallel replicas.
    The three ``*_bytes`` arguments replace the estimates with measured values. See the module doc for
    what is exact and what is estimated.
    """
    a = _args(model, locals())  # every keyword argument, validated
    p = count_params(model)
    result = _compute(model, a, p)
    if not result.fits:
        result = replace(result, min_gpus=_min_gpus(model, a, p))
    return replace(result, message=_message(result, a.gpu))


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
