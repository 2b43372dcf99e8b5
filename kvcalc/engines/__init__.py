"""Cache bytes of a whole model for a given length, batch, dtype and engine.

One module per engine turns the model's layer specs (:mod:`kvcalc.core.layers`, pure geometry) into
that engine's allocation; this package's functions validate the question and dispatch on ``engine=``.
Adding an engine is one new module (see :mod:`kvcalc.engines.base` for what it provides) and one entry
in :data:`ENGINE_MODULES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from kvcalc.core.fields import LIMITS, check_int
from kvcalc.core.model import Model, with_encoder_seq_len
from kvcalc.engines import ideal, llamacpp, sglang, transformers, trtllm, vllm
from kvcalc.engines.base import Request, request
from kvcalc.engines.vllm import VLLMPage
from kvcalc.errors import KVCalcError

__all__ = [
    "ENGINES",
    "ENGINE_MODULES",
    "VLLMPage",
    "breakdown",
    "kv_bytes_per_token",
    "kv_bytes_per_token_short",
    "kv_cache_bytes",
    "layer_bytes",
    "make_request",
    "vllm_layer_bytes_over",
    "vllm_layer_pages",
]

#: Engine name → module (each module: NAME, OPTIONS, check, layer_bytes).
ENGINE_MODULES: dict[str, ModuleType] = {
    m.NAME: m for m in (ideal, transformers, vllm, trtllm, sglang, llamacpp)
}
ENGINES = tuple(ENGINE_MODULES)
#: Every option some engine takes (an option of another engine is ignored, an unknown one refused).
ALL_OPTIONS = {k for m in ENGINE_MODULES.values() for k in m.OPTIONS}


def get_engine(engine: object) -> ModuleType:
    """The engine module called ``engine``."""
    module = ENGINE_MODULES.get(engine) if isinstance(engine, str) else None
    if module is None:
        raise KVCalcError(f"engine: unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return module


def make_request(
    model: Model,
    seq_len: object,
    *,
    batch_size: object = 1,
    kv_dtype: object = "bf16",
    engine: object = "ideal",
    tensor_parallel_size: object = 1,
    **options: Any,
) -> Request:
    """Validate a question for its engine: common arguments, then the engine's own options and checks."""
    if not isinstance(model, Model):
        raise KVCalcError(f"model: expected a kvcalc Model (use load_model), got {type(model).__name__}")
    module = get_engine(engine)
    unknown = sorted(set(options) - ALL_OPTIONS)
    if unknown:
        raise KVCalcError(f"{unknown[0]}: not an option of any engine ({', '.join(ENGINES)})")
    if options:  # every engine checks the options it takes (without options, each its defaults)
        for other in ENGINE_MODULES.values():
            if hasattr(other, "check_options"):
                other.check_options(options)
    own = {k: options.get(k, default) for k, default in module.OPTIONS.items()}
    req = request(
        model, seq_len, module.NAME, own,
        batch_size=batch_size, kv_dtype=kv_dtype, tensor_parallel_size=tensor_parallel_size,
    )  # fmt: skip
    module.check(model, req)
    return req


def layer_bytes(model: Model, seq_len: int, *, encoder_seq_len: int | None = None, **kw: Any) -> list[int]:
    """Bytes per layer on one rank (same arguments as :func:`kv_cache_bytes`)."""
    if encoder_seq_len is not None:
        model = with_encoder_seq_len(model, encoder_seq_len)
    req = make_request(model, seq_len, **kw)
    return get_engine(req.engine).layer_bytes(model, req)  # type: ignore[no-any-return]


def kv_cache_bytes(
    model: Model,
    seq_len: int,
    *,
    batch_size: int = 1,
    kv_dtype: str = "bf16",
    engine: str = "ideal",
    tensor_parallel_size: int = 1,
    encoder_seq_len: int | None = None,
    **options: Any,
) -> int:
    """Bytes of KV cache and recurrent state held per GPU for ``batch_size`` sequences of ``seq_len``.

    ``encoder_seq_len`` (encoder-decoder models only): encoder positions the cross-attention caches;
    default the model's fixed encoder length (Whisper 1500), else ``seq_len``.

    ``kv_dtype`` may be ``"auto"`` (the model's dtype). Engine options: vLLM ``block_size`` (16),
    ``max_num_batched_tokens`` (8192), ``enable_prefix_caching`` (True); TensorRT-LLM
    ``tokens_per_block`` (32), ``max_attention_window``, ``phase`` …; SGLang ``page_size``,
    ``swa_full_tokens_ratio``, ``mamba_ssm_dtype`` …; see each engine module.
    """
    kw = {"batch_size": batch_size, "kv_dtype": kv_dtype, "engine": engine}
    return sum(
        layer_bytes(
            model, seq_len, tensor_parallel_size=tensor_parallel_size, encoder_seq_len=encoder_seq_len,
            **kw, **options,
        )
    )  # fmt: skip


def kv_bytes_per_token(model: Model, kv_dtype: str = "bf16", *, tensor_parallel_size: int = 1) -> int:
    """Cache growth per token at long context (bounded layers contribute 0), ideal accounting."""
    req = make_request(model, 1, kv_dtype=kv_dtype, tensor_parallel_size=tensor_parallel_size)
    return ideal.bytes_per_token(model, req)


def kv_bytes_per_token_short(model: Model, kv_dtype: str = "bf16", *, tensor_parallel_size: int = 1) -> int:
    """Cache growth per token at short context (ideal engine, sliding windows still filling):
    ``kv_cache_bytes(2) − kv_cache_bytes(1)``; equals :func:`kv_bytes_per_token` without windows."""
    one = layer_bytes(model, 1, kv_dtype=kv_dtype, tensor_parallel_size=tensor_parallel_size)
    two = layer_bytes(model, 2, kv_dtype=kv_dtype, tensor_parallel_size=tensor_parallel_size)
    return sum(two) - sum(one)


def breakdown(model: Model, seq_len: int, **kw: Any) -> dict[str, int]:
    """Bytes per cache kind (e.g. {"full": …, "sliding": …}) for the same arguments."""
    out: dict[str, int] = {}
    for layer, size in zip(model.layers, layer_bytes(model, seq_len, **kw), strict=True):
        out[layer.kind] = out.get(layer.kind, 0) + size
    return out


def vllm_layer_pages(model: Model, seq_len: int, *, kv_dtype: str = "bf16", tensor_parallel_size: int = 1,
                     **options: Any) -> list[tuple[VLLMPage, ...]]:  # fmt: skip
    """Per layer, vLLM's page size and the pages one request of ``seq_len`` tokens needs.

    ``sum(page_bytes * pages)`` over a layer equals :func:`layer_bytes` with ``engine="vllm"``,
    ``batch_size=1``. Layers without a cache give an empty tuple.
    """
    kw = {"kv_dtype": kv_dtype, "tensor_parallel_size": tensor_parallel_size}
    return vllm.pages(model, make_request(model, seq_len, engine="vllm", **kw, **options))


def vllm_layer_bytes_over(model: Model, seq_lens: Sequence[int], *, kv_dtype: str = "bf16",
                          tensor_parallel_size: int = 1, **options: Any) -> list[list[int]]:  # fmt: skip
    """For each length, what :func:`layer_bytes` gives with ``engine="vllm"``, ``batch_size=1``;
    the page layout is worked out once, so a whole chart line costs little more than one point."""
    lengths = [check_int(n, "seq_len", minimum=0, maximum=LIMITS["tokens"]) for n in seq_lens]
    kw = {"kv_dtype": kv_dtype, "tensor_parallel_size": tensor_parallel_size}
    return vllm.layer_bytes_over(model, make_request(model, 0, engine="vllm", **kw, **options), lengths)
