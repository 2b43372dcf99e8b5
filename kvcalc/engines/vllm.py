"""The ``vllm`` engine: pages of vLLM's KV-cache manager (GUIDE §4; vLLM 0.33.0
``vllm/v1/kv_cache_interface.py``, ``v1/core/kv_cache_utils.py``, ``platforms/interface.py``).

One page holds ``block_size`` tokens (default 16) of one layer's cache. Page bytes, per rank::

    attention   block · max(1, kv // tp) · (hk + hv) · B      (+ per-token-head scales in the format)
    MLA         block · (kv_lora_rank + qk_rope_head_dim) · B  (one "head", not split by TP);
                sparse fp8 MLA is ``fp8_ds_mla`` (656 B/token) and the DSA indexer adds 132 B/token
    state       one request's conv (kernel − 1 columns, channels / tp) + ssm state

Pages one request of L tokens needs, with ``in_flight`` = 2 · max_num_batched_tokens (async scheduling)::

    full, chunked (hybrid manager off), MLA     cdiv(L, block)
    sliding window W                           cdiv(min(W − 1 + in_flight, L), block) + 1
    cross attention                            cdiv(S_enc, block)
    recurrent state                            3 pages with prefix caching (the default), else 1

In a hybrid (attention + state) model vLLM raises the attention block until one attention page holds
a whole state page, rounded up to 16 tokens, and pads the state page to the attention page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kvcalc.core.dtypes import FP32, get_dtype
from kvcalc.core.fields import check_int
from kvcalc.core.layers import (
    MLA,
    CrossAttention,
    GatedDeltaNet,
    LayerSpec,
    Precision,
    SlidingWindow,
    _Attention,
    _State,
    cdiv,
)
from kvcalc.core.model import Model
from kvcalc.engines.base import Request, check_kv_heads_split, leaves
from kvcalc.errors import KVCalcError

NAME = "vllm"
OPTIONS: dict[str, Any] = {"block_size": 16, "max_num_batched_tokens": 8192, "enable_prefix_caching": True}

#: vLLM's async scheduling keeps this many batches in flight (max_concurrent_batches).
CONCURRENT_BATCHES = 2
#: vLLM kernel block alignment used when it grows the attention block for hybrid models.
BLOCK_ALIGNMENT = 16
#: Gated delta net's prefix-caching checkpoint alignment (vLLM ``v1/attention/backends/gdn_attn.py``).
GDN_CHECKPOINT_ALIGNMENT = 64
#: Mamba pages vLLM reserves per layer per request, with prefix caching on / off.
STATE_PAGES = {True: 3, False: 1}


def check_options(options: Mapping[str, Any]) -> None:
    """Block size and batched tokens are positive integers (checked whichever engine is asked)."""
    if "block_size" in options:
        check_int(options["block_size"], "block_size", maximum=1 << 20)
    if "max_num_batched_tokens" in options:
        check_int(options["max_num_batched_tokens"], "max_num_batched_tokens")


#: Architectures kvcalc sizes for transformers that vLLM has no model class for (Zamba2 it has).
NO_VLLM_MODEL = {"zamba": "Zamba (v1)"}


def check(model: Model, req: Request) -> None:
    """TP must split the KV heads; architectures vLLM cannot run are refused."""
    if model.model_type in NO_VLLM_MODEL:
        raise KVCalcError(f"engine: vLLM has no {NO_VLLM_MODEL[model.model_type]} model")
    check_kv_heads_split(model, req.tensor_parallel_size)


def precision(model: Model, req: Request, leaf: LayerSpec | None = None) -> Precision:
    """K/V in the cache dtype; states in the model dtype, the ssm state in fp32 only where vLLM's
    model keeps it so (``vllm_ssm_fp32``: Nemotron-H, Qwen3.5)."""
    kv, state = get_dtype(req.kv_dtype), get_dtype(model.dtype)
    if isinstance(leaf, _State) and not leaf.vllm_ssm_fp32:
        return Precision(kv=kv, state=state, ssm=state)
    return Precision(kv=kv, state=state, ssm=FP32)


def mla_token_bytes(leaf: MLA, p: Precision) -> int:
    """vLLM's MLA bytes per token: the latent (``fp8_ds_mla`` for sparse fp8: fp8 latent, one fp32
    scale per 128 elements, bf16 rope part) plus the DSA indexer's fp8 keys and fp32 scale."""
    if leaf.index_head_dim and p.kv.bits == 8 and p.kv.is_float and not p.kv.row_scale_bytes:
        latent = leaf.kv_lora_rank + cdiv(leaf.kv_lora_rank, 128) * 4 + leaf.qk_rope_head_dim * 2
    else:
        latent = p.kv.row_bytes(leaf.kv_lora_rank + leaf.qk_rope_head_dim)
    indexer = leaf.index_head_dim + 4 if leaf.index_head_dim else 0
    return latent + indexer


def page_bytes(leaf: LayerSpec, block: int, p: Precision, tp: int) -> int:
    """One page of a growing cache: ``block`` tokens."""
    if isinstance(leaf, MLA):
        return block * mla_token_bytes(leaf, p)
    if isinstance(leaf, _Attention):
        return block * leaf.token_bytes(p, tp)
    raise KVCalcError(f"engine vllm: no page rule for layer kind {leaf.kind!r}")


def blocks(leaf: LayerSpec, tokens: int, block: int, in_flight: int) -> int:
    """Pages one request of ``tokens`` tokens needs."""
    if isinstance(leaf, SlidingWindow):
        return cdiv(min(leaf.window - 1 + in_flight, tokens), block) + 1
    if isinstance(leaf, CrossAttention):
        return cdiv(leaf.encoder_tokens(tokens), block)
    return cdiv(tokens, block)


def state_page_bytes(leaf: _State, p: Precision, tp: int) -> int:
    """One request's state: conv keeps kernel − 1 columns, channels split by TP."""
    return leaf.state_bytes(p, tp, conv_dropped=1)


@dataclass(frozen=True)
class VLLMPage:
    """One cache a layer holds under vLLM: bytes of one page and pages one request needs.

    ``block_size`` is the attention block size in force (vLLM raises it for hybrid models so one
    attention page holds a whole mamba state); ``kind`` is the layer spec's kind.
    """

    kind: str
    page_bytes: int
    pages: int
    block_size: int


@dataclass(frozen=True)
class _Cache:
    """One cache of one layer before the length is known: its page and, for a recurrent state, the
    fixed pages per request (``None``: pages grow with the length)."""

    leaf: LayerSpec
    page_bytes: int
    fixed_pages: int | None

    def pages(self, tokens: int, block: int, in_flight: int) -> int:
        if not tokens:
            return 0
        if self.fixed_pages is not None:
            return self.fixed_pages
        return blocks(self.leaf, tokens, block, in_flight)


def hybrid_block_size(req: Request, tok: int, state_page: int, states: Sequence[LayerSpec]) -> int:
    """``platforms/interface.py::_align_hybrid_block_size`` (GUIDE §4): kba = max(16, block_size); with
    prefix caching on (mamba_cache_mode "align") kba = lcm(kba, checkpoint alignment) — 64 for gated
    delta net (``v1/attention/backends/gdn_attn.py``), 1 for the other state kinds; then the smallest
    multiple of kba whose attention page holds one state page, rounded up to a multiple of 16."""
    kba = max(BLOCK_ALIGNMENT, req.options["block_size"])
    if req.options["enable_prefix_caching"] and any(isinstance(x, GatedDeltaNet) for x in states):
        kba = math.lcm(kba, GDN_CHECKPOINT_ALIGNMENT)
    size = kba * cdiv(state_page, kba * tok)
    return BLOCK_ALIGNMENT * cdiv(size, BLOCK_ALIGNMENT)


#: layout() results by (model identity, dtype, TP, options): the model is kept in the value, so its id
#: cannot be reused while cached. A context change then costs only the page counts.
_LAYOUTS: dict[tuple[Any, ...], tuple[Model, tuple[int, tuple[tuple[_Cache, ...], ...]]]] = {}
_MAX_LAYOUTS = 64


def layout(model: Model, req: Request) -> tuple[int, tuple[tuple[_Cache, ...], ...]]:
    """The attention block size in force and, per layer, its caches: everything about vLLM's pages
    that does not depend on the length (``req.seq_len`` and ``req.batch_size`` are not read), memoised."""
    key = (id(model), req.kv_dtype, req.tensor_parallel_size, tuple(sorted(req.options.items())))
    try:
        hit = _LAYOUTS.get(key)
    except TypeError:  # an option value that cannot be a key: computed, not kept
        return _layout(model, req)
    if hit is not None and hit[0] is model:
        return hit[1]
    if len(_LAYOUTS) >= _MAX_LAYOUTS:
        _LAYOUTS.clear()
    result = _layout(model, req)
    _LAYOUTS[key] = (model, result)
    return result


def _layout(model: Model, req: Request) -> tuple[int, tuple[tuple[_Cache, ...], ...]]:
    """:func:`layout`, computed (caches of a repeated layer spec worked out once)."""
    tp = req.tensor_parallel_size
    every = leaves(model)
    paged = [x for x in every if x.paged]
    states = [x for x in every if isinstance(x, _State)]
    block = req.options["block_size"]
    padded_state = 0
    if states and paged:
        tok = max(page_bytes(x, 1, precision(model, req, x), tp) for x in paged)
        state_page = max(state_page_bytes(x, precision(model, req, x), tp) for x in states)
        block = hybrid_block_size(req, tok, state_page, states)
        padded_state = block * tok
    n_state = STATE_PAGES[bool(req.options["enable_prefix_caching"])]
    by_spec: dict[LayerSpec, tuple[_Cache, ...]] = {}
    out = []
    for layer in model.layers:
        if layer not in by_spec:
            caches = []
            for leaf in layer.leaves():
                p = precision(model, req, leaf)
                if isinstance(leaf, _State):
                    caches.append(_Cache(leaf, padded_state or state_page_bytes(leaf, p, tp), n_state))
                elif leaf.paged:
                    caches.append(_Cache(leaf, page_bytes(leaf, block, p, tp), None))
            by_spec[layer] = tuple(caches)
        out.append(by_spec[layer])
    return block, tuple(out)


def in_flight(req: Request) -> int:
    """Tokens scheduled but not finished: max_concurrent_batches · max_num_batched_tokens."""
    return CONCURRENT_BATCHES * req.options["max_num_batched_tokens"]


def pages(model: Model, req: Request) -> list[tuple[VLLMPage, ...]]:
    """Per layer, the pages one request of ``req.seq_len`` tokens needs, one entry per cache."""
    block, caches = layout(model, req)
    n, flying = req.seq_len, in_flight(req)
    page = lambda c: VLLMPage(c.leaf.kind, c.page_bytes, c.pages(n, block, flying), block)  # noqa: E731
    return [tuple(map(page, x)) for x in caches]


def layer_bytes(model: Model, req: Request) -> list[int]:
    """Per layer: one request's pages × page bytes × batch."""
    return [sum(x.page_bytes * x.pages for x in layer) * req.batch_size for layer in pages(model, req)]


def layer_bytes_over(model: Model, req: Request, lengths: Sequence[int]) -> list[list[int]]:
    """:func:`layer_bytes` (batch 1) for many lengths, the layout worked out once."""
    block, caches = layout(model, req)
    flying = in_flight(req)
    return [[sum(c.page_bytes * c.pages(n, block, flying) for c in x) for x in caches] for n in lengths]
