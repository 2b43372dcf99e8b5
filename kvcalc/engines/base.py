"""What every engine shares: the validated question (:class:`Request`), element formats, TP checks.

An engine is one module of :mod:`kvcalc.engines` with

* ``NAME`` — the name users pass as ``engine=`` / ``--engine``;
* ``OPTIONS`` — the engine's own settings and their defaults (e.g. vLLM's ``block_size``);
* ``check_options(options)`` (optional) — validate the engine's options wherever they are passed;
* ``check(model, req)`` — raise :class:`KVCalcError` for a question the engine refuses;
* ``layer_bytes(model, req)`` — bytes per decoder layer held on one rank for ``req.batch_size``
  sequences of ``req.seq_len`` tokens, as that engine allocates them.

Registering the module in :data:`kvcalc.engines.ENGINES` is all a new engine needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kvcalc.core.dtypes import FP32, get_dtype
from kvcalc.core.facts import query_heads
from kvcalc.core.fields import LIMITS, check_int
from kvcalc.core.layers import LayerSpec, Precision, _Attention
from kvcalc.core.model import Model
from kvcalc.errors import KVCalcError


@dataclass(frozen=True)
class Request:
    """Validated arguments of one cache-size question; ``options`` holds the engine's own settings
    (every key of its ``OPTIONS``, defaults filled in)."""

    seq_len: int
    batch_size: int
    kv_dtype: str
    engine: str
    tensor_parallel_size: int
    options: Mapping[str, Any] = field(default_factory=dict)


def kv_dtype_name(model: Model, kv_dtype: object) -> str:
    """The cache dtype's canonical name; ``"auto"`` is the model's dtype."""
    if isinstance(kv_dtype, str) and kv_dtype.strip().lower() == "auto":
        kv_dtype = model.dtype
    return get_dtype(kv_dtype).name


def request(model: Model, seq_len: object, engine: str, options: Mapping[str, Any], **kw: object) -> Request:
    """Check the common arguments (``seq_len``, ``batch_size``, ``kv_dtype``, ``tensor_parallel_size``)."""
    return Request(
        seq_len=check_int(seq_len, "seq_len", minimum=0, maximum=LIMITS["tokens"]),
        batch_size=check_int(kw["batch_size"], "batch_size", maximum=1 << 24),
        kv_dtype=kv_dtype_name(model, kw["kv_dtype"]),
        engine=engine,
        tensor_parallel_size=check_int(kw["tensor_parallel_size"], "tensor_parallel_size", maximum=4096),
        options=dict(options),
    )


def check_query_heads_split(model: Model, tp: int, why: str = "") -> None:
    """Tensor parallelism shards the query heads: vLLM's and SGLang's QKVParallelLinear
    (model_executor/layers/linear.py, layers/linear.py) divide total_num_heads by tp and fail to
    build the model otherwise. The heads are read under every config name (core.facts.query_heads:
    num_attention_heads, n_head, num_heads, …); ``why`` is added to the message."""
    heads = query_heads(model)
    if tp > 1 and heads is not None and heads % tp:
        reason = f"; {why}" if why else ""
        raise KVCalcError(f"tensor_parallel_size: {tp} does not divide num_attention_heads {heads}{reason}")


def check_kv_heads_split(model: Model, tp: int) -> None:
    """Tensor parallelism needs tp to divide the KV heads, or the heads to divide tp (then they are
    replicated, one per rank): vLLM's and SGLang's rule for attention layers."""
    if tp == 1:
        return
    for layer in model.layers:
        for leaf in layer.leaves():
            if isinstance(leaf, _Attention) and leaf.kv_heads > tp and leaf.kv_heads % tp:
                raise KVCalcError(
                    f"tensor_parallel_size: {tp} does not divide num_key_value_heads {leaf.kv_heads}"
                )


def serving_precision(model: Model, req: Request) -> Precision:
    """K/V in the cache dtype, conv/linear states in the model dtype, recurrent ssm state in fp32."""
    return Precision(kv=get_dtype(req.kv_dtype), state=get_dtype(model.dtype), ssm=FP32)


def leaves(model: Model) -> list[LayerSpec]:
    """Every elementary cache spec of the model, layer by layer."""
    return [leaf for layer in model.layers for leaf in layer.leaves()]
