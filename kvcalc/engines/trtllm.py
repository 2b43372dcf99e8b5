"""TensorRT-LLM (PyTorch backend) KV cache manager over kvcalc's layer specs.

Read from NVIDIA/TensorRT-LLM, the 1.2 release line (PyPI's newest release is 1.2.1):

- ``cpp/tensorrt_llm/batch_manager/kvCacheManager.cpp`` at b35ac1b6 (``version.py`` there: 1.2.0rc2):
  ``WindowBlockManager`` pools, ``KVCacheManager::addSequence``, ``WindowBlockManager::adjustBlocksIfNeeded``
  / ``detachFrontBlock``, ``KVCacheManager::allocatePools``.
- ``tensorrt_llm/_torch/pyexecutor/resource_manager.py`` at 001541ba: ``KVCacheManager.__init__``,
  ``get_cache_size_per_token``, ``get_cache_bytes_per_token``, ``calculate_max_num_blocks``,
  ``adjust_window_sizes_for_vswa``, ``calculate_max_num_blocks_for_vswa``,
  ``_validate_and_adjust_attention_windows``, ``get_pp_layers``.
- ``tensorrt_llm/_torch/pyexecutor/_util.py`` of the same line: ``KvCacheCreator._cal_max_memory``,
  ``configure_kv_cache_capacity``, ``_create_kv_cache_manager``.
- ``tensorrt_llm/mapping.py``: ``Mapping.pp_layers`` (``torch.tensor_split``: the first
  ``layers % pp`` stages get one layer more).

This is the default "V1" manager (``use_kv_cache_manager_v2`` off). What kvcalc does not model raises
:class:`KVCalcError`: recurrent-state hybrids (TRT-LLM's ``MambaHybridCacheManager``), the DSA indexer
K cache, cross attention, layers sharing another layer's K/V, per-layer head sizes (``KVCacheManagerV2``),
beam search, speculative decoding's extra KV tokens, host offload (secondary pool).

The numbers TRT-LLM measures at start-up (free GPU memory after its profiling run) are inputs here.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass

from kvcalc.core.dtypes import CacheDType, get_dtype
from kvcalc.core.fields import LIMITS, check_int
from kvcalc.core.layers import MLA, ChunkedAttention, FullAttention, LayerSpec, SlidingWindow, cdiv
from kvcalc.core.model import Model
from kvcalc.errors import KVCalcError

#: ``KvCacheConfig.tokens_per_block`` default (llm_args.py).
TOKENS_PER_BLOCK = 32
#: ``KvCacheConfig.free_gpu_memory_fraction`` default (llm_args.py); a fraction of FREE memory.
FREE_GPU_MEMORY_FRACTION = 0.9
#: KV cache element formats the V1 manager accepts (``get_cache_bytes_per_token``: FP8, HALF, BF16,
#: FLOAT, NVFP4). ``auto`` is the model dtype.
KV_CACHE_DTYPES = ("auto", "bf16", "fp16", "fp32", "fp8", "nvfp4")
#: NVFP4: one FP8 scale per 16 elements (``createBlockScalePools(kQuantBlockSizeNVFP4 = 16)``).
NVFP4_BLOCK = 16

PHASES = ("context", "generation")


# --- 1. which layers the manager holds, and how wide they are --------------------------------------


@dataclass(frozen=True)
class CacheLayer:
    """One attention layer as ``KVCacheManager`` sees it: ``kv_factor`` 2 (K and V) or 1 (MLA,
    ``CacheType.SELFKONLY``), ``kv_heads`` before TP, ``head_dim`` (``size_per_head``)."""

    index: int
    kind: str
    kv_heads: int
    head_dim: int
    kv_factor: int
    sliding_window: int | None


def cache_layers(model: Model) -> tuple[CacheLayer, ...]:
    """Every layer of ``model`` as a TRT-LLM KV cache layer, or :class:`KVCalcError`.

    ``_create_kv_cache_manager``: MLA models get ``num_kv_heads=1``, ``head_dim = kv_lora_rank +
    qk_rope_head_dim`` and ``SELFKONLY`` (kv_factor 1); other models one ``head_dim`` for K and V.
    Sliding and chunked layers hold K/V like full attention unless ``max_attention_window`` says
    otherwise (the KV cache manager keeps ``max_attention_window`` tokens, default ``max_seq_len``).
    """
    out = []
    for i, layer in enumerate(model.layers):
        leaves = layer.leaves()
        if len(leaves) != 1:
            raise KVCalcError(
                f"engine: TensorRT-LLM layer {i} holds several caches ({layer.kind}); not modeled"
            )
        out.append(_cache_layer(i, leaves[0]))
    if not out:
        raise KVCalcError("engine: the model has no layers")
    if len({x.kv_factor for x in out}) > 1:
        raise KVCalcError(
            "engine: TensorRT-LLM has one cache type per manager; MLA mixed with MHA is not modeled"
        )
    if len({x.head_dim for x in out}) > 1:
        raise KVCalcError(
            "engine: TensorRT-LLM's KVCacheManager has one head size for all layers; per-layer head sizes "
            "(KVCacheManagerV2) are not modeled"
        )
    return tuple(out)


def _cache_layer(i: int, leaf: LayerSpec) -> CacheLayer:
    if isinstance(leaf, MLA):
        if leaf.index_head_dim:
            raise KVCalcError(
                "engine: the TensorRT-LLM DSA indexer K cache (DeepSeek-V3.2, GLM-5) is not modeled"
            )
        return CacheLayer(i, leaf.kind, 1, leaf.kv_lora_rank + leaf.qk_rope_head_dim, 1, None)
    if isinstance(leaf, FullAttention | SlidingWindow | ChunkedAttention):
        if leaf.v_head_dim and leaf.v_head_dim != leaf.head_dim:
            raise KVCalcError(
                f"engine: layer {i} has v_head_dim {leaf.v_head_dim} != head_dim {leaf.head_dim}; "
                "TensorRT-LLM's KVCacheManager has one size_per_head for K and V"
            )
        window = leaf.window if isinstance(leaf, SlidingWindow) else None
        return CacheLayer(i, leaf.kind, leaf.kv_heads, leaf.head_dim, 2, window)
    if leaf.state:
        raise KVCalcError(
            f"engine: layer {i} is a {leaf.kind} state; TensorRT-LLM keeps recurrent states in its "
            "MambaHybridCacheManager, which kvcalc does not model"
        )
    raise KVCalcError(f"engine: TensorRT-LLM layer {i} of kind {leaf.kind!r} is not modeled by kvcalc")


# --- 2. element format ------------------------------------------------------------------------------


def cache_dtype(model: Model, name: str = "auto") -> CacheDType:
    """The KV cache dtype: ``auto`` is the model dtype (``_create_kv_cache_manager``:
    ``torch_dtype_to_str(model_engine.dtype)``) unless the checkpoint quantizes its KV cache."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key == "auto":
        quant = model.config.get("quantization_config")
        if isinstance(quant, MappingABC) and ({"kv_cache_quant_algo", "kv_cache_scheme"} & set(quant)):
            raise KVCalcError(
                "kv_cache_dtype: the checkpoint's quantization_config sets a KV cache format; "
                "give it explicitly"
            )
        return get_dtype(model.dtype, "kv_cache_dtype")
    dtype = get_dtype(key, "kv_cache_dtype")
    if dtype.name == "fp8_e4m3":
        dtype = get_dtype("fp8", "kv_cache_dtype")
    if dtype.name not in KV_CACHE_DTYPES:
        raise KVCalcError(
            f"kv_cache_dtype: TensorRT-LLM's KV cache takes {', '.join(KV_CACHE_DTYPES)}, not {dtype.name!r}"
        )
    return dtype


def elements_to_bytes(elements: int, dtype: CacheDType) -> int:
    """``get_size_in_bytes`` of a row of K/V elements, plus NVFP4's FP8 scale per 16 elements
    (``calculate_scaling_factor_size_bytes``, which asserts divisibility by 16)."""
    if dtype.name == "nvfp4":
        if elements % NVFP4_BLOCK:
            raise KVCalcError(f"kv_cache_dtype: NVFP4 needs a cache width divisible by 16, got {elements}")
        return elements // 2 + elements // NVFP4_BLOCK
    return elements * dtype.bits // 8


# --- 3. parallelism: heads per rank, layers per pipeline stage -------------------------------------


def kv_heads_per_rank(kv_heads: int, tp: int, enable_attention_dp: bool = False) -> int:
    """``KVCacheManager.__init__``: ``(num_kv_heads + tp - 1) // tp``; attention DP sets tp to 1
    (each rank holds every head of its own requests). Fewer heads than ranks: one, replicated."""
    tp = 1 if enable_attention_dp else tp
    return (kv_heads + tp - 1) // tp


def pp_layers(num_layers: int, pp: int, rank: int) -> list[int]:
    """``Mapping.pp_layers``: ``torch.tensor_split(arange(num_layers), pp)[rank]`` (the first
    ``num_layers % pp`` stages get one extra layer); ``get_pp_layers`` gives an empty stage layer 0."""
    base, extra = divmod(num_layers, pp)
    start = rank * base + min(rank, extra)
    layers = list(range(start, start + base + (1 if rank < extra else 0)))
    return layers or [0]


def _check_parallel(layers: Sequence[CacheLayer], tp: int, pp: int) -> None:
    if tp < 1 or pp < 1:
        raise KVCalcError("tensor_parallel_size: must be at least 1")
    for x in layers:
        if x.kv_factor == 2 and x.kv_heads > tp and x.kv_heads % tp:
            raise KVCalcError(f"tensor_parallel_size: {tp} does not divide num_key_value_heads {x.kv_heads}")
    if pp > len(layers):
        raise KVCalcError(f"pipeline_parallel_size: {pp} exceeds the model's {len(layers)} layers")


# --- 4. windows and pools ---------------------------------------------------------------------------


def model_attention_windows(model: Model, max_seq_len: int) -> list[int]:
    """The ``max_attention_window`` a user would pass for VSWA: each sliding layer's window, every
    other layer ``max_seq_len`` (TensorRT-LLM 1.2 does not set it from the HF config by itself)."""
    return [x.sliding_window or max_seq_len for x in cache_layers(model)]


@dataclass(frozen=True)
class Pool:
    """The blocks of one window size on one rank (``WindowBlockManager``): ``layers`` are global
    layer indices; ``bytes_per_token`` = Σ kv_factor·heads·head_dim elements in the cache dtype;
    one block holds ``tokens_per_block`` tokens of every layer in the pool."""

    window: int
    layers: tuple[int, ...]
    bytes_per_token: int
    tokens_per_block: int

    @property
    def block_bytes(self) -> int:
        """Bytes of one block: ``{numLayers, kvFactor, heads·sizePerHead·tokensPerBlock}``."""
        return self.bytes_per_token * self.tokens_per_block


@dataclass(frozen=True)
class Layout:
    """One pipeline stage's KV cache on one rank: its pools by window size (ascending)."""

    pools: tuple[Pool, ...]
    max_seq_len: int
    tokens_per_block: int
    pp_rank: int

    @property
    def bytes_per_token(self) -> int:
        """``get_cache_bytes_per_token``: every local layer, whatever its window."""
        return sum(p.bytes_per_token for p in self.pools)

    @property
    def is_vswa(self) -> bool:
        return len(self.pools) > 1


@dataclass(frozen=True)
class Config:
    """The TRT-LLM options kvcalc models (``KvCacheConfig``, ``Mapping``, ``max_seq_len``)."""

    kv_cache_dtype: CacheDType
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    enable_attention_dp: bool = False
    tokens_per_block: int = TOKENS_PER_BLOCK
    max_seq_len: int = 0
    max_attention_window: tuple[int, ...] | None = None


def make_config(
    model: Model,
    *,
    kv_cache_dtype: str = "auto",
    tensor_parallel_size: int = 1,
    pipeline_parallel_size: int = 1,
    enable_attention_dp: bool = False,
    tokens_per_block: int = TOKENS_PER_BLOCK,
    max_seq_len: int | None = None,
    max_attention_window: Sequence[int] | None = None,
) -> Config:
    """Validate the options; ``max_seq_len`` defaults to the model's ``max_position_embeddings``."""
    tokens_per_block = check_int(tokens_per_block, "tokens_per_block", maximum=1 << 20)
    tensor_parallel_size = check_int(tensor_parallel_size, "tensor_parallel_size", maximum=4096)
    pipeline_parallel_size = check_int(pipeline_parallel_size, "pipeline_parallel_size", maximum=4096)
    if not isinstance(enable_attention_dp, bool):
        raise KVCalcError(f"enable_attention_dp: expected true or false, got {enable_attention_dp!r}")
    if tokens_per_block < 2 or tokens_per_block & (tokens_per_block - 1):
        raise KVCalcError(f"tokens_per_block: must be a power of two greater than 1, got {tokens_per_block}")
    if max_seq_len is None:
        max_seq_len = model.max_position_embeddings
        if max_seq_len is None:
            raise KVCalcError("max_seq_len: the config has no max_position_embeddings; give max_seq_len")
    max_seq_len = check_int(max_seq_len, "max_seq_len", maximum=LIMITS["tokens"])
    windows = None
    if max_attention_window is not None:
        if isinstance(max_attention_window, str | bytes) or not isinstance(max_attention_window, Sequence):
            raise KVCalcError("max_attention_window: expected a list of window sizes")
        windows = tuple(
            check_int(w, "max_attention_window", maximum=LIMITS["tokens"]) for w in max_attention_window
        )
        if not windows:
            raise KVCalcError("max_attention_window: give one or more positive window sizes")
    return Config(
        kv_cache_dtype=cache_dtype(model, kv_cache_dtype),
        tensor_parallel_size=tensor_parallel_size,
        pipeline_parallel_size=pipeline_parallel_size,
        enable_attention_dp=enable_attention_dp,
        tokens_per_block=tokens_per_block,
        max_seq_len=max_seq_len,
        max_attention_window=windows,
    )


def attention_windows(cfg: Config) -> list[int]:
    """``KVCacheManager.__init__``: ``max_attention_window`` (default ``[max_seq_len]``), each window
    clamped to ``max_seq_len``; the list repeats over the local layers (``local_idx % len``)."""
    if cfg.max_attention_window is None:
        return [cfg.max_seq_len]
    return [min(cfg.max_seq_len, w) for w in cfg.max_attention_window]


def layout(model: Model, cfg: Config, pp_rank: int = 0) -> Layout:
    """The pools of pipeline stage ``pp_rank`` on one rank (``_get_window_size_to_layers``)."""
    layers = cache_layers(model)
    tp, pp = cfg.tensor_parallel_size, cfg.pipeline_parallel_size
    _check_parallel(layers, tp, pp)
    if not isinstance(pp_rank, int) or not 0 <= pp_rank < pp:
        raise KVCalcError(f"pp_rank: must be in [0, {pp}), got {pp_rank!r}")
    windows = attention_windows(cfg)
    by_window: dict[int, list[CacheLayer]] = {}
    for local, idx in enumerate(pp_layers(len(layers), pp, pp_rank)):
        by_window.setdefault(windows[local % len(windows)], []).append(layers[idx])
    pools = []
    for window in sorted(by_window):
        members = by_window[window]
        elements = sum(
            x.kv_factor * kv_heads_per_rank(x.kv_heads, tp, cfg.enable_attention_dp) * x.head_dim
            for x in members
        )
        pools.append(
            Pool(
                window,
                tuple(x.index for x in members),
                elements_to_bytes(elements, cfg.kv_cache_dtype),
                cfg.tokens_per_block,
            )
        )
    return Layout(tuple(pools), cfg.max_seq_len, cfg.tokens_per_block, pp_rank)


# --- 5. one request -----------------------------------------------------------------------------------


def request_blocks(pool: Pool, seq_len: int, max_seq_len: int, phase: str = "context") -> int:
    """Blocks one request of ``seq_len`` tokens holds in ``pool`` (beam width 1, no sink tokens).

    ``context``: ``KVCacheManager::addSequence`` allocates ``cdiv(min(L, maxTokenNum + temp window),
    tokens_per_block)`` blocks in every window, with ``maxTokenNum = max(window, max_seq_len)`` —
    sliding windows allocate linearly like full attention ("SWA allocates blocks linearly").
    ``generation``: after decoding to L tokens, ``adjustBlocksIfNeeded`` has detached the front
    blocks of a sliding pool while ``L − removed·tpb ≥ window + tpb``, i.e. ``(L − window) // tpb``
    of them once ``L ≥ window + tpb``.
    """
    if phase not in PHASES:
        raise KVCalcError(f"phase: choose one of {', '.join(PHASES)}, not {phase!r}")
    if seq_len > max_seq_len:
        raise KVCalcError(f"seq_len: {seq_len} exceeds max_seq_len {max_seq_len}")
    tpb = pool.tokens_per_block
    blocks = cdiv(seq_len, tpb)
    if phase == "generation" and pool.window < max_seq_len and seq_len >= pool.window + tpb:
        blocks -= (seq_len - pool.window) // tpb
    return blocks


def request_bytes(lay: Layout, seq_len: int, phase: str = "context") -> dict[int, int]:
    """Bytes one request's blocks occupy on one rank, per window."""
    return {p.window: request_blocks(p, seq_len, lay.max_seq_len, phase) * p.block_bytes for p in lay.pools}


def kv_cache_bytes(
    model: Model,
    seq_len: int,
    *,
    batch_size: int = 1,
    phase: str = "context",
    pp_rank: int = 0,
    **options: object,
) -> int:
    """Bytes ``batch_size`` requests of ``seq_len`` tokens occupy on one rank of stage ``pp_rank``
    (stage 0 holds the most layers); ``options`` are :func:`make_config`'s."""
    cfg = make_config(model, **options)  # type: ignore[arg-type]
    seq_len = check_int(seq_len, "seq_len", minimum=0, maximum=LIMITS["tokens"])
    batch_size = check_int(batch_size, "batch_size", maximum=1 << 24)
    return batch_size * sum(request_bytes(layout(model, cfg, pp_rank), seq_len, phase).values())


# --- 6. budget → capacity -----------------------------------------------------------------------------


def estimate_bytes_per_token(model: Model, cfg: Config, pp_rank: int = 0) -> int:
    """``KVCacheManager.get_cache_size_per_token`` (static), which ``KvCacheCreator`` divides the
    budget by: MLA ``(kv_lora_rank + qk_rope_head_dim)·layers`` (kv_factor 1); otherwise
    ``2·layers·(head_dim·num_kv_heads // tp)`` (tp = 1 under attention DP) — a floor, so it is smaller
    than the real per-token size when TP replicates KV heads. Bytes: ×1 for fp8, ``⌈m/2⌉ + ⌈m/16⌉``
    for nvfp4, ×2 otherwise (it assumes a 16-bit cache)."""
    layers = cache_layers(model)
    if len({x.kv_heads for x in layers}) > 1:
        raise KVCalcError("engine: TensorRT-LLM's estimate averages per-layer KV heads; not modeled")
    first = layers[0]
    local = len(pp_layers(len(layers), cfg.pipeline_parallel_size, pp_rank))
    if first.kv_factor == 1:
        per_token = local * first.head_dim
    else:
        tp = 1 if cfg.enable_attention_dp else cfg.tensor_parallel_size
        per_token = 2 * local * (first.head_dim * first.kv_heads // tp)
    name = cfg.kv_cache_dtype.name
    if name == "fp8":
        return per_token
    if name == "nvfp4":
        return cdiv(per_token, 2) + cdiv(per_token, 16)
    return per_token * 2


@dataclass(frozen=True)
class PoolCapacity:
    """One window's pool after sizing: primary blocks, the tokens they hold and their bytes."""

    window: int
    layers: tuple[int, ...]
    blocks: int
    tokens: int
    bytes: int
    block_bytes: int


@dataclass(frozen=True)
class Capacity:
    """What ``KvCacheCreator`` + ``KVCacheManager`` make of ``free_bytes`` on one rank.

    ``kv_cache_max_memory``: the creator's budget; ``max_tokens``: what it writes into
    ``kv_cache_config.max_tokens``; ``pools``: per window (the most-loaded stage); ``max_seq_len``:
    after ``_validate_and_adjust_attention_windows``.
    """

    free_bytes: int
    free_gpu_memory_fraction: float
    kv_cache_max_memory: int
    max_tokens: int
    estimate_bytes_per_token: int
    bytes_per_token: int
    pools: tuple[PoolCapacity, ...]
    max_seq_len: int
    max_attention_window: tuple[int, ...]
    pp_rank: int

    @property
    def blocks(self) -> int:
        return sum(p.blocks for p in self.pools)

    @property
    def pool_bytes(self) -> int:
        return sum(p.bytes for p in self.pools)


def creator_budget(
    free_bytes: int,
    estimate_per_token: int,
    *,
    free_gpu_memory_fraction: float = FREE_GPU_MEMORY_FRACTION,
    max_tokens: int | None = None,
    max_gpu_total_bytes: int = 0,
) -> tuple[int, int, int]:
    """``KvCacheCreator.configure_kv_cache_capacity`` → (budget, max_tokens, max_gpu_total_bytes).

    ``free_bytes`` = total − peak + the estimation KV cache it had allocated, i.e. the free memory
    after the profiling run with that temporary cache counted free (``_cal_max_memory``). The
    budget ``int(free·fraction)`` is cut to ``max_tokens·estimate`` when ``max_tokens`` is given; then
    ``max_tokens = budget // estimate``; only after that is the budget cut to ``max_gpu_total_bytes``,
    which therefore reaches the VSWA path but not ``max_tokens``.
    """
    if not 0 < free_gpu_memory_fraction < 1:
        raise KVCalcError(
            "free_gpu_memory_fraction: must be in (0, 1) (calculate_max_num_blocks asserts < 1)"
        )
    budget = int(free_bytes * free_gpu_memory_fraction)
    if max_tokens is not None:
        budget = min(budget, max_tokens * estimate_per_token)
    tokens = int(budget // estimate_per_token)
    if max_gpu_total_bytes > 0:
        budget = min(budget, max_gpu_total_bytes)
    return budget, tokens, budget


def _max_tokens_single(
    lay: Layout, tokens_cfg: int, fraction: float, free_at_creation: int | None, estimate: int
) -> int:
    """``KVCacheManager.calculate_max_num_blocks``: ``min(max_tokens, fraction·free_now / bytes_per_token)``.

    ``free_now`` is the free memory when the final manager is built. When the creator's estimate
    per token equals the real one and ``free_now`` ≥ the post-profiling free memory (weights and
    non-torch memory unchanged, activations released), the creator's ``max_tokens`` is the smaller
    one; otherwise kvcalc needs ``free_bytes_at_creation`` to be exact.
    """
    if free_at_creation is None:
        if estimate != lay.bytes_per_token:
            raise KVCalcError(
                f"free_bytes_at_creation: TensorRT-LLM's estimate ({estimate} B/token) differs from the real "
                f"size ({lay.bytes_per_token} B/token; KV heads replicated by TP, or a non-16-bit cache), so "
                "its second cap on fraction·free memory may bind; "
                "give the free bytes when the manager is built"
            )
        return tokens_cfg
    return min(tokens_cfg, int(fraction * free_at_creation / lay.bytes_per_token))


def adjust_window_sizes_for_vswa(
    windows: MappingABC[int, Sequence[int]],
    bytes_per_token_of: MappingABC[int, int],
    pool_memory_bytes: int,
    max_tokens: int | None,
) -> dict[int, int]:
    """``KVCacheManager.adjust_window_sizes_for_vswa``: clamp windows when one sequence does not fit.

    ``windows``: window → layers; ``bytes_per_token_of``: layer → bytes per token. Returns
    window → adjusted window. From the smallest window up, each step buys the tokens between the
    previous window and this one for every layer not yet finished, until memory runs out.
    """
    layers_all = {i for members in windows.values() for i in members}
    need = sum(w * sum(bytes_per_token_of[i] for i in windows[w]) for w in windows)
    if need < pool_memory_bytes:
        return {w: w for w in windows}
    remaining_mem, remaining = pool_memory_bytes, set(layers_all)
    accum, prev, out = 0, 0, {}
    for w in sorted(windows):
        if remaining_mem > 0 and remaining:
            per_token = sum(bytes_per_token_of[i] for i in remaining)
            step = min(remaining_mem // per_token, w - prev)
            remaining_mem -= step * per_token
            accum += step
            if accum < w:
                remaining_mem = 0
            if max_tokens is not None:
                accum = min(max_tokens, accum)
                if accum == max_tokens:
                    remaining_mem = 0
        out[w] = accum
        remaining -= set(windows[w])
        prev = w
    return out


def _layer_bytes_per_token(model: Model, cfg: Config) -> dict[int, int]:
    """Bytes per token of each layer on one rank (``calculate_cache_size_per_token`` of one layer)."""
    tp = cfg.tensor_parallel_size
    return {
        x.index: elements_to_bytes(
            x.kv_factor * kv_heads_per_rank(x.kv_heads, tp, cfg.enable_attention_dp) * x.head_dim,
            cfg.kv_cache_dtype,
        )
        for x in cache_layers(model)
    }


def vswa_primary_pool_bytes(free_now: int, fraction: float, max_gpu_total_bytes: int) -> int:
    """``calculate_max_num_blocks_for_vswa``: ``max_gpu_total_bytes`` when > 0, else
    ``int(free_now · free_gpu_memory_fraction)`` (free memory when the manager is built)."""
    return max_gpu_total_bytes if max_gpu_total_bytes > 0 else int(free_now * fraction)


def _vswa_pools(
    model: Model, cfg: Config, lay: Layout, pool_bytes: int, max_tokens: int
) -> list[PoolCapacity]:
    """``calculate_max_num_blocks_for_vswa``: ``max_gpu_total_bytes`` (set by the creator) split in
    EQUAL shares between the window sizes left after :func:`adjust_window_sizes_for_vswa`
    (``TRTLLM_WINDOW_SIZE_SHARES`` unset); blocks = int(share·bytes / bytes_per_token // tokens_per_block);
    ``max_tokens`` is ignored for VSWA."""
    if cfg.kv_cache_dtype.name == "nvfp4":
        raise KVCalcError(
            "kv_cache_dtype: NVFP4 with variable windows (its shares omit the scales) is not modeled"
        )
    if cfg.pipeline_parallel_size > 1:
        raise KVCalcError(
            "pipeline_parallel_size: variable sliding windows with pipeline parallelism are not modeled"
        )
    per_layer = _layer_bytes_per_token(model, cfg)
    adjusted = adjust_window_sizes_for_vswa(
        {p.window: p.layers for p in lay.pools}, per_layer, pool_bytes, max_tokens
    )
    merged: dict[int, list[int]] = {}
    for p in lay.pools:
        merged.setdefault(adjusted[p.window], []).extend(p.layers)
    share = 1.0 / len(merged)
    out = []
    for window in sorted(merged):
        members = tuple(merged[window])
        per_token = sum(per_layer[i] for i in members)
        blocks = int(pool_bytes * share / per_token // cfg.tokens_per_block)
        out.append(
            _pool_capacity(window, members, blocks, per_token * cfg.tokens_per_block, cfg.tokens_per_block)
        )
    return out


def _pool_capacity(
    window: int, layers: tuple[int, ...], blocks: int, block_bytes: int, tpb: int
) -> PoolCapacity:
    return PoolCapacity(window, layers, blocks, blocks * tpb, blocks * block_bytes, block_bytes)


def _single_pool_tokens(
    model: Model,
    cfg: Config,
    free_bytes: int,
    fraction: float,
    max_tokens: int | None,
    free_at_creation: int | None,
) -> int:
    """One window size: every stage runs the creator with its own estimate, then
    ``calculate_max_num_blocks``; ranks agree on the MIN (``allreduce(MIN)``)."""
    tokens = []
    for rank in range(cfg.pipeline_parallel_size):
        estimate = estimate_bytes_per_token(model, cfg, rank)
        _, tokens_cfg, _ = creator_budget(
            free_bytes, estimate, free_gpu_memory_fraction=fraction, max_tokens=max_tokens
        )
        tokens.append(
            _max_tokens_single(layout(model, cfg, rank), tokens_cfg, fraction, free_at_creation, estimate)
        )
    return min(tokens)


def capacity(
    model: Model,
    free_bytes: int,
    *,
    free_gpu_memory_fraction: float = FREE_GPU_MEMORY_FRACTION,
    max_tokens: int | None = None,
    max_gpu_total_bytes: int = 0,
    free_bytes_at_creation: int | None = None,
    **options: object,
) -> Capacity:
    """Max tokens, blocks and per-window pools for ``free_bytes`` free per rank after the profiling
    run (the same on every rank), reported for pipeline stage 0 (the one with the most layers)."""
    cfg = make_config(model, **options)  # type: ignore[arg-type]
    free_bytes = check_int(free_bytes, "free_bytes", minimum=0, maximum=1 << 50)
    if not isinstance(free_gpu_memory_fraction, int | float) or isinstance(free_gpu_memory_fraction, bool):
        raise KVCalcError(f"free_gpu_memory_fraction: expected a number, got {free_gpu_memory_fraction!r}")
    if max_tokens is not None:
        max_tokens = check_int(max_tokens, "max_tokens", maximum=LIMITS["tokens"])
    max_gpu_total_bytes = check_int(max_gpu_total_bytes, "max_gpu_total_bytes", minimum=0, maximum=1 << 50)
    if free_bytes_at_creation is not None:
        free_bytes_at_creation = check_int(
            free_bytes_at_creation, "free_bytes_at_creation", minimum=0, maximum=1 << 50
        )
    lay = layout(model, cfg, 0)
    estimate = estimate_bytes_per_token(model, cfg, 0)
    budget, tokens_cfg, total_bytes = creator_budget(
        free_bytes,
        estimate,
        free_gpu_memory_fraction=free_gpu_memory_fraction,
        max_tokens=max_tokens,
        max_gpu_total_bytes=max_gpu_total_bytes,
    )
    if lay.is_vswa:
        if total_bytes <= 0:
            raise KVCalcError("free_bytes: too small for one KV cache block")
        pool_bytes = vswa_primary_pool_bytes(0, free_gpu_memory_fraction, total_bytes)
        pools = _vswa_pools(model, cfg, lay, pool_bytes, tokens_cfg)
    else:
        tokens = _single_pool_tokens(
            model, cfg, free_bytes, free_gpu_memory_fraction, max_tokens, free_bytes_at_creation
        )
        p = lay.pools[0]
        pools = [
            _pool_capacity(
                p.window, p.layers, int(tokens // cfg.tokens_per_block), p.block_bytes, p.tokens_per_block
            )
        ]
    if any(p.blocks <= 0 for p in pools):
        raise KVCalcError(
            "free_bytes: too small for one KV cache block ('Impossible to fit in any sequence in kvCache')"
        )
    pools, max_seq_len = _validate_windows(pools, cfg.max_seq_len)
    per_layer_window = {i: p.window for p in pools for i in p.layers}
    return Capacity(
        free_bytes=free_bytes,
        free_gpu_memory_fraction=free_gpu_memory_fraction,
        kv_cache_max_memory=budget,
        max_tokens=tokens_cfg,
        estimate_bytes_per_token=estimate,
        bytes_per_token=lay.bytes_per_token,
        pools=tuple(pools),
        max_seq_len=max_seq_len,
        max_attention_window=tuple(per_layer_window[i] for i in sorted(per_layer_window)),
        pp_rank=0,
    )


def _validate_windows(pools: list[PoolCapacity], max_seq_len: int) -> tuple[list[PoolCapacity], int]:
    """``_validate_and_adjust_attention_windows`` (beam 1, no sink tokens): a window larger than
    its pool's ``blocks·tokens_per_block`` is cut to it, and then ``max_seq_len`` becomes the
    largest window."""
    if all(p.window <= p.tokens for p in pools):
        return pools, max_seq_len
    fixed = [
        _pool_capacity(min(p.window, p.tokens), p.layers, p.blocks, p.block_bytes, p.tokens // p.blocks)
        for p in pools
    ]
    return fixed, max(p.window for p in fixed)


# --- 7. kvcalc's engine interface (kvcalc.engines.base) -------------------------------------------------

NAME = "trtllm"
#: TensorRT-LLM's own settings with their defaults (``KvCacheConfig``, ``Mapping``, ``max_seq_len``)
#: and which moment of a request to count (``context``: after the prompt; ``generation``: after decoding).
OPTIONS: dict[str, object] = {
    "tokens_per_block": TOKENS_PER_BLOCK,
    "pipeline_parallel_size": 1,
    "pp_rank": 0,
    "enable_attention_dp": False,
    "max_seq_len": None,
    "max_attention_window": None,
    "phase": "context",
}


def check_options(options: MappingABC[str, object]) -> None:
    """Validate this engine's options where they are given (``phase`` here, the rest in :func:`check`)."""
    phase = options.get("phase", "context")
    if phase not in PHASES:
        raise KVCalcError(f"phase: choose one of {', '.join(PHASES)}, not {phase!r}")


def _config_of(model: Model, req: object) -> tuple[Config, MappingABC[str, object]]:
    opts = req.options  # type: ignore[attr-defined]
    cfg = make_config(
        model,
        kv_cache_dtype=req.kv_dtype,  # type: ignore[attr-defined]
        tensor_parallel_size=req.tensor_parallel_size,  # type: ignore[attr-defined]
        pipeline_parallel_size=opts["pipeline_parallel_size"],  # type: ignore[arg-type]
        enable_attention_dp=opts["enable_attention_dp"],  # type: ignore[arg-type]
        tokens_per_block=opts["tokens_per_block"],  # type: ignore[arg-type]
        max_seq_len=opts["max_seq_len"],  # type: ignore[arg-type]
        max_attention_window=opts["max_attention_window"],  # type: ignore[arg-type]
    )
    return cfg, opts


def check(model: Model, req: object) -> None:
    """Refuse what TensorRT-LLM's KVCacheManager does not hold or kvcalc does not model."""
    cfg, opts = _config_of(model, req)
    lay = layout(model, cfg, opts["pp_rank"])  # type: ignore[arg-type]
    if req.seq_len > lay.max_seq_len:  # type: ignore[attr-defined]
        raise KVCalcError(f"seq_len: {req.seq_len} exceeds max_seq_len {lay.max_seq_len}")  # type: ignore[attr-defined]


def layer_bytes(model: Model, req: object) -> list[int]:
    """Bytes each decoder layer's blocks hold on one rank of stage ``pp_rank`` (0 for layers of other
    stages): the blocks of its window pool × that layer's share of a block, × ``batch_size``."""
    cfg, opts = _config_of(model, req)
    lay = layout(model, cfg, opts["pp_rank"])  # type: ignore[arg-type]
    per_layer = _layer_bytes_per_token(model, cfg)
    out = [0] * len(model.layers)
    for pool in lay.pools:
        blocks = request_blocks(pool, req.seq_len, lay.max_seq_len, str(opts["phase"]))  # type: ignore[attr-defined]
        for i in pool.layers:
            out[i] = req.batch_size * blocks * per_layer[i] * cfg.tokens_per_block  # type: ignore[attr-defined]
    return out
