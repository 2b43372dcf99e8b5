"""A whole SGLang 0.5.23 launch on a GPU: mem_fraction_static, the pools and the line SGLang logs.

Two ways in:

* ``available_bytes`` (exact): the rest memory per rank SGLang's ``_profile_available_bytes`` computes
  (free after loading − free before loading·(1 − mem_fraction_static)); the pools follow exactly
  (:mod:`kvcalc.engines.sglang`).
* ``gpu`` (estimate): SGLang's default ``mem_fraction_static`` for that GPU size and tp, weights per rank
  from :func:`kvcalc.core.params.weight_bytes` (vocabulary padded to 64 as SGLang's
  VocabParallelEmbedding does), free memory before loading = the catalog's memory of the GPU. What
  CUDA, NCCL and SGLang allocate before the pool is not known here, so the estimate's token count is
  an upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from kvcalc.core.model import Model
from kvcalc.core.params import weight_bytes
from kvcalc.deploy.gpus import GPU, get_gpu
from kvcalc.engines import sglang
from kvcalc.errors import KVCalcError

#: CUDA compute capability major of the catalog's NVIDIA GPUs (what decides SGLang's SM100 defaults).
SM_MAJOR = {
    "h100": 9, "h100-nvl": 9, "h200": 9, "b200": 10, "b300": 10, "a100-80gb": 8, "a100-40gb": 8,
    "l40s": 8, "a40": 8, "l4": 8, "rtx-3090": 8, "rtx-4090": 8, "rtx-5090": 12,
}  # fmt: skip


@dataclass(frozen=True)
class SGLangPlan:
    """What SGLang would allocate per rank; ``estimated`` names the fields that are estimates."""

    model: str
    tensor_parallel_size: int
    layout: sglang.Layout
    sizes: sglang.PoolSizes
    available_bytes: int
    chunked_prefill_size: int
    gpu: GPU | None = None
    num_gpus: int = 1
    defaults: sglang.GpuDefaults | None = None
    mem_fraction_static: float | None = None
    mem_fraction_static_source: str = ""
    weights_bytes: int | None = None
    weights_format: str = ""
    estimated: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def log_line(self) -> str:
        """The scheduler's start-up line, with available_gpu_mem unknown (``?``)."""
        return sglang.log_line(self.sizes, self.layout, self.chunked_prefill_size, None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready plan (bytes are integers per rank)."""
        lay, sz = self.layout, self.sizes
        pools: dict[str, int | None] = {"full": sz.full_tokens}
        if sz.swa_tokens is not None:
            pools["swa"] = sz.swa_tokens
        out: dict[str, Any] = {
            "engine": "sglang",
            "sglang_version": sglang.SGLANG_VERSION,
            "model": self.model,
            "tensor_parallel_size": self.tensor_parallel_size,
            "num_gpus": self.num_gpus,
            "configurator": lay.kind,
            "kv_cache_dtype": lay.kv_cache_dtype,
            "page_size": lay.page_size,
            "context_len": lay.context_len,
            "cell_bytes": lay.cell_bytes,
            "cell_size": lay.cell_size,
            "available_bytes": self.available_bytes,
            "max_total_num_tokens": sz.max_total_num_tokens,
            "pool_tokens": pools,
            "max_mamba_cache_size": sz.max_mamba_cache_size,
            "max_running_requests": sz.max_running_requests,
            "chunked_prefill_size": self.chunked_prefill_size,
            "max_prefill_tokens": sglang.MAX_PREFILL_TOKENS,
            "log_line": self.log_line,
            "estimated": list(self.estimated),
            "notes": list(self.notes),
        }
        if self.gpu is not None and self.defaults is not None:
            out |= {
                "gpu": self.gpu.name,
                "gpu_memory_bytes": self.gpu.memory_bytes,
                "gpu_memory_mib": self.defaults.gpu_mem_mib,
                "mem_fraction_static": self.mem_fraction_static,
                "mem_fraction_static_source": self.mem_fraction_static_source,
                "cuda_graph_max_bs": self.defaults.cuda_graph_max_bs,
                "reserved_mib": self.defaults.reserved_mib,
                "weights_bytes": self.weights_bytes,
                "weights_format": self.weights_format,
            }
        return out


def _tp(num_gpus: int | None, tp: int | None) -> tuple[int, int]:
    tp = tp or num_gpus or 1
    num = num_gpus or tp
    if num != tp:
        raise KVCalcError(
            f"num_gpus: {num} GPUs with tp {tp} means data parallelism, "
            "which kvcalc does not model for SGLang"
        )
    return num, tp


def _fitting_tp(model: Model, g: GPU, mib: float, opts: sglang.Options, mla: bool, weight_dtype: str | None,
                fraction: float | None) -> int | None:  # fmt: skip
    """The smallest power-of-two tp (≤ 64) at which SGLang's budget stays positive, if any."""
    for tp in (2, 4, 8, 16, 32, 64):
        if tp <= opts.tensor_parallel_size:
            continue
        try:
            sglang.layout(model, replace(opts, tensor_parallel_size=tp))
        except KVCalcError:
            continue
        mfs = fraction if fraction is not None else sglang.gpu_defaults(mib, tp, mla=mla).mem_fraction_static
        w = weight_bytes(model, weight_dtype, tensor_parallel_size=tp, vocab_padding=64).total
        if sglang.available_bytes(g.memory_bytes, w, mfs) > 0:
            return tp
    return None


def plan_sglang(
    model: Model,
    *,
    gpu: str | GPU | None = None,
    num_gpus: int | None = None,
    tensor_parallel_size: int | None = None,
    available_bytes: int | None = None,
    mem_fraction_static: float | None = None,
    options: sglang.Options | None = None,
    weight_dtype: str | None = None,
) -> SGLangPlan:
    """SGLang's pools for ``available_bytes`` per rank, or a whole launch on ``gpu`` (see module doc)."""
    num, tp = _tp(num_gpus, tensor_parallel_size)
    opts = replace(options or sglang.Options(), tensor_parallel_size=tp)
    notes: list[str] = []
    if gpu is None:
        if available_bytes is None:
            raise KVCalcError("available_bytes: give --available-bytes (per rank, after weights) or --gpu")
        lay = sglang.layout(model, opts)
        sizes = sglang.pool_sizes(lay, available_bytes, max_running_requests=opts.max_running_requests)
        chunk = opts.chunked_prefill_size or 8192
        if opts.chunked_prefill_size is None:
            notes.append(
                "chunked_prefill_size 8192 assumed (SGLang's default on 60–160 GiB GPUs); give --gpu"
            )
        if opts.sm_major == 9 and opts.page_size is None:
            notes.append("defaults of an SM90 (Hopper) GPU: page size and DSA cache dtype")
        return SGLangPlan(
            model.name, tp, lay, sizes, available_bytes, chunk, num_gpus=num, notes=tuple(notes)
        )
    g = get_gpu(gpu)
    if g.vendor != "NVIDIA" or g.key not in SM_MAJOR:
        raise KVCalcError(f"gpu: SGLang's memory defaults are modelled for NVIDIA GPUs only, not {g.name}")
    opts = replace(opts, sm_major=SM_MAJOR[g.key])
    lay = sglang.layout(model, opts)
    if model.architecture in sglang.MULTIMODAL_ARCHS or "vision_config" in model.config:
        raise KVCalcError(
            "model: SGLang reserves extra memory for multimodal models (ViT mem_fraction factor, VLM cache); "
            "not modelled — use --available-bytes"
        )
    mib = sglang.gpu_memory_mib(g.key, g.memory_bytes, g.memory_source)
    defaults = sglang.gpu_defaults(
        mib,
        tp,
        mla=lay.mla,
        chunked_prefill_size=opts.chunked_prefill_size,
        max_running_requests=opts.max_running_requests,
        model_path=model.name,
    )
    source = "given" if mem_fraction_static is not None else "SGLang default for this GPU and tp"
    mfs = mem_fraction_static if mem_fraction_static is not None else defaults.mem_fraction_static
    w = weight_bytes(model, weight_dtype, tensor_parallel_size=tp, vocab_padding=64)
    estimated = ["weights_bytes", "available_bytes", "max_total_num_tokens", "pool_tokens",
                 "max_mamba_cache_size", "max_running_requests", "log_line"]  # fmt: skip
    if available_bytes is None:
        available_bytes = sglang.available_bytes(g.memory_bytes, w.total, mfs)
        notes.append(
            "available_bytes = GPU memory·mem_fraction_static − weights: memory taken before loading (CUDA "
            "context, NCCL) is not known, so the token counts are an upper bound"
        )
    else:
        estimated = ["weights_bytes"]
    if available_bytes <= 0:
        hint = (
            _fitting_tp(model, g, mib, opts, lay.mla, weight_dtype, mem_fraction_static) if tp < 64 else None
        )
        more = f"; the smallest tp whose weights fit on {g.name} is {hint} (--tp {hint})" if hint else ""
        raise KVCalcError(
            f"mem_fraction_static: weights ({w.total / sglang.GIB:.2f} GiB per rank at tp {tp}) "
            "leave no memory "
            f"for the KV cache at mem_fraction_static {mfs}; SGLang refuses to start{more}"
        )
    sizes = sglang.pool_sizes(lay, available_bytes, max_running_requests=opts.max_running_requests)
    return SGLangPlan(
        model.name, tp, lay, sizes, available_bytes, defaults.chunked_prefill_size, gpu=g, num_gpus=num,
        defaults=defaults, mem_fraction_static=mfs, mem_fraction_static_source=source, weights_bytes=w.total,
        weights_format=w.format, estimated=tuple(estimated), notes=tuple(notes),
    )  # fmt: skip
