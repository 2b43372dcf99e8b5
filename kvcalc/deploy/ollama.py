"""Ollama on top of llama.cpp: what Ollama launches, what it predicts, what ``ollama ps`` shows.

Release modelled: **Ollama v0.32.15** (commit b7871fc0d, 2026-08-19; the same code in v0.33.0-rc2).
Since #16031 ("runner: Remove CGO engines, use llama-server exclusively for GGML models", 2026-05-29)
Ollama no longer runs its own engine (the former ``ollamarunner``, ``kvcache/causal.go`` and
``llm/memory.go`` ``EstimateGPULayers`` are gone): every GGUF model is served by a llama-server child
process built from llama.cpp ``b10488`` (``LLAMA_CPP_VERSION``) plus Ollama's metadata-compat patch
(``llama/compat``: tensor/metadata renames at load time, nothing in the memory module). So the KV cache
is llama.cpp's own arithmetic (kvcalc.engines.llamacpp, read from llama.cpp 0c1e57098; Ollama's pin is
an older build, and kvcalc assumes its memory-module rules are the same) for the flags Ollama passes:

- ``llm/llama_server.go`` ``startLlamaServer``: ``-c num_ctx × num_parallel -np num_parallel`` (no
  ``--kv-unified``: one KV stream per slot), ``--cache-type-k T --cache-type-v T`` when
  ``OLLAMA_KV_CACHE_TYPE`` is set (lower-cased, ``llm/server.go`` ``NewLlamaServer``, not validated:
  llama-server refuses what it refuses), ``--flash-attn on|off|auto`` (``LlamaServerFlashAttention``:
  ``OLLAMA_FLASH_ATTENTION`` if set, else ``auto`` when every GPU supports it), ``-b N -ub N`` with
  ``N = num_batch`` (``appendBatchArgs``), ``-ngl`` only when ``num_gpu`` is set (else llama.cpp's
  ``--fit`` picks the layers).
- ``llm/server.go`` ``NewLlamaServer``: ``num_ctx`` above the GGUF's ``context_length`` is cut to it.
- ``server/routes.go`` ``Serve``: the default ``num_ctx`` (no request/Modelfile ``num_ctx`` and no
  ``OLLAMA_CONTEXT_LENGTH``) is 262144 if the GPUs' total memory minus ``OLLAMA_GPU_OVERHEAD`` each is
  ≥ 47 GiB, 32768 if ≥ 23 GiB, else 4096. ``server/sched.go`` ``getRunner``: ``num_ctx`` ≥ 4, and ≥ 2048
  for vision models.
- ``server/sched.go`` ``load``: ``num_parallel = max(OLLAMA_NUM_PARALLEL, 1)`` (default 1,
  ``envconfig.NumParallel``), forced to 1 for embedding models and the families listed in
  :data:`NO_PARALLEL_FAMILIES`.
- ``server/sched.go`` ``automaticGenerationBatch``: without a ``num_batch`` option Ollama picks 512 /
  1024 / 2048 from the total context and its own VRAM prediction (``llm/llama_server.go``
  ``PredictServerVRAM``: model file size + ``2·block_count·head_count_kv_min·(embedding_length /
  head_count_max)·ctx·2`` — Ollama's estimate, not an allocation).
- Vision models: Ollama sets ``LLAMA_ARG_FIT_TARGET`` to the projector's memory + 1 GiB
  (``extraEnvsForStart``, ``mmprojFitTargetMiB``) instead of llama.cpp's 1024 MiB default; kvcalc does
  not size projectors, so their placement and PROCESSOR column are not modelled.
- Runners: GGUF models (every architecture) → llama-server; safetensors models
  (``Model.IsMLX``: ``ModelFormat == "safetensors"``) → ``x/mlxrunner`` (MLX), not modelled.
- ``ollama ps`` (``cmd/cmd.go`` ``ListRunningHandler``): SIZE = ``format.HumanBytes`` (decimal units) of
  the buffers llama-server logs (model + KV + compute + output + RS, ``llamaServerRunner.MemorySize``),
  all of it GPU when every layer is offloaded; PROCESSOR ``100% GPU``, ``100% CPU`` or
  ``"%d%%/%d%% CPU/GPU"`` rounded; CONTEXT = the per-slot ``num_ctx``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from kvcalc.core.gguf import GGUF
from kvcalc.core.model import Model
from kvcalc.engines import llamacpp as L
from kvcalc.errors import KVCalcError

RELEASE = "Ollama v0.32.15 (b7871fc0d)"
LLAMA_CPP_PIN = "b10488"
GIB = 1 << 30
MIB = 1 << 20

#: server/sched.go ``load``: "model architecture does not currently support parallel requests".
NO_PARALLEL_FAMILIES = frozenset(
    {"mllama", "qwen3vl", "qwen3vlmoe", "qwen35", "qwen35moe", "qwen3next", "lfm2", "lfm2moe",
     "nemotron_h", "nemotron_h_moe", "nemotron_h_omni"}
)  # fmt: skip

#: config.json ``model_type`` → the GGUF architecture Ollama calls the model family (convert names).
_FAMILY = {
    "qwen3_vl": "qwen3vl", "qwen3_vl_moe": "qwen3vlmoe", "qwen3_5": "qwen35", "qwen3_5_moe": "qwen35moe",
    "qwen3_next": "qwen3next", "qwen3_5_text": "qwen35", "qwen3_5_moe_text": "qwen35moe",
    "lfm2_moe": "lfm2moe", "gpt_oss": "gpt-oss",
}  # fmt: skip

#: server/routes.go ``Serve``: VRAM tiers of the default context.
CTX_TIERS = ((47 * GIB, 262144), (23 * GIB, 32768), (0, 4096))

#: server/sched.go: automatic generation batch sizes and their surcharges.
BATCH_DEFAULT, BATCH_CONSTRAINED, BATCH_MEDIUM, BATCH_LARGE = 512, 256, 1024, 2048


# ------------------------------------------------------------------------- Ollama's own arithmetic


def default_num_ctx(gpu_total_bytes: tuple[int, ...], gpu_overhead: int = 0) -> int:
    """``Serve``: Σ (TotalMemory − OLLAMA_GPU_OVERHEAD) ≥ 47 GiB → 262144, ≥ 23 GiB → 32768, else 4096."""
    total = sum(t - gpu_overhead for t in gpu_total_bytes)
    return next(ctx for floor, ctx in CTX_TIERS if total >= floor)


def predict_server_vram(
    file_bytes: int, block_count: int, head_count_kv_min: int, embedding_length: int, head_count_max: int,
    num_ctx: int,
) -> int:  # fmt: skip
    """``PredictServerVRAM``: file size + 2·layers·kv_heads·head_dim·ctx·2 (f16, whatever the cache type).

    ``head_dim = embedding_length // head_count_max`` (integer division; not the model's head_dim),
    ``kv_heads = head_count_kv_min or 1``; 0 when ``head_count_max`` is 0.
    """
    kv_heads = head_count_kv_min or 1
    head_dim = embedding_length // head_count_max if head_count_max > 0 else 0
    return file_bytes + 2 * block_count * kv_heads * head_dim * num_ctx * 2


def batch_for_context(effective_ctx: int) -> int:
    """``generationBatchForContext``: > 32768 → 2048, > 4096 → 1024, else 512."""
    return BATCH_LARGE if effective_ctx > 32768 else BATCH_MEDIUM if effective_ctx > 4096 else BATCH_DEFAULT


def batch_surcharge(batch: int) -> int:
    """``generationBatchSurcharge``: 2 GiB for ≥ 2048, 768 MiB for ≥ 1024, else 0."""
    return 2 * GIB if batch >= BATCH_LARGE else 768 * MIB if batch >= BATCH_MEDIUM else 0


def _batch_fits(batch: int, predicted: int, available: int) -> bool:
    """``generationBatchFits`` with ``generationBatchHasHeadroom`` (80 % threshold; 60 % / 75 % headroom)."""
    if predicted == 0 or available == 0:
        return True
    threshold = available * 80 // 100
    if predicted > threshold:
        return False
    if batch >= BATCH_LARGE and predicted > available * 60 // 100:
        return False
    if BATCH_MEDIUM <= batch < BATCH_LARGE and predicted > available * 75 // 100:
        return False
    return batch_surcharge(batch) <= threshold - predicted


def automatic_batch(
    effective_ctx: int, predicted: int, available: int, flash_attn: str, cuda: bool, smallest_gpu: int
) -> int:
    """``automaticGenerationBatch``: CUDA without flash attention → 512 (256 above 4096 tokens on a GPU of
    ≤ 8 GiB); otherwise the context's batch, lowered 2048 → 1024 → 512 until it fits."""
    if flash_attn == "off" and cuda:
        small = effective_ctx > 4096 and 0 < smallest_gpu <= 8 * GIB
        return BATCH_CONSTRAINED if small else BATCH_DEFAULT
    batch = batch_for_context(effective_ctx)
    while batch > BATCH_DEFAULT and not _batch_fits(batch, predicted, available):
        batch = BATCH_MEDIUM if batch > BATCH_MEDIUM else BATCH_DEFAULT
    return batch


def human_bytes(b: int) -> str:
    """``format.HumanBytes``: decimal units; ≥ 10 → integer part, else one decimal unless whole."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if b >= size:
            value = b / size
            if value >= 10 or value == math.trunc(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{b} B"


def processor(size: int, vram: int) -> str:
    """``ListRunningHandler``'s PROCESSOR column from ``Size`` and ``SizeVRAM``."""
    if vram == 0:
        return "100% CPU"
    if vram == size:
        return "100% GPU"
    if vram > size or size == 0:
        return "Unknown"
    cpu = _go_round((size - vram) / size * 100)
    return f"{cpu}%/{100 - cpu}% CPU/GPU"


def _go_round(x: float) -> int:
    """Go's ``math.Round`` for x ≥ 0: half away from zero (Python's round() is half to even)."""
    whole = math.floor(x)
    return int(whole) + (1 if x - whole >= 0.5 else 0)


_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def env_bool(value: str | None) -> bool | None:
    """``envconfig.BoolWithDefault``: unset/empty → None (the default); Go ``strconv.ParseBool`` values;
    anything else → True. Values are trimmed of spaces and quotes first (``envconfig.Var``)."""
    v = (value or "").strip().strip("\"'")
    if not v:
        return None
    return v not in _FALSE if v in _TRUE + _FALSE else True


@dataclass(frozen=True)
class Device:
    """What ``ml.FlashAttentionSupported`` reads of a GPU (``ml.DeviceInfo``)."""

    library: str  # CUDA, ROCm, Metal, Vulkan, cpu
    compute_major: int = 0
    compute_minor: int = 0
    driver_major: int = 0  # 0 = unknown


def flash_attention_supported(devices: list[Device] | tuple[Device, ...]) -> bool:
    """``ml/device.go`` ``FlashAttentionSupported``: every device is CPU, Metal, ROCm, Vulkan, or CUDA
    with compute ≥ 6 except 7.2 and (driver unknown or driver ≥ 7)."""

    def ok(d: Device) -> bool:
        if d.library in ("cpu", "Metal", "ROCm", "Vulkan"):
            return True
        if d.library != "CUDA" or d.compute_major < 6 or (d.compute_major, d.compute_minor) == (7, 2):
            return False
        return d.driver_major == 0 or d.driver_major >= 7

    return all(ok(d) for d in devices)


def flash_attn_flag(env_value: str | None, supported: bool) -> str:
    """``LlamaServerFlashAttention`` → ``--flash-attn``: the variable if set, else auto if supported."""
    b = env_bool(env_value)
    if b is not None:
        return "on" if b else "off"
    return "auto" if supported else "off"


# ------------------------------------------------------------------------- the model as Ollama reads it


@dataclass(frozen=True)
class ModelFacts:
    """The GGUF keys Ollama's scheduler reads (``fs/ggml`` ``KV``)."""

    family: str
    context_length: int
    block_count: int
    head_count_kv_min: int
    head_count_max: int
    embedding_length: int
    vision: bool = False
    mtp: bool = False
    embedding: bool = False
    estimate_exact: bool = True  # the GGUF keys above are known exactly


def facts_of_gguf(g: GGUF) -> ModelFacts:
    """From a GGUF header: ``{arch}.block_count``, ``attention.head_count(_kv)`` (min/max over arrays)."""

    def ints(key: str, default: int) -> list[int]:
        v = g.get(key, default)
        return [int(x) for x in v] if isinstance(v, (list, tuple)) and v else [int(v)]

    arch = g.architecture
    qwen_mtp = arch in ("qwen35", "qwen35moe") and any(t.name.startswith("mtp.") for t in g.tensors)
    return ModelFacts(
        family=arch,
        context_length=int(g.get("context_length", 0) or 0),
        block_count=int(g.get("block_count", 0) or 0),
        head_count_kv_min=min(ints("attention.head_count_kv", 1)),
        head_count_max=max(ints("attention.head_count", 1)),
        embedding_length=int(g.get("embedding_length", 0) or 0),
        vision=any(t.name.startswith("v.") for t in g.tensors),
        mtp=int(g.get("nextn_predict_layers", 0) or 0) > 0 or qwen_mtp,
        embedding=f"{arch}.pooling_type" in g.metadata,
    )


def facts_of_config(model: Model) -> ModelFacts:
    """From config.json, as llama.cpp's converter writes the GGUF keys (``convert_hf_to_gguf.py``):
    ``block_count = num_hidden_layers``, ``embedding_length = hidden_size``,
    ``head_count = num_attention_heads``, ``head_count_kv = num_key_value_heads`` (default: heads; 1 for
    MLA, conversion/deepseek.py). Hybrid models are flagged (``estimate_exact``): their per-layer counts
    depend on the converter."""
    c = model.text_config
    try:
        layers = int(c["num_hidden_layers"])
        hidden = int(c["hidden_size"])
        heads = c["num_attention_heads"]
    except (KeyError, TypeError, ValueError):
        raise KVCalcError(
            "config: Ollama's estimate needs num_hidden_layers, hidden_size and num_attention_heads"
        ) from None
    kv = c.get("num_key_value_heads") or heads
    heads_l = heads if isinstance(heads, list) else [heads]
    kv_l = kv if isinstance(kv, list) else [kv]
    mt = str(model.model_type)
    kinds = set(model.kinds())
    if "mla" in kinds:  # conversion/deepseek.py: "deepseek2 using MLA converts into MQA"
        kv_l = [1]
    return ModelFacts(
        family=_FAMILY.get(mt, mt),
        context_length=int(model.max_position_embeddings or 0),
        block_count=layers,
        head_count_kv_min=int(min(kv_l)),
        head_count_max=int(max(heads_l)),
        embedding_length=hidden,
        vision="vision_config" in model.config,
        mtp=any(int(c.get(k, 0) or 0) > 0 for k in ("num_nextn_predict_layers", "mtp_num_hidden_layers")),
        estimate_exact=kinds <= {"full", "sliding", "mla"},
    )


# ------------------------------------------------------------------------- settings → launch


@dataclass(frozen=True)
class Settings:
    """Ollama's knobs: request/Modelfile options and ``OLLAMA_*`` variables (None = unset)."""

    num_ctx: int | None = None  # option num_ctx
    context_length: int = 0  # OLLAMA_CONTEXT_LENGTH
    num_parallel: int = 1  # OLLAMA_NUM_PARALLEL
    kv_cache_type: str = ""  # OLLAMA_KV_CACHE_TYPE
    flash_attention: bool | None = None  # OLLAMA_FLASH_ATTENTION
    num_batch: int | None = None  # option num_batch
    gpu_overhead: int = 0  # OLLAMA_GPU_OVERHEAD (bytes per GPU)

    def env(self) -> dict[str, str]:
        """The ``OLLAMA_*`` values assumed (unset ones shown as Ollama's default)."""
        fa = "unset (auto)" if self.flash_attention is None else str(self.flash_attention).lower()
        return {
            "OLLAMA_CONTEXT_LENGTH": str(self.context_length) if self.context_length else "unset (VRAM tier)",
            "OLLAMA_NUM_PARALLEL": str(self.num_parallel),
            "OLLAMA_KV_CACHE_TYPE": self.kv_cache_type or "unset (f16)",
            "OLLAMA_FLASH_ATTENTION": fa,
            "OLLAMA_GPU_OVERHEAD": str(self.gpu_overhead),
        }


@dataclass(frozen=True)
class Launch:
    """What Ollama decides before it starts llama-server, and the flags it passes."""

    num_ctx: int
    num_ctx_source: str
    num_parallel: int
    kv_cache_type: str
    flash_attn: str
    num_batch: int
    num_batch_auto: bool
    predicted_vram: int
    notes: tuple[str, ...] = field(default=())

    @property
    def n_ctx(self) -> int:
        """llama-server's ``-c``: ``num_ctx × num_parallel``."""
        return self.num_ctx * self.num_parallel

    def argv(self) -> list[str]:
        """The memory-relevant llama-server flags, in ``startLlamaServer``'s order."""
        out = ["-c", str(self.n_ctx), "-np", str(self.num_parallel)]
        if self.kv_cache_type:
            out += ["--cache-type-k", self.kv_cache_type, "--cache-type-v", self.kv_cache_type]
        out += ["--flash-attn", self.flash_attn, "-b", str(self.num_batch), "-ub", str(self.num_batch)]
        return out

    def llama_settings(self) -> L.Settings:
        """The same request in kvcalc's llama.cpp vocabulary (one KV stream per slot)."""
        t = self.kv_cache_type or "f16"
        return L.Settings(n_ctx=self.n_ctx, n_parallel=self.num_parallel, kv_unified=False, type_k=t,
                          type_v=t, flash_attn=self.flash_attn, n_batch=self.num_batch,
                          n_ubatch=self.num_batch)  # fmt: skip


def _positive(value: int, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise KVCalcError(f"{name}: must be a whole number ≥ 1, got {value!r}")
    return value


def launch(
    facts: ModelFacts,
    settings: Settings,
    gpu_total_bytes: tuple[int, ...],
    *,
    file_bytes: int,
    cuda: bool = True,
    fa_supported: bool = True,
    embedding: bool = False,
) -> Launch:
    """Ollama's decisions for one model load on empty GPUs (free memory = total memory)."""
    s = settings
    if embedding or facts.embedding:
        raise KVCalcError(
            "model: an embedding model (pooling_type): Ollama's embedding batch defaults "
            "(DefaultEmbeddingNumBatch, --embedding) are not modelled"
        )
    if facts.mtp:
        raise KVCalcError(
            f"model: {RELEASE} turns on llama-server's MTP draft for this model (nextn/MTP layers); "
            "the draft context's memory is not modelled"
        )
    notes: list[str] = []
    if s.num_ctx is not None:
        num_ctx, source = _positive(s.num_ctx, "num_ctx"), "num_ctx option"
    elif s.context_length:
        num_ctx, source = _positive(s.context_length, "OLLAMA_CONTEXT_LENGTH"), "OLLAMA_CONTEXT_LENGTH"
    else:
        num_ctx = default_num_ctx(gpu_total_bytes, s.gpu_overhead)
        source = f"default for {human_gib(sum(t - s.gpu_overhead for t in gpu_total_bytes))} GiB of VRAM"
    num_ctx = max(num_ctx, 4)
    if facts.vision:
        num_ctx = max(num_ctx, 2048)
    if facts.context_length and num_ctx > facts.context_length:
        notes.append(f"num_ctx {num_ctx} cut to the model's context_length {facts.context_length}")
        num_ctx = facts.context_length
    num_parallel = max(_positive(s.num_parallel, "OLLAMA_NUM_PARALLEL"), 1)
    if facts.family in NO_PARALLEL_FAMILIES:
        if num_parallel != 1:
            notes.append(f"{facts.family}: Ollama forces num_parallel 1 (sched.go load)")
        num_parallel = 1
    kv_type = str(s.kv_cache_type or "").strip().lower()
    if kv_type:
        L.cache_type(kv_type, "OLLAMA_KV_CACHE_TYPE")
    env_fa = None if s.flash_attention is None else str(int(s.flash_attention))
    fa = flash_attn_flag(env_fa, fa_supported)
    effective_ctx = num_ctx * num_parallel
    predicted = predict_server_vram(file_bytes, facts.block_count, facts.head_count_kv_min,
                                    facts.embedding_length, facts.head_count_max, effective_ctx)  # fmt: skip
    available = sum(gpu_total_bytes)  # availableMemoryForLoad: Σ FreeMemory (no overhead subtracted)
    if s.num_batch is not None:
        batch, auto = _positive(s.num_batch, "num_batch"), False
    else:
        smallest = min(gpu_total_bytes, default=0)
        batch, auto = automatic_batch(effective_ctx, predicted, available, fa, cuda, smallest), True
    if not facts.estimate_exact:
        notes.append(
            "PredictServerVRAM from a config of a hybrid model: its GGUF's per-layer head counts are not "
            "known here (give the GGUF for Ollama's exact estimate; it also steers num_batch)"
        )
    if auto:
        notes.append(f"num_batch {batch} chosen by Ollama assuming empty GPUs (free memory = total)")
    return Launch(num_ctx, source, num_parallel, kv_type, fa, batch, auto, predicted, tuple(notes))


def human_gib(b: int) -> str:
    return f"{b / GIB:.2f}"


# ------------------------------------------------------------------------- the whole answer


@dataclass(frozen=True)
class Answer:
    launch: Launch
    memory: L.Memory
    plan: Any  # kvcalc.deploy.llamacpp_plan.Plan
    settings: Settings
    vision: bool = False
    notes: tuple[str, ...] = ()

    def ps(self) -> dict[str, Any]:
        """What ``ollama ps`` would show. Exact: CONTEXT, and PROCESSOR "100% GPU" when every layer is
        offloaded (MemorySize then reports all of it as VRAM). SIZE needs llama-server's compute
        buffers, which kvcalc does not size: it is given as a lower bound (model + KV buffers)."""
        p = self.plan
        full = p.n_gpu_layers > p.n_layer
        gpu = sum(p.gpu_bytes)
        lower = gpu if full else gpu + p.cpu_bytes
        proc = "100% GPU" if full else "100% CPU" if p.n_gpu_layers == 0 and not gpu else "not modelled"
        if self.vision:
            proc = "not modelled"
        return {
            "context": self.launch.num_ctx,
            "processor": proc,
            "processor_without_compute": processor(lower, gpu),
            "size_at_least_bytes": lower,
            "gpu_at_least_bytes": gpu,
            "size_at_least": human_bytes(lower),
            "size_exact": False,
            "placement": "kvcalc's llama.cpp --fit approximation (1024 MiB kept free per GPU)",
        }

    def as_dict(self) -> dict[str, Any]:
        la = self.launch
        return {
            "release": RELEASE,
            "llama_cpp": f"{LLAMA_CPP_PIN} (KV arithmetic: kvcalc's {L.BUILD})",
            "env": self.settings.env(),
            "num_ctx": la.num_ctx,
            "num_ctx_source": la.num_ctx_source,
            "num_parallel": la.num_parallel,
            "n_ctx": la.n_ctx,
            "kv_cache_type": la.kv_cache_type or "f16",
            "flash_attn": la.flash_attn,
            "num_batch": la.num_batch,
            "num_batch_auto": la.num_batch_auto,
            "llama_server_args": la.argv(),
            "kv_bytes": self.memory.bytes,
            "kv_log": self.memory.log(),
            "ollama_predicted_vram_bytes": la.predicted_vram,
            "ps": self.ps(),
            "plan": self.plan.as_dict(),
            "notes": [*la.notes, *self.notes],
        }


def answer(
    model: Model | None,
    machine: Any,
    settings: Settings,
    *,
    quant: str | None = None,
    gguf: GGUF | None = None,
    file_bytes: int | None = None,
    n_gpu_layers: int | None = None,
    cuda: bool | None = None,
) -> Answer:
    """Ollama's launch on ``machine`` (kvcalc.deploy.llamacpp_plan.Machine), llama.cpp's KV for it and
    llama.cpp's layer placement. ``file_bytes``: the GGUF file's size (default: the GGUF header's data
    end, or the config estimate of the weights)."""
    from kvcalc.deploy import llamacpp_plan as P

    if gguf is not None:
        facts = facts_of_gguf(gguf)
        weights = P.weights_from_gguf(gguf)
        size = file_bytes or gguf.data_offset + max((t.offset + t.nbytes for t in gguf.tensors), default=0)
    elif model is not None and quant:
        facts = facts_of_config(model)
        weights = P.weights_from_config(model, quant)
        size = file_bytes or weights.embeddings + sum(weights.layers) + sum(weights.experts) + weights.output
    else:
        raise KVCalcError("quant: give --quant (e.g. Q4_K_M) with a config, or a GGUF file")
    la = launch(facts, settings, tuple(machine.gpu_bytes), file_bytes=size,
                cuda=(not machine.unified) if cuda is None else cuda)  # fmt: skip
    ls = la.llama_settings()
    try:
        mem = L.memory(gguf if gguf is not None else model, ls)  # type: ignore[arg-type]
    except KVCalcError as exc:
        raise KVCalcError(f"OLLAMA_KV_CACHE_TYPE: llama-server would refuse to start: {exc}") from None
    pl = P.plan(model, machine, ls, quant=quant, gguf=gguf, n_gpu_layers=n_gpu_layers)
    notes = []
    if file_bytes is None:
        what = "the GGUF header's data end" if gguf is not None else "the weights estimate"
        notes.append(f"PredictServerVRAM's file size taken as {what} ({size:,} bytes)")
    if facts.vision:
        notes.append("vision model: Ollama's LLAMA_ARG_FIT_TARGET = projector memory + 1 GiB (not modelled)")
    return Answer(la, mem, pl, settings, facts.vision, tuple(notes))
