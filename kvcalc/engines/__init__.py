"""Cache bytes of a whole model for a given length, batch, dtype and engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kvcalc.core.dtypes import FP32, MODEL_DTYPES, get_dtype
from kvcalc.core.fields import LIMITS, check_int
from kvcalc.core.layers import LayerSpec, Precision, _Attention, _State, cdiv
from kvcalc.core.model import Model
from kvcalc.errors import KVCalcError

ENGINES = ("ideal", "transformers", "vllm")

#: vLLM's async scheduling keeps this many batches in flight (max_concurrent_batches).
VLLM_CONCURRENT_BATCHES = 2
#: vLLM kernel block alignment used when it grows the attention block for hybrid models.
VLLM_BLOCK_ALIGNMENT = 16
#: Mamba pages vLLM reserves per layer per request, with prefix caching on / off.
VLLM_STATE_PAGES = {True: 3, False: 1}


@dataclass(frozen=True)
class Request:
    """Validated arguments of one cache-size question."""

    seq_len: int
    batch_size: int
    kv_dtype: str
    engine: str
    tensor_parallel_size: int
    block_size: int
    max_num_batched_tokens: int
    enable_prefix_caching: bool = True


def _request(model: Model, seq_len: int, **kw: object) -> Request:
    if not isinstance(model, Model):
        raise KVCalcError(f"model: expected a kvcalc Model (use load_model), got {type(model).__name__}")
    engine = kw["engine"]
    if engine not in ENGINES:
        raise KVCalcError(f"engine: unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    kv_dtype = kw["kv_dtype"]
    if isinstance(kv_dtype, str) and kv_dtype.strip().lower() == "auto":
        kv_dtype = model.dtype
    name = get_dtype(kv_dtype).name
    req = Request(
        seq_len=check_int(seq_len, "seq_len", minimum=0, maximum=LIMITS["tokens"]),
        batch_size=check_int(kw["batch_size"], "batch_size", maximum=1 << 24),
        kv_dtype=name,
        engine=str(engine),
        tensor_parallel_size=check_int(kw["tensor_parallel_size"], "tensor_parallel_size", maximum=4096),
        block_size=check_int(kw["block_size"], "block_size", maximum=1 << 20),
        max_num_batched_tokens=check_int(kw["max_num_batched_tokens"], "max_num_batched_tokens"),
        enable_prefix_caching=bool(kw.get("enable_prefix_caching", True)),
    )
    if req.engine == "transformers":
        if name not in MODEL_DTYPES:
            raise KVCalcError(
                f"kv_dtype: the transformers engine caches in the model dtype; use one of "
                f"{', '.join(MODEL_DTYPES)}, not {name!r}"
            )
        if req.tensor_parallel_size != 1:
            raise KVCalcError("tensor_parallel_size: the transformers engine runs on one device; use 1")
    _check_tp(model, req.tensor_parallel_size)
    return req


def _check_tp(model: Model, tp: int) -> None:
    """vLLM needs tp to divide the KV heads, or the heads to divide tp (then they are replicated)."""
    if tp == 1:
        return
    for layer in model.layers:
        for leaf in layer.leaves():
            if isinstance(leaf, _Attention) and leaf.kv_heads > tp and leaf.kv_heads % tp:
                raise KVCalcError(
                    f"tensor_parallel_size: {tp} does not divide num_key_value_heads {leaf.kv_heads}"
                )


def _precision(model: Model, req: Request, leaf: LayerSpec | None = None) -> Precision:
    kv = get_dtype(req.kv_dtype)
    if req.engine == "transformers":
        return Precision(kv=kv, state=kv, ssm=FP32)
    state = get_dtype(model.dtype)
    if req.engine == "vllm" and isinstance(leaf, _State) and not leaf.vllm_ssm_fp32:
        return Precision(kv=kv, state=state, ssm=state)
    return Precision(kv=kv, state=state, ssm=FP32)


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
class _VLLMCache:
    """One cache of one layer under vLLM, before the length is known: its page and, for a
    recurrent state, the fixed pages per request (``None``: pages grow with the length)."""

    leaf: LayerSpec
    page_bytes: int
    fixed_pages: int | None

    def pages(self, tokens: int, block: int, in_flight: int) -> int:
        if not tokens:
            return 0
        if self.fixed_pages is not None:
            return self.fixed_pages
        return self.leaf.vllm_blocks(tokens, block, in_flight)  # type: ignore[attr-defined,no-any-return]


def _vllm_layout(model: Model, req: Request) -> tuple[int, list[tuple[_VLLMCache, ...]]]:
    """The attention block size in force and, per layer, its caches (GUIDE §4): everything about
    vLLM's pages that does not depend on the length (``req.seq_len`` is not read)."""
    tp = req.tensor_parallel_size
    leaves = [leaf for layer in model.layers for leaf in layer.leaves()]
    paged = [x for x in leaves if x.paged]
    states = [x for x in leaves if isinstance(x, _State)]
    block = req.block_size
    padded_state = 0
    if states and paged:
        tok = max(x.vllm_page_bytes(1, _precision(model, req, x), tp) for x in paged)  # type: ignore[attr-defined]
        state_page = max(x.vllm_state_bytes(_precision(model, req, x), tp) for x in states)
        block = max(block, VLLM_BLOCK_ALIGNMENT * cdiv(state_page, VLLM_BLOCK_ALIGNMENT * tok))
        padded_state = block * tok
    n_state = VLLM_STATE_PAGES[req.enable_prefix_caching]
    out = []
    for layer in model.layers:
        caches = []
        for leaf in layer.leaves():
            p = _precision(model, req, leaf)
            if isinstance(leaf, _State):
                caches.append(_VLLMCache(leaf, padded_state or leaf.vllm_state_bytes(p, tp), n_state))
            elif leaf.paged:
                caches.append(_VLLMCache(leaf, leaf.vllm_page_bytes(block, p, tp), None))  # type: ignore[attr-defined]
        out.append(tuple(caches))
    return block, out


def _vllm_pages(model: Model, req: Request) -> list[tuple[VLLMPage, ...]]:
    """Per layer, the pages one request of ``req.seq_len`` tokens needs, one entry per cache."""
    block, layout = _vllm_layout(model, req)
    in_flight = VLLM_CONCURRENT_BATCHES * req.max_num_batched_tokens
    n = req.seq_len
    page = lambda c: VLLMPage(c.leaf.kind, c.page_bytes, c.pages(n, block, in_flight), block)  # noqa: E731
    return [tuple(map(page, layer)) for layer in layout]


def _vllm_layers(model: Model, req: Request) -> list[int]:
    """vLLM per-request pages × batch, per layer (GUIDE §4)."""
    return [sum(x.page_bytes * x.pages for x in layer) * req.batch_size for layer in _vllm_pages(model, req)]


def vllm_layer_bytes_over(
    model: Model,
    seq_lens: Sequence[int],
    *,
    kv_dtype: str = "bf16",
    tensor_parallel_size: int = 1,
    block_size: int = 16,
    max_num_batched_tokens: int = 8192,
    enable_prefix_caching: bool = True,
) -> list[list[int]]:
    """For each length, what :func:`layer_bytes` gives with ``engine="vllm"``, ``batch_size=1``;
    the page layout is worked out once, so a whole chart line costs little more than one point."""
    lengths = [check_int(n, "seq_len", minimum=0, maximum=LIMITS["tokens"]) for n in seq_lens]
    kw = {"tensor_parallel_size": tensor_parallel_size, "block_size": block_size}
    kw |= {"max_num_batched_tokens": max_num_batched_tokens, "enable_prefix_caching": enable_prefix_caching}
    req = _request(model, 0, batch_size=1, kv_dtype=kv_dtype, engine="vllm", **kw)
    block, layout = _vllm_layout(model, req)
    in_flight = VLLM_CONCURRENT_BATCHES * req.max_num_batched_tokens
    return [[sum(c.page_bytes * c.pages(n, block, in_flight) for c in x) for x in layout] for n in lengths]


def vllm_layer_pages(
    model: Model,
    seq_len: int,
    *,
    kv_dtype: str = "bf16",
    tensor_parallel_size: int = 1,
    block_size: int = 16,
    max_num_batched_tokens: int = 8192,
    enable_prefix_caching: bool = True,
) -> list[tuple[VLLMPage, ...]]:
    """Per layer, vLLM's page size and the pages one request of ``seq_len`` tokens needs.

    ``sum(page_bytes * pages)`` over a layer equals :func:`layer_bytes` with ``engine="vllm"``,
    ``batch_size=1``. Layers without a cache give an empty tuple.
    """
    kw = {"tensor_parallel_size": tensor_parallel_size, "block_size": block_size}
    kw |= {"max_num_batched_tokens": max_num_batched_tokens, "enable_prefix_caching": enable_prefix_caching}
    return _vllm_pages(model, _request(model, seq_len, batch_size=1, kv_dtype=kv_dtype, engine="vllm", **kw))


def layer_bytes(
    model: Model,
    seq_len: int,
    *,
    batch_size: int = 1,
    kv_dtype: str = "bf16",
    engine: str = "ideal",
    tensor_parallel_size: int = 1,
    block_size: int = 16,
    max_num_batched_tokens: int = 8192,
    enable_prefix_caching: bool = True,
) -> list[int]:
    """Bytes per layer (same arguments as :func:`kv_cache_bytes`)."""
    req = _request(
        model,
        seq_len,
        batch_size=batch_size,
        kv_dtype=kv_dtype,
        engine=engine,
        tensor_parallel_size=tensor_parallel_size,
        block_size=block_size,
        max_num_batched_tokens=max_num_batched_tokens,
        enable_prefix_caching=enable_prefix_caching,
    )
    if req.engine == "vllm":
        return _vllm_layers(model, req)
    p = _precision(model, req)
    if req.engine == "transformers":
        return [x.transformers_bytes(req.seq_len, req.batch_size, p) for x in model.layers]
    tp = req.tensor_parallel_size
    return [x.ideal_bytes(req.seq_len, req.batch_size, p, tp) for x in model.layers]


def kv_cache_bytes(
    model: Model,
    seq_len: int,
    *,
    batch_size: int = 1,
    kv_dtype: str = "bf16",
    engine: str = "ideal",
    tensor_parallel_size: int = 1,
    block_size: int = 16,
    max_num_batched_tokens: int = 8192,
    enable_prefix_caching: bool = True,
) -> int:
    """Bytes of KV cache and recurrent state held per GPU for ``batch_size`` sequences of ``seq_len``."""
    return sum(
        layer_bytes(
            model,
            seq_len,
            batch_size=batch_size,
            kv_dtype=kv_dtype,
            engine=engine,
            tensor_parallel_size=tensor_parallel_size,
            block_size=block_size,
            max_num_batched_tokens=max_num_batched_tokens,
            enable_prefix_caching=enable_prefix_caching,
        )
    )


def kv_bytes_per_token(model: Model, kv_dtype: str = "bf16", *, tensor_parallel_size: int = 1) -> int:
    """Cache growth per token at long context (bounded layers contribute 0)."""
    req = _request(
        model,
        1,
        batch_size=1,
        kv_dtype=kv_dtype,
        engine="ideal",
        tensor_parallel_size=tensor_parallel_size,
        block_size=16,
        max_num_batched_tokens=8192,
    )
    p = _precision(model, req)
    return sum(x.bytes_per_token(p, req.tensor_parallel_size) for x in model.layers)


def kv_bytes_per_token_short(
    model: Model, kv_dtype: str = "bf16", *, tensor_parallel_size: int = 1
) -> int:
    """Cache growth per token at short context (ideal engine, sliding windows still filling):
    ``kv_cache_bytes(2) − kv_cache_bytes(1)``; equals :func:`kv_bytes_per_token` without windows."""
    one = layer_bytes(model, 1, kv_dtype=kv_dtype, tensor_parallel_size=tensor_parallel_size)
    two = layer_bytes(model, 2, kv_dtype=kv_dtype, tensor_parallel_size=tensor_parallel_size)
    return sum(two) - sum(one)


def breakdown(model: Model, seq_len: int, **kw: object) -> dict[str, int]:
    """Bytes per cache kind (e.g. {"full": …, "sliding": …}) for the same arguments."""
    out: dict[str, int] = {}
    for layer, size in zip(model.layers, layer_bytes(model, seq_len, **kw), strict=True):  # type: ignore[arg-type]
        out[layer.kind] = out.get(layer.kind, 0) + size
    return out
