"""The ``ideal`` engine: the theory column (GUIDE §3) — exactly the bytes the model's attention reads.

Per layer, for b sequences of L tokens on one tensor-parallel rank (B = element bytes)::

    full attention          2·b·L·kv·hd·B            (kv heads per rank: max(1, kv // tp))
    sliding window W        2·b·min(L, W)·kv·hd·B
    chunked attention C     2·b·min(L, C)·kv·hd·B
    cross attention         2·b·S_enc·kv·hd·B        (S_enc: the encoder length, else L)
    MLA                     b·L·(kv_lora_rank + qk_rope_head_dim [+ index_head_dim])·B   (not split by TP)
    recurrent states        b·state bytes            (conv and linear states in the model dtype, ssm fp32)
"""

from __future__ import annotations

from typing import Any

from kvcalc.core.layers import (
    MLA,
    ChunkedAttention,
    CrossAttention,
    FullAttention,
    LayerSpec,
    NoCache,
    Parallel,
    Precision,
    SharedKV,
    SlidingWindow,
    _State,
)
from kvcalc.core.model import Model
from kvcalc.engines.base import Request, check_kv_heads_split, serving_precision
from kvcalc.errors import KVCalcError

NAME = "ideal"
OPTIONS: dict[str, Any] = {}


def check(model: Model, req: Request) -> None:
    """Any cache dtype; tensor parallelism splits KV heads as the serving engines do."""
    check_kv_heads_split(model, req.tensor_parallel_size)


def kept_tokens(leaf: LayerSpec, tokens: int) -> int:
    """Tokens of K/V the layer needs after ``tokens`` tokens (encoder positions for cross attention)."""
    match leaf:
        case SlidingWindow():
            return min(tokens, leaf.window)
        case ChunkedAttention():
            return min(tokens, leaf.chunk)
        case CrossAttention():
            return leaf.encoder_tokens(tokens)
        case FullAttention() | MLA():
            return tokens
    raise KVCalcError(f"engine ideal: no rule for layer kind {leaf.kind!r}")


def leaf_bytes(leaf: LayerSpec, tokens: int, batch: int, p: Precision, tp: int) -> int:
    """One elementary cache of one layer."""
    match leaf:
        case NoCache() | SharedKV():
            return 0
        case Parallel():
            return sum(leaf_bytes(x, tokens, batch, p, tp) for x in leaf.parts)
        case _State():
            return batch * leaf.state_bytes(p, tp) if tokens else 0
    return batch * kept_tokens(leaf, tokens) * leaf.token_bytes(p, tp)  # type: ignore[attr-defined]


def layer_bytes(model: Model, req: Request) -> list[int]:
    """Bytes per layer for ``req.batch_size`` sequences of ``req.seq_len`` tokens on one rank."""
    p = serving_precision(model, req)
    tp = req.tensor_parallel_size
    return [leaf_bytes(x, req.seq_len, req.batch_size, p, tp) for x in model.layers]


def growth_per_token(leaf: LayerSpec, p: Precision, tp: int) -> int:
    """Bytes one more token adds at long context: 0 for bounded layers (windows, chunks, states,
    fixed-length encoders)."""
    match leaf:
        case Parallel():
            return sum(growth_per_token(x, p, tp) for x in leaf.parts)
        case FullAttention() | MLA():
            return leaf.token_bytes(p, tp)
        case CrossAttention() if not leaf.encoder_len:
            return leaf.token_bytes(p, tp)
    return 0


def bytes_per_token(model: Model, req: Request) -> int:
    """Cache growth per token at long context, summed over layers."""
    p = serving_precision(model, req)
    return sum(growth_per_token(x, p, req.tensor_parallel_size) for x in model.layers)
