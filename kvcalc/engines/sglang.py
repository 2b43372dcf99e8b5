"""SGLang 0.5.23's KV-cache allocator, over kvcalc's layer specs.

Read top to bottom, this is what ``python -m sglang.launch_server`` does with GPU memory, per rank:

1. server-argument defaults (``srt/arg_groups/memory_hook.py::handle_gpu_memory_settings``,
   ``srt/arg_groups/fields/schedule.py``, ``srt/arg_groups/overrides.py``);
2. the model facts SGLang reads (``srt/configs/model_config.py::ModelConfig``): dtype, context length,
   KV heads, attention architecture, and the cache dtype (``srt/mem_cache/kv_cache_dtype.py``);
3. the pools and their bytes per token ("cell"): ``srt/model_executor/pool_configurator.py``
   (``DefaultPoolConfigurator._compute_cell_size``, ``HybridSWAPoolConfigurator``) and, for
   Mamba / gated-delta-net hybrids, the state slots of ``srt/configs/mamba_utils.py``;
4. budget → pools: ``srt/mem_cache/kv_cache_configurator.py::KVCacheConfigurator``
   (``_profile_available_bytes``, ``_handle_max_mamba_cache``, ``resolve_max_num_reqs``);
5. the line the scheduler logs (``srt/managers/scheduler.py``);
6. the bytes one request of L tokens occupies.

Every number is per tensor-parallel rank. Whatever SGLang does that is not modelled here raises
:class:`KVCalcError` saying so (speculative decoding, DCP, hierarchical/unified memory, FP4 caches,
pure-SSM and encoder-decoder models, …). The rules and their sources: ``notes/sglang.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kvcalc.core.dtypes import get_dtype
from kvcalc.core.layers import (
    MLA,
    ChunkedAttention,
    FullAttention,
    GatedDeltaNet,
    LayerSpec,
    Mamba2,
    NoCache,
    SlidingWindow,
    _Attention,
    cdiv,
)
from kvcalc.core.model import Model
from kvcalc.engines.base import check_kv_heads_split, check_query_heads_split
from kvcalc.errors import KVCalcError

SGLANG_VERSION = "0.5.23"

GIB = 1 << 30
MIB = 1 << 20

# ---------------------------------------------------------------------------------------------
# 1. Server-argument defaults
# ---------------------------------------------------------------------------------------------

#: ``--swa-full-tokens-ratio`` fallback (fields/schedule.py).
SWA_FULL_TOKENS_RATIO = 0.8
#: ``--mamba-full-memory-ratio`` fallback (fields/schedule.py).
MAMBA_FULL_MEMORY_RATIO = 0.9
#: ``--max-prefill-tokens`` default (fields/schedule.py); only printed in the log line.
MAX_PREFILL_TOKENS = 16384
#: kv_cache_configurator.py: MAMBA_CACHE_SIZE_MAX_RUNNING_REQUESTS_RATIO.
MAMBA_SLOTS_BASE = 3
#: allocation_sizing.py::get_mamba_tracking_slots(extra_buffer=True, overlap=True): ping-pong slots.
MAMBA_TRACKING_SLOTS = 2
#: environ.py: SGLANG_SWA_EVICTION_INTERVAL.
SWA_EVICTION_INTERVAL = 128

#: ``--kv-cache-dtype`` values modelled → kvcalc dtype (``auto`` resolves per model).
KV_CACHE_DTYPES = {
    "auto": None,
    "fp8_e4m3": "fp8_e4m3",
    "fp8_e5m2": "fp8_e5m2",
    "bf16": "bf16",
    "bfloat16": "bf16",
}

#: GPU memory tiers of handle_gpu_memory_settings: (upper bound MiB, chunked_prefill_size,
#: cuda-graph decode max_bs at tp < 4, at tp ≥ 4).
_TIERS = (
    (20 * 1024, 2048, 8, 8),
    (35 * 1024, 4096, 48, 160),
    (60 * 1024, 4096, 32, 160),
    (90 * 1024, 8192, 256, 512),
    (160 * 1024, 8192, 256, 512),
    (float("inf"), 16384, 512, 512),
)

#: ``nvidia-smi --query-gpu=memory.total`` (MiB) of the catalog GPUs whose catalog figure is the CUDA
#: total (SGLang's get_nvgpu_memory_capacity reads nvidia-smi). H100 SXM: 81559 MiB reproduces the
#: 0.830 / 0.812 defaults SGLang picks at tp 1 / 8; the others are the figures the catalog's sources cite.
_SMI_MIB = {
    "h100": 81559, "h200": 143771, "a100-80gb": 81920, "a100-40gb": 40960, "l40s": 46068, "a40": 46068,
    "l4": 23034, "rtx-4090": 24564, "rtx-3090": 24576,
}  # fmt: skip


@dataclass(frozen=True)
class Options:
    """The SGLang server arguments kvcalc models (``None``: SGLang's default)."""

    tensor_parallel_size: int = 1
    kv_cache_dtype: str = "auto"
    page_size: int | None = None
    swa_full_tokens_ratio: float = SWA_FULL_TOKENS_RATIO
    mamba_full_memory_ratio: float = MAMBA_FULL_MEMORY_RATIO
    mamba_ssm_dtype: str | None = None
    max_running_requests: int | None = None
    context_length: int | None = None
    chunked_prefill_size: int | None = None
    disable_radix_cache: bool = False
    #: CUDA compute capability major (9 Hopper, 10 Blackwell): DSA's cache dtype and page size.
    sm_major: int = 9


def _check_options(o: Options) -> Options:
    """Refuse option values SGLang rejects or kvcalc does not model."""
    tp = o.tensor_parallel_size
    if isinstance(tp, bool) or not isinstance(tp, int) or tp < 1:
        raise KVCalcError(f"tensor_parallel_size: expected a positive integer, got {tp!r}")
    key = str(o.kv_cache_dtype).strip().lower()
    if key not in KV_CACHE_DTYPES:
        raise KVCalcError(
            f"kv_cache_dtype: SGLang value {o.kv_cache_dtype!r} is not modelled; use one of "
            f"{', '.join(KV_CACHE_DTYPES)}"
        )
    if o.page_size is not None and (
        isinstance(o.page_size, bool) or not isinstance(o.page_size, int) or o.page_size < 1
    ):
        raise KVCalcError(f"page_size: expected a positive integer, got {o.page_size!r}")
    for name in ("swa_full_tokens_ratio", "mamba_full_memory_ratio"):
        value = getattr(o, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise KVCalcError(f"{name}: expected a number in (0, 1], got {value!r}")
    if o.mamba_ssm_dtype not in (None, "float32", "bfloat16", "float16"):
        raise KVCalcError(
            f"mamba_ssm_dtype: expected float32, bfloat16 or float16, got {o.mamba_ssm_dtype!r}"
        )
    for name in ("max_running_requests", "context_length", "chunked_prefill_size"):
        value = getattr(o, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise KVCalcError(f"{name}: expected a positive integer, got {value!r}")
    return replace(o, kv_cache_dtype=key)


# ---------------------------------------------------------------------------------------------
# 2. Model facts SGLang reads (configs/model_config.py)
# ---------------------------------------------------------------------------------------------

#: Architectures in SGLang's attention-arch MLA branch of ModelConfig._derive_model_shapes that
#: kvcalc parses (MiniCPM3 and Kimi-Linear use other fields and are not listed).
MLA_ARCHS = frozenset({
    "DeepseekV2ForCausalLM", "DeepseekV3ForCausalLM", "DeepseekV32ForCausalLM",
    "Glm4MoeLiteForCausalLM", "GlmMoeDsaForCausalLM", "KimiK25ForConditionalGeneration",
    "MistralLarge3ForCausalLM", "LongcatFlashForCausalLM",
})  # fmt: skip

#: model_config.py::is_deepseek_dsa (with ``index_topk`` set): sparse attention with an indexer.
DSA_ARCHS = frozenset({
    "DeepseekV3ForCausalLM", "DeepseekV32ForCausalLM", "MistralLarge3ForCausalLM",
    "PixtralForConditionalGeneration", "GlmMoeDsaForCausalLM", "LongcatFlashForCausalLM",
    "Dots3NoteForCausalLM", "HYV4ForCausalLM",
})  # fmt: skip

#: model_config.py::is_hybrid_swa_model allowlist: these get a separate SWA pool. kvcalc models
#: the ones whose layer_types it reads (SWA_SINK_ARCHS: gpt-oss); the others are refused.
HYBRID_SWA_MODELLED = frozenset({"GptOssForCausalLM"})
HYBRID_SWA_OTHERS = frozenset({
    "BeamForCausalLM", "Llama4ForConditionalGeneration", "DeepseekV4ForCausalLM",
    "GraniteSWAForCausalLM", "GraniteMoeSWAForCausalLM", "IQuestQ1ForCausalLM", "MiMoV2ForCausalLM",
    "MiMoV2FlashForCausalLM", "Step3p5ForCausalLM", "Step3p7ForConditionalGeneration",
    "Gemma4ForCausalLM", "Gemma4ForConditionalGeneration", "EmbeddingGemma2Model",
    "Gemma4UnifiedForConditionalGeneration", "DiffusionGemmaForBlockDiffusion", "LagunaForCausalLM",
    "MellumForCausalLM", "MuseGlimmerForCausalLM", "MuseGlimmerForConditionalGeneration",
    "InklingForConditionalGeneration", "UnlimitedOCRForCausalLM",
})  # fmt: skip

#: configs/hybrid_arch.py::hybrid_gdn_config / mamba2_config: models with a Mamba state pool
#: ("mambaish"); the ones kvcalc models, and whether overrides.py gives them the extra buffer
#: (_MAMBA_EXTRA_BUFFER_ARCHS: 2 ping-pong tracking slots per request, 5 slots in the cap).
MAMBAISH_ARCHS = {
    "Qwen3NextForCausalLM": True,
    "Qwen3_5ForConditionalGeneration": True,
    "Qwen3_5MoeForConditionalGeneration": True,
    "Qwen3_5ForCausalLM": True,
    "Qwen3_5MoeForCausalLM": True,
    "NemotronHForCausalLM": True,
}

#: Architectures SGLang 0.5.23 has no model class for (srt/models/*: EntryClass), or that kvcalc
#: does not model under SGLang, with the reason.
_PURE_SSM = "pure-SSM models (no KV pool; max_total_num_tokens = context length) are not modelled"
UNSUPPORTED = {
    "JambaForCausalLM": "SGLang 0.5.23 has no model class for JambaForCausalLM",
    "T5ForConditionalGeneration": "SGLang 0.5.23 has no model class for T5ForConditionalGeneration",
    "FalconForCausalLM": "SGLang 0.5.23 has no model class for FalconForCausalLM",
    "WhisperForConditionalGeneration": "encoder-decoder (Whisper's cross-attention buffers) is not modelled",
    "MambaForCausalLM": _PURE_SSM,
    "Mamba2ForCausalLM": _PURE_SSM,
    "FalconMambaForCausalLM": "pure-SSM models are not modelled",
}

#: model_config.py::is_multimodal_model, for the architectures of kvcalc's catalog: a vision model
#: gets the ViT mem_fraction_static factor and the VLM cache reservation (not modelled in plans).
MULTIMODAL_ARCHS = frozenset({
    "Qwen3_5ForConditionalGeneration", "Qwen3_5MoeForConditionalGeneration",
    "Llama4ForConditionalGeneration", "Gemma3ForConditionalGeneration", "Qwen2_5_VLForConditionalGeneration",
    "Qwen3VLForConditionalGeneration", "Qwen3VLMoeForConditionalGeneration",
    "Mistral3ForConditionalGeneration",
    "KimiK25ForConditionalGeneration", "PixtralForConditionalGeneration", "Gemma3nForConditionalGeneration",
})  # fmt: skip

#: utils/hf_transformers/common.py::CONTEXT_LENGTH_KEYS (first present wins), plus transformers'
#: attribute_map aliases SGLang sees through the config object (GPT-2 ``n_positions``).
_CONTEXT_KEYS = (
    "max_sequence_length",
    "seq_length",
    "max_seq_len",
    "model_max_length",
    "max_position_embeddings",
)
_CONTEXT_ALIASES = {"max_position_embeddings": ("n_positions",)}

_STR_DTYPE = {"float32": "fp32", "float": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16",
              "fp32": "fp32", "fp16": "fp16", "bf16": "bf16"}  # fmt: skip


def _text(model: Model) -> Mapping[str, Any]:
    return model.text_config


def model_dtype(model: Model) -> str:
    """ModelConfig.dtype with ``--dtype auto`` (model_config.py::_get_and_verify_dtype).

    The text config's ``dtype``/``torch_dtype``; missing or float32 → float16, except Gemma → bfloat16.
    """
    text = _text(model)
    raw = text.get("dtype") or text.get("torch_dtype")
    name = _STR_DTYPE.get(str(raw).lower()) if isinstance(raw, str) else None
    if name is None and raw is not None:
        raise KVCalcError(f"dtype: SGLang does not know the config dtype {raw!r}")
    if name in (None, "fp32"):
        model_type = str(text.get("model_type") or model.model_type or "")
        return "bf16" if model_type.startswith("gemma") else "fp16"
    return name


def context_len(model: Model, opts: Options) -> int:
    """ModelConfig.context_len (model_config.py::_derive_context_length, common.py::get_context_length).

    The first of CONTEXT_LENGTH_KEYS in the text config, times the rope scaling ``factor`` unless the
    scaling names ``original_max_position_embeddings`` or is ``llama3``; 2048 when none is present.
    ``--context-length`` may only lower it.
    """
    text = _text(model)
    scaling = text.get("rope_scaling") or text.get("rope_parameters")
    factor: float = 1
    if isinstance(scaling, Mapping) and scaling:
        factor = scaling.get("factor", 1)
        if "original_max_position_embeddings" in scaling or scaling.get("rope_type") == "llama3":
            factor = 1
    derived = 2048
    for key in _CONTEXT_KEYS:
        for name in (key, *_CONTEXT_ALIASES.get(key, ())):
            value = text.get(name)
            if value is not None:
                derived = int(factor * value)
                break
        else:
            continue
        break
    if opts.context_length is not None:
        if opts.context_length > derived:
            raise KVCalcError(
                f"context_length: {opts.context_length} exceeds the model's derived context length {derived} "
                "(SGLang refuses unless SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN=1)"
            )
        return opts.context_length
    return derived


def is_dsa(model: Model) -> bool:
    """model_config.py::is_deepseek_dsa: a DSA architecture whose config sets ``index_topk``."""
    return model.architecture in DSA_ARCHS and _text(model).get("index_topk") is not None


def kv_cache_dtype(model: Model, opts: Options) -> str:
    """The pool's element type (mem_cache/kv_cache_dtype.py::configure_kv_cache_dtype).

    ``auto`` is the model dtype, or fp8 when the checkpoint's quantization config sets
    ``kv_cache_quant_algo: FP8``. DSA models resolve ``auto`` to fp8_e4m3 on SM100+ and bfloat16
    below (overrides.py::_dsa_kv_cache_dtype_default).
    """
    want = KV_CACHE_DTYPES[opts.kv_cache_dtype]
    if want is not None:
        if is_dsa(model) and want not in ("bf16", "fp8_e4m3"):
            raise KVCalcError("kv_cache_dtype: SGLang's DeepSeek DSA supports only bfloat16 or fp8_e4m3")
        return want
    if is_dsa(model):
        return "fp8_e4m3" if opts.sm_major >= 10 else "bf16"
    quant = model.config.get("quantization_config")
    algo = quant.get("kv_cache_quant_algo") if isinstance(quant, Mapping) else None
    if isinstance(algo, str) and algo.upper() == "FP8":
        return "fp8_e4m3"
    return model_dtype(model)


def page_size(model: Model, opts: Options) -> int:
    """``--page-size``: 1 by default (overrides.py::_page_size_default), 64 for DSA models
    (model_overrides/deepseek_v2.py, index_kpool 1). On SM100 the default attention backends
    (trtllm_mha / trtllm_mla) change it: not modelled, pass page_size."""
    if opts.page_size is not None:
        return opts.page_size
    if opts.sm_major >= 10:
        raise KVCalcError(
            "page_size: on SM100+ GPUs SGLang's default attention backend (trtllm_mha / trtllm_mla) sets "
            "the page size; pass --page-size"
        )
    if is_dsa(model):
        return 64 * int(_text(model).get("index_kpool") or 1)
    return 1


def _check_tp_split(model: Model, tp: int) -> None:
    """QKVParallelLinear (layers/linear.py) divides the query heads by tp, and the KV heads by tp when
    tp is smaller (else one replicated head per rank): SGLang fails to build the model otherwise."""
    check_query_heads_split(model, tp)
    check_kv_heads_split(model, tp)
    for leaf in _leaves(model):
        if isinstance(leaf, _Attention) and leaf.kv_heads <= tp and tp % leaf.kv_heads:
            raise KVCalcError(
                f"tensor_parallel_size: {tp} is not a multiple of num_key_value_heads {leaf.kv_heads} "
                "(SGLang replicates each KV head over tp / heads ranks)"
            )


def _check_model(model: Model) -> None:
    arch = model.architecture
    if arch in UNSUPPORTED:
        raise KVCalcError(f"model: {UNSUPPORTED[arch]} ({arch})")
    if arch in HYBRID_SWA_OTHERS:
        raise KVCalcError(f"model: SGLang's hybrid SWA pools for {arch} are not modelled")
    if not model.verified:
        raise KVCalcError(f"model: kvcalc does not know the cache layout of {arch or model.model_type}")


# ---------------------------------------------------------------------------------------------
# 3. Pools and their cells (model_executor/pool_configurator.py)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pool:
    """One SGLang pool on one rank: ``cell_bytes`` per token (per state slot for ``mamba``)."""

    name: str
    layers: int
    cell_bytes: int


@dataclass(frozen=True)
class Layout:
    """Everything about a model's pools that does not depend on the memory budget.

    ``kind``: ``default`` (DefaultPoolConfigurator: one token pool), ``hybrid_swa``
    (HybridSWAPoolConfigurator: full + SWA pools) or ``mamba`` (one token pool for the full-attention
    layers plus a state pool). ``cell_size`` is the configurator's bytes per max_total_num_tokens
    token (a float for hybrid SWA: full + ratio·swa).
    """

    kind: str
    pools: tuple[Pool, ...]
    cell_size: float
    kv_cache_dtype: str
    page_size: int
    context_len: int
    tensor_parallel_size: int
    swa_full_tokens_ratio: float = SWA_FULL_TOKENS_RATIO
    sliding_window: int | None = None
    mamba_full_memory_ratio: float = MAMBA_FULL_MEMORY_RATIO
    mamba_slots_per_request: int = 0
    mamba_cap_ratio: int = 0
    mla: bool = False
    indexer_cell_bytes: int = 0
    ssm_dtype: str = "fp32"
    notes: tuple[str, ...] = field(default=())

    def pool(self, name: str) -> Pool:
        """The pool called ``name``."""
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def cell_bytes(self) -> dict[str, int]:
        """Bytes per token (per slot for ``mamba``) of each pool."""
        return {p.name: p.cell_bytes for p in self.pools}


def _leaves(model: Model) -> list[LayerSpec]:
    return [leaf for layer in model.layers for leaf in layer.leaves()]


def _attention_geometry(model: Model, leaves: list[LayerSpec]) -> tuple[int, int, int]:
    """(total KV heads, head_dim, v_head_dim) of the model: SGLang sizes every layer by these
    model-level numbers (get_total_num_kv_heads, head_dim, v_head_dim)."""
    shapes = {(x.kv_heads, x.head_dim, x._v_dim) for x in leaves if isinstance(x, _Attention)}
    if len(shapes) != 1:
        raise KVCalcError(
            f"model: attention layers differ in KV heads / head sizes {sorted(shapes)}; SGLang sizes every "
            "layer with one model-level geometry, which kvcalc does not model for this architecture"
        )
    return shapes.pop()


def _kv_heads_per_rank(total: int, tp: int) -> int:
    """ModelConfig.get_num_kv_heads: max(1, total // tp) (replicated when tp exceeds the heads)."""
    return max(1, total // tp)


def _mha_token_bytes(model: Model, leaves: list[LayerSpec], tp: int, elem: int) -> int:
    """One layer, one token: kv_heads_per_rank · (head_dim + v_head_dim) · element bytes."""
    kv, hd, vd = _attention_geometry(model, leaves)
    return _kv_heads_per_rank(kv, tp) * (hd + vd) * elem


#: DSATokenToKVPool (mem_cache/memory_pool.py): quant_block_size, index-K buffer of uint8 with one
#: fp32 scale per 128 elements; rope part stored in bf16.
DSA_QUANT_BLOCK = 128


def _mla_token_bytes(model: Model, spec: MLA, dtype: str) -> tuple[int, int]:
    """(latent bytes, indexer bytes) per token per layer (kv_cache_configurator.py::
    calculate_mla_kv_cache_dim; pool_configurator.py::_compute_dsa_indexer_cell_size).

    Latent: kv_lora_rank + qk_rope_head_dim elements of the cache dtype; DSA models in fp8_e4m3 use
    the scaled layout kv_lora_rank + kv_lora_rank/128·4 + qk_rope_head_dim·2 bytes (656 for
    DeepSeek-V3.2). Indexer (DSA only): index_head_dim + index_head_dim/128·4 bytes, whatever the dtype.
    """
    elem = _elem(dtype)
    dim = spec.kv_lora_rank + spec.qk_rope_head_dim
    latent = dim * elem
    indexer = 0
    if is_dsa(model):
        if dtype == "fp8_e4m3":
            if spec.kv_lora_rank % DSA_QUANT_BLOCK:
                raise KVCalcError(f"kv_lora_rank: {spec.kv_lora_rank} is not a multiple of {DSA_QUANT_BLOCK}")
            latent = (
                spec.kv_lora_rank + spec.kv_lora_rank // DSA_QUANT_BLOCK * 4 + spec.qk_rope_head_dim * 2
            ) * elem
        kpool = int(_text(model).get("index_kpool") or 1)
        ihd = spec.index_head_dim
        indexer = cdiv(ihd + ihd // DSA_QUANT_BLOCK * 4, kpool)
        if _dsa_skipped_layers(model):
            raise KVCalcError("model: DSA layers that share top-k indices (elided index-K) are not modelled")
    return latent, indexer


def _dsa_skipped_layers(model: Model) -> bool:
    """model_config.py::dsa_layer_skips_topk is false for every layer unless the config sets
    indexer_types / cli_factor / index_topk_pattern / index_topk_freq > 1."""
    text = _text(model)
    if text.get("indexer_types") is not None and "shared" in text["indexer_types"]:
        return True
    return (
        (text.get("cli_factor") or 1) > 1
        or text.get("index_topk_pattern") is not None
        or ((text.get("index_topk_freq") or 1) > 1)
    )


def _elem(dtype: str) -> int:
    """torch element size of the pool dtype."""
    size = get_dtype(dtype).plain_bytes
    if size is None:
        raise KVCalcError(f"kv_cache_dtype: {dtype} is not modelled for SGLang")
    return size


def _state_slot_bytes(model: Model, states: list[LayerSpec], tp: int, ssm_dtype: str) -> int:
    """Mamba2CacheParams.mamba_cache_per_req (configs/mamba_utils.py): per layer, the conv state
    (conv_dim/tp, kernel − 1) in bf16 (SGLANG_MAMBA_CONV_DTYPE) plus the temporal state
    (heads/tp, head_dim, state_size) in the ssm dtype, times the state layers.

    conv_dim = intermediate + 2·n_groups·state_size, n_groups raised to tp when tp does not divide
    it (extra_groups_for_head_shards). Gated DeltaNet maps to intermediate = nv·dv, n_groups = nk,
    heads = nv, head_dim = dv, state_size = dk (configs/qwen3_next.py::mamba2_cache_params).
    """
    ssm = _elem(ssm_dtype)
    conv_elem = 2
    total = 0
    for s in states:
        if isinstance(s, GatedDeltaNet):
            inter, groups, heads, hdim, dstate, kernel = (
                s.num_v_heads * s.v_head_dim,
                s.num_k_heads,
                s.num_v_heads,
                s.v_head_dim,
                s.k_head_dim,
                s.conv_kernel,
            )
        elif isinstance(s, Mamba2):
            inter = s.d_inner or s.n_heads * s.head_dim
            groups, heads, hdim, dstate, kernel = s.n_groups, s.n_heads, s.head_dim, s.d_state, s.d_conv
        else:
            raise KVCalcError(f"model: SGLang state pools for {s.kind} layers are not modelled")
        if groups % tp:
            groups += tp - groups
        conv_dim = inter + 2 * groups * dstate
        for name, value in (("conv_dim", conv_dim), ("mamba heads", heads)):
            if value % tp:
                raise KVCalcError(f"tensor_parallel_size: {tp} does not divide the {name} {value}")
        total += (conv_dim // tp) * (kernel - 1) * conv_elem + (heads // tp) * hdim * dstate * ssm
    return total


def _ssm_dtype(model: Model, opts: Options) -> str:
    """mamba_utils.py::mamba2_state_dtype: float32 unless the config (or --mamba-ssm-dtype) says."""
    name = opts.mamba_ssm_dtype or _text(model).get("mamba_ssm_dtype") or model.config.get("mamba_ssm_dtype")
    if name is None:
        return "fp32"
    if name not in ("float32", "bfloat16", "float16"):
        return "fp32"  # SGLang warns and keeps float32
    return _STR_DTYPE[name]


def layout(model: Model, opts: Options | None = None) -> Layout:
    """SGLang's pools for ``model`` under ``opts`` (create_memory_pool_configurator)."""
    o = _check_options(opts or Options())
    _check_model(model)
    tp = o.tensor_parallel_size
    _check_tp_split(model, tp)
    dtype = kv_cache_dtype(model, o)
    elem = _elem(dtype)
    page = page_size(model, o)
    ctx = context_len(model, o)
    leaves = _leaves(model)
    base = {"kv_cache_dtype": dtype, "page_size": page, "context_len": ctx, "tensor_parallel_size": tp}
    mla = [x for x in leaves if isinstance(x, MLA)]
    known = (FullAttention, SlidingWindow, ChunkedAttention, MLA, GatedDeltaNet, Mamba2, NoCache)
    odd = sorted({x.kind for x in leaves if not isinstance(x, known)})
    if odd:
        raise KVCalcError(f"model: SGLang pools for {', '.join(odd)} layers are not modelled")
    if model.architecture in MAMBAISH_ARCHS:
        return _mamba_layout(model, leaves, o, base)
    if mla:
        if model.architecture not in MLA_ARCHS:
            raise KVCalcError(f"model: SGLang's MLA branch does not list {model.architecture}")
        latent, indexer = _mla_token_bytes(model, mla[0], dtype)
        n = len(model.layers)
        if len(mla) != len(model.layers):
            raise KVCalcError("model: MLA models with non-MLA layers are not modelled")
        # One DSATokenToKVPool holds the latent and the indexer keys: one cell.
        cell = (latent + indexer) * n
        return Layout(
            "default", (Pool("full", n, cell),), cell, mla=True, indexer_cell_bytes=indexer * n, **base
        )
    if model.architecture in HYBRID_SWA_MODELLED:
        return _swa_layout(model, leaves, o, base, elem)
    # DefaultPoolConfigurator: every hidden layer gets a K and a V buffer (num_effective_layers);
    # sliding windows of architectures outside the hybrid-SWA allowlist are ignored.
    per_layer = _mha_token_bytes(model, leaves, tp, elem)
    n = len(model.layers)
    return Layout("default", (Pool("full", n, per_layer * n),), per_layer * n, **base)


def _swa_layout(model: Model, leaves: list[LayerSpec], o: Options, base: dict[str, Any], elem: int) -> Layout:
    """HybridSWAPoolConfigurator: full layers and SWA layers (layer_types) in two pools; the
    configurator's cell is full_cell + swa_full_tokens_ratio · swa_cell (a float)."""
    full = [x for x in model.layers if isinstance(x, FullAttention)]
    swa = [x for x in model.layers if isinstance(x, SlidingWindow)]
    if len(full) + len(swa) != len(model.layers) or not swa:
        raise KVCalcError("model: hybrid SWA model without the full/sliding layer_types SGLang reads")
    per_layer = _mha_token_bytes(model, leaves, o.tensor_parallel_size, elem)
    windows = {x.window for x in swa}
    full_cell, swa_cell = per_layer * len(full), per_layer * len(swa)
    cell = full_cell + o.swa_full_tokens_ratio * swa_cell if full else swa_cell
    pools = (Pool("full", len(full), full_cell), Pool("swa", len(swa), swa_cell))
    window = _text(model).get("sliding_window")
    window = int(window) if isinstance(window, int) else max(windows)
    return Layout("hybrid_swa", pools, cell, swa_full_tokens_ratio=o.swa_full_tokens_ratio,
                  sliding_window=window, **base)  # fmt: skip


def _mamba_layout(model: Model, leaves: list[LayerSpec], o: Options, base: dict[str, Any]) -> Layout:
    """Mambaish models: the token pool holds only the full-attention layers
    (mambaish.full_attention_layer_ids); the state pool one slot per Mamba/GDN state."""
    states = [x for x in leaves if isinstance(x, GatedDeltaNet | Mamba2)]
    attn = [x for x in model.layers if isinstance(x, FullAttention)]
    if len(states) + len(attn) + sum(isinstance(x, NoCache) for x in model.layers) != len(model.layers):
        raise KVCalcError("model: hybrid layers SGLang's mambaish config does not describe")
    tp = o.tensor_parallel_size
    per_layer = _mha_token_bytes(model, attn, tp, _elem(base["kv_cache_dtype"])) if attn else 0
    slot = _state_slot_bytes(model, states, tp, _ssm_dtype(model, o))
    extra = MAMBAISH_ARCHS[model.architecture] and not o.disable_radix_cache
    tracking = MAMBA_TRACKING_SLOTS if extra else 0
    # _calculate_mamba_ratio: radix off → 1; else 3 + tracking slots (extra_buffer, overlap on).
    cap_ratio = 1 if o.disable_radix_cache else MAMBA_SLOTS_BASE + tracking
    pools = (Pool("full", len(attn), per_layer * len(attn)), Pool("mamba", len(states), slot))
    return Layout("mamba", pools, per_layer * len(attn), mamba_full_memory_ratio=o.mamba_full_memory_ratio,
                  ssm_dtype=_ssm_dtype(model, o),
                  mamba_slots_per_request=1 + tracking, mamba_cap_ratio=cap_ratio, **base)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 4. Budget → pool sizes (mem_cache/kv_cache_configurator.py, pool_configurator.py)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolSizes:
    """What SGLang allocates from ``available_bytes`` (the rest memory after weights and slack).

    ``max_mamba_cache_size``: state slots (mamba layouts; the pool adds one padding slot);
    ``kv_bytes``: the bytes the token pools were sized from (after the state pool).
    """

    max_total_num_tokens: int
    full_tokens: int
    swa_tokens: int | None
    max_mamba_cache_size: int | None
    kv_bytes: int
    max_running_requests: int


def _mamba_split(lay: Layout, available_bytes: int) -> tuple[int, int]:
    """_handle_max_mamba_cache, in SGLang's own float GB arithmetic: slots K and the rest bytes.

    budget = rest·r/(1+r); K = int((budget_bytes − slot) // slot); rest −= (K+1)·slot.
    """
    slot = lay.pool("mamba").cell_bytes
    rest = available_bytes / (1 << 30)
    r = lay.mamba_full_memory_ratio
    budget_bytes = rest * r / (1 + r) * (1 << 30)
    slots = int((budget_bytes - 0 - slot) // slot)
    if slots <= 0:
        raise KVCalcError(
            f"available_bytes: not enough memory for the hybrid state cache (max_mamba_cache_size={slots})"
        )
    rest = rest - ((slots + 1) * slot + 0) / (1 << 30)
    return slots, int(rest * (1 << 30))


def _running_requests(lay: Layout, tokens: int, requested: int | None, slots: int | None) -> int:
    """KVCacheConfigurator.resolve_max_num_reqs: min(clamp(tokens/context·512, 2048, 4096),
    tokens // 2), or the requested value capped at tokens // 2; mamba: ≤ slots // cap ratio."""
    estimated = max(min(int(tokens / lay.context_len * 512), 4096), 2048)
    reqs = min(requested, tokens // 2) if requested is not None else min(estimated, tokens // 2)
    if slots is not None:
        reqs = min(reqs, slots // lay.mamba_cap_ratio)
        if reqs <= 0:
            raise KVCalcError("available_bytes: the hybrid state cache is too small to serve any request")
    return reqs


def pool_sizes(lay: Layout, available_bytes: int, *, max_running_requests: int | None = None) -> PoolSizes:
    """Token pools from ``available_bytes`` per rank (configurator.calculate_pool_sizes).

    default: (available // cell) // page · page. hybrid SWA: int(available // (full + ratio·swa)),
    full = that floored to pages, swa = int(full·ratio) floored to pages. mamba: the state pool
    first (_mamba_split), then the default rule on the rest.
    """
    if isinstance(available_bytes, bool) or not isinstance(available_bytes, int) or available_bytes < 0:
        raise KVCalcError(f"available_bytes: expected a non-negative integer, got {available_bytes!r}")
    page = lay.page_size
    slots = None
    budget = available_bytes
    if lay.kind == "mamba":
        slots, budget = _mamba_split(lay, available_bytes)
    swa = None
    if lay.kind == "hybrid_swa":
        tokens = int(budget // lay.cell_size)
        full = tokens // page * page
        swa = int(full * lay.swa_full_tokens_ratio) // page * page
        if lay.sliding_window is not None and lay.sliding_window + page >= swa:
            raise KVCalcError(
                f"available_bytes: SWA pool ({swa} tokens) cannot hold one request: the admission floor is "
                f"sliding_window_size ({lay.sliding_window}) + page_size ({page}); SGLang refuses to start"
            )
    else:
        if not lay.cell_size:
            raise KVCalcError("model: no KV cells (pure state model) — not modelled")
        full = int(budget // lay.cell_size) // page * page
    if full <= 0:
        raise KVCalcError("available_bytes: not enough memory; SGLang says 'increase --mem-fraction-static'")
    reqs = _running_requests(lay, full, max_running_requests, slots)
    return PoolSizes(full, full, swa, slots, budget, reqs)


# ---------------------------------------------------------------------------------------------
# 5. mem_fraction_static and the rest of a launch on a GPU (arg_groups/memory_hook.py)
# ---------------------------------------------------------------------------------------------


def gpu_memory_mib(key: str, memory_bytes: int, memory_source: str = "") -> float:
    """get_device_memory_capacity: nvidia-smi memory.total in MiB (the catalog's figure when that is
    what it holds, else the nvidia-smi figure of _SMI_MIB)."""
    if key in _SMI_MIB:
        return float(_SMI_MIB[key])
    if memory_source.startswith("nvidia-smi memory.total"):
        return memory_bytes / MIB
    raise KVCalcError(f"gpu: the nvidia-smi memory.total of {key} (what SGLang reads) is not known")


@dataclass(frozen=True)
class GpuDefaults:
    """handle_gpu_memory_settings' choices for one GPU size and tp."""

    gpu_mem_mib: float
    chunked_prefill_size: int
    cuda_graph_max_bs: int
    prefill_graph_sizes: int
    reserved_mib: float
    mem_fraction_static: float


def prefill_graph_sizes(max_bs: int) -> int:
    """len(cuda_graph_hook.py::generate_prefill_cuda_graph_batch_sizes(max_bs))."""
    sizes = (
        list(range(4, 33, 4)) + list(range(48, 257, 16)) + list(range(288, 513, 32))
        + list(range(576, 1025, 64)) + list(range(1280, 4097, 256)) + list(range(4608, max_bs + 1, 512))
    )  # fmt: skip
    return sum(1 for s in sizes if s <= max_bs)


def gpu_defaults(gpu_mem_mib: float, tp: int, *, mla: bool, chunked_prefill_size: int | None = None,
                 max_running_requests: int | None = None, model_path: str = "") -> GpuDefaults:  # fmt: skip
    """Default chunked_prefill_size, decode cuda-graph max_bs and mem_fraction_static.

    reserved = 512 + max(chunked, 2048)·1.5 + tp/8·1024 + graphs, floored at 10240 MiB above 60 GiB;
    graphs = decode max_bs·2 + (prefill graph sizes·8, or 1536 for MLA); the prefill graphs go up to
    chunked (MLA: at most 8192; a model path containing ``llama-2``: at most 4096);
    mem_fraction_static = round((gpu − reserved)/gpu, 3).
    """
    tier = next(t for t in _TIERS if gpu_mem_mib < t[0])
    _, chunk, bs_small, bs_large = tier
    chunked = chunked_prefill_size if chunked_prefill_size is not None else chunk
    max_bs = bs_small if tp < 4 else bs_large
    if max_running_requests is not None and max_bs > max_running_requests:
        max_bs = max_running_requests
    prefill_max = min(8192, chunked) if mla else chunked
    if "llama-2" in model_path.lower():
        prefill_max = min(prefill_max, 4096)
    n_prefill = prefill_graph_sizes(prefill_max)
    reserved = 512 + max(chunked, 2048) * 1.5 + tp * 1 / 8 * 1024
    reserved += max_bs * 2 + (1.5 * 1024 if mla else n_prefill * 8)
    if gpu_mem_mib > 60 * 1024:
        reserved = max(reserved, 10 * 1024)
    fraction = round((gpu_mem_mib - reserved) / gpu_mem_mib, 3)
    return GpuDefaults(gpu_mem_mib, chunked, max_bs, n_prefill, reserved, fraction)


def available_bytes(pre_load_free_bytes: int, weights_bytes: int, mem_fraction_static: float) -> int:
    """_profile_available_bytes: free after loading − pre-load free·(1 − mem_fraction_static), in GB
    floats, back to bytes. Free after loading is taken as pre-load free − weights (no other
    allocation before the pool)."""
    pre = pre_load_free_bytes / (1 << 30)
    free = (pre_load_free_bytes - weights_bytes) / (1 << 30)
    rest = free - pre * (1 - mem_fraction_static)
    return int(rest * (1 << 30))


# ---------------------------------------------------------------------------------------------
# 6. What the scheduler logs (managers/scheduler.py)
# ---------------------------------------------------------------------------------------------


def log_line(
    sizes: PoolSizes, lay: Layout, chunked_prefill_size: int, available_gpu_mem_gb: float | None
) -> str:
    """``max_total_num_tokens=…, chunked_prefill_size=…, max_prefill_tokens=…, max_running_requests=…,
    context_len=…, available_gpu_mem=… GB`` (available_gpu_mem is measured after start-up)."""
    mem = f"{available_gpu_mem_gb:.2f}" if available_gpu_mem_gb is not None else "?"
    return (
        f"max_total_num_tokens={sizes.max_total_num_tokens}, chunked_prefill_size={chunked_prefill_size}, "
        f"max_prefill_tokens={MAX_PREFILL_TOKENS}, max_running_requests={sizes.max_running_requests}, "
        f"context_len={lay.context_len}, available_gpu_mem={mem} GB"
    )


# ---------------------------------------------------------------------------------------------
# 7. One request of L tokens
# ---------------------------------------------------------------------------------------------


def request_pool_bytes(lay: Layout, seq_len: int) -> dict[str, int]:
    """Bytes one request of ``seq_len`` tokens occupies per rank, per pool.

    Token pools: whole pages, cdiv(L, page)·page cells. SWA pool: at most the tokens
    compute_swa_request_cap charges per running request (window + eviction interval + 2 pages).
    State pool: the working slot plus the ping-pong tracking slots (HybridReqToTokenPool.alloc).
    """
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 0:
        raise KVCalcError(f"seq_len: expected a non-negative integer, got {seq_len!r}")
    page = lay.page_size
    tokens = cdiv(seq_len, page) * page
    out = {}
    for p in lay.pools:
        if p.name == "mamba":
            out[p.name] = p.cell_bytes * lay.mamba_slots_per_request if seq_len else 0
        elif p.name == "swa":
            window = (lay.sliding_window or 0) + SWA_EVICTION_INTERVAL + 2 * page
            out[p.name] = min(tokens, window) * p.cell_bytes
        else:
            out[p.name] = tokens * p.cell_bytes
    return out


def request_bytes(model: Model, seq_len: int, opts: Options | None = None, *, batch_size: int = 1) -> int:
    """What ``kv_cache_bytes(model, L, engine="sglang")`` returns: request_pool_bytes summed, × batch."""
    return sum(request_pool_bytes(layout(model, opts), seq_len).values()) * batch_size


# ---------------------------------------------------------------------------------------------
# 8. The engine registry's interface (kvcalc.engines.base): kv_cache_bytes(..., engine="sglang")
# ---------------------------------------------------------------------------------------------

NAME = "sglang"
#: SGLang server arguments kv_cache_bytes / layer_bytes take (defaults: SGLang's).
OPTIONS: dict[str, object] = {
    "page_size": None,
    "swa_full_tokens_ratio": SWA_FULL_TOKENS_RATIO,
    "mamba_full_memory_ratio": MAMBA_FULL_MEMORY_RATIO,
    "mamba_ssm_dtype": None,
    "disable_radix_cache": False,
    "context_length": None,
}


def check_options(options: Mapping[str, object]) -> None:
    """Validate the SGLang options that are given (the others keep SGLang's defaults)."""
    given = {k: v for k, v in options.items() if k in OPTIONS}
    if given:
        _check_options(Options(**given))  # type: ignore[arg-type]


def _options_of(model: Model, req: Any) -> Options:
    """The request as SGLang server arguments; kvcalc's resolved cache dtype back to --kv-cache-dtype."""
    kv = req.kv_dtype
    if kv in ("fp8", "fp8_e4m3"):
        flag = "fp8_e4m3"
    elif kv in ("fp8_e5m2", "bf16"):
        flag = kv
    elif kv == model_dtype(model):
        flag = "auto"
    else:
        raise KVCalcError(
            f"kv_dtype: SGLang caches in {model_dtype(model)} (auto), bf16, fp8_e4m3 or fp8_e5m2, not {kv}"
        )
    return Options(tensor_parallel_size=req.tensor_parallel_size, kv_cache_dtype=flag, **req.options)


def check(model: Model, req: Any) -> None:
    """Refuse what SGLang refuses or kvcalc does not model, and lengths beyond the context length.

    (SGLang admits at most context_len − 1 tokens per request, tp_worker.py max_req_len; a length of
    exactly context_len is answered, as the pages it would take.)"""
    lay = layout(model, _options_of(model, req))
    if req.seq_len > lay.context_len:
        raise KVCalcError(f"seq_len: {req.seq_len} exceeds SGLang's context_len {lay.context_len}")


def _layer_cells(model: Model, lay: Layout) -> list[tuple[str, int]]:
    """Per decoder layer: the pool it lives in and its own bytes per token (per slot for ``mamba``)."""
    full = lay.pool("full")
    if lay.kind == "default":  # every hidden layer has a buffer of the same size
        return [("full", full.cell_bytes // full.layers)] * len(model.layers)
    out: list[tuple[str, int]] = []
    for layer in model.layers:
        if isinstance(layer, FullAttention):
            out.append(("full", full.cell_bytes // full.layers))
        elif isinstance(layer, SlidingWindow):
            swa = lay.pool("swa")
            out.append(("swa", swa.cell_bytes // swa.layers))
        elif isinstance(layer, GatedDeltaNet | Mamba2):
            out.append(("mamba", _state_slot_bytes(model, [layer], lay.tensor_parallel_size, lay.ssm_dtype)))
        else:
            out.append(("none", 0))
    return out


def layer_bytes(model: Model, req: Any) -> list[int]:
    """Bytes each decoder layer holds on one rank for ``batch_size`` requests of ``seq_len`` tokens
    (:func:`request_pool_bytes`, split over the layers of each pool)."""
    lay = layout(model, _options_of(model, req))
    page = lay.page_size
    tokens = cdiv(req.seq_len, page) * page
    swa_tokens = min(tokens, (lay.sliding_window or 0) + SWA_EVICTION_INTERVAL + 2 * page)
    units = {"full": tokens, "swa": swa_tokens, "mamba": lay.mamba_slots_per_request if req.seq_len else 0}
    return [units.get(pool, 0) * cell * req.batch_size for pool, cell in _layer_cells(model, lay)]
