"""The ``transformers`` engine: what a transformers 5.x ``DynamicCache`` holds after one forward pass
of L tokens (``../shared/TRANSFORMERS_CACHE_RULES.md``, measured on the meta device; tests re-measure).

Differences from the ideal column, per layer (b sequences, one device, model dtype B)::

    sliding window W / chunk C   keeps min(L, W − 1) / min(L, C − 1) tokens (DynamicSlidingWindowLayer)
    Falcon (new architecture)    stores K/V expanded to ``hf_kv_heads`` heads
    recurrent states             conv states in the model dtype, ssm/recurrent states in fp32, whole kernel
"""

from __future__ import annotations

from typing import Any

from kvcalc.core.dtypes import FP32, MODEL_DTYPES, get_dtype
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
from kvcalc.engines.base import Request
from kvcalc.errors import KVCalcError

NAME = "transformers"
OPTIONS: dict[str, Any] = {}


def check(model: Model, req: Request) -> None:
    """transformers caches in the model dtype, on one device."""
    if req.kv_dtype not in MODEL_DTYPES:
        raise KVCalcError(
            f"kv_dtype: the transformers engine caches in the model dtype; use one of "
            f"{', '.join(MODEL_DTYPES)}, not {req.kv_dtype!r}"
        )
    if req.tensor_parallel_size != 1:
        raise KVCalcError("tensor_parallel_size: the transformers engine runs on one device; use 1")


def leaf_bytes(leaf: LayerSpec, tokens: int, batch: int, p: Precision) -> int:
    """One elementary cache of one layer, as DynamicCache stores it."""
    match leaf:
        case NoCache() | SharedKV():
            return 0
        case Parallel():
            return sum(leaf_bytes(x, tokens, batch, p) for x in leaf.parts)
        case _State():
            return batch * leaf.state_bytes(p) if tokens else 0
        case MLA():
            return batch * tokens * leaf.token_bytes(p)
        case SlidingWindow():
            kept = min(tokens, leaf.window - 1)
        case ChunkedAttention():
            kept = min(tokens, leaf.chunk - 1)
        case CrossAttention():
            kept = leaf.encoder_tokens(tokens)
        case FullAttention():
            kept = tokens
        case _:
            raise KVCalcError(f"engine transformers: no rule for layer kind {leaf.kind!r}")
    return batch * kept * leaf.stored_token_bytes(p)


def layer_bytes(model: Model, req: Request) -> list[int]:
    """Bytes per layer for ``req.batch_size`` sequences of ``req.seq_len`` tokens."""
    kv = get_dtype(req.kv_dtype)
    p = Precision(kv=kv, state=kv, ssm=FP32)
    return [leaf_bytes(x, req.seq_len, req.batch_size, p) for x in model.layers]
