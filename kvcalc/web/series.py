"""Chart series for a selection of models: bytes at one context (bars) and over contexts (log-log lines).

Every number here is :func:`kvcalc.kv_cache_bytes` — computed on a copy of the model that keeps one
layer per distinct spec, times how often it occurs (exact: a layer's bytes depend only on its spec and
the set of specs, never on its position). Lines do not depend on the chosen context or GPU, and cache
bytes are exactly linear in the batch size, so a :class:`Prepared` model keeps its lines at batch 1 per
(dtype, engine, tensor-parallel size) and scales them.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from kvcalc.core.layers import ChunkedAttention, SlidingWindow
from kvcalc.core.model import Model
from kvcalc.engines import kv_bytes_per_token, kv_bytes_per_token_short, layer_bytes, vllm_layer_bytes_over
from kvcalc.engines.vllm import CONCURRENT_BATCHES as VLLM_CONCURRENT_BATCHES

MIN_CONTEXT = 1024
MAX_CONTEXT = 10_000_000
#: Used as the line's end when a config has no max_position_embeddings.
DEFAULT_MAX_CONTEXT = 131072
POINTS = 100
#: Kinds that never hold bytes (left out of breakdowns).
EMPTY_KINDS = frozenset({"none", "shared_kv"})
_MAX_CACHED_LINES = 64
#: Engines whose cache bytes are affine in the context between breakpoints (no pages or cells).
AFFINE_ENGINES = frozenset({"ideal", "transformers"})

KIND_LABELS = {
    "full": "full attention",
    "sliding": "sliding window",
    "chunked": "chunked attention",
    "mla": "MLA latent",
    "mamba1": "Mamba state",
    "mamba2": "Mamba-2 state",
    "gated_deltanet": "Gated DeltaNet state",
    "linear": "linear-attention state",
    "short_conv": "short-conv state",
    "cross": "cross attention",
    "parallel": "attention + Mamba",
    "shared_kv": "shared KV",
    "none": "no cache",
}


@dataclass(frozen=True)
class Engine:
    """Everything but the context, dtype and batch that a cache size depends on."""

    engine: str = "ideal"
    tensor_parallel_size: int = 1
    block_size: int = 16
    max_num_batched_tokens: int = 8192

    def kwargs(self) -> dict[str, object]:
        """Keyword arguments for :func:`kvcalc.layer_bytes`."""
        return {
            "engine": self.engine,
            "tensor_parallel_size": self.tensor_parallel_size,
            "block_size": self.block_size,
            "max_num_batched_tokens": self.max_num_batched_tokens,
        }


@dataclass(frozen=True)
class Line:
    """Cache bytes over contexts for batch 1: totals and per-kind parts."""

    x: tuple[int, ...]
    y: tuple[int, ...]
    parts: dict[str, tuple[int, ...]]

    def scaled(self, batch: int) -> dict[str, object]:
        """JSON-ready line for ``batch`` sequences (bytes are linear in the batch)."""
        return {
            "x": list(self.x),
            "y": [v * batch for v in self.y],
            "parts": {k: [v * batch for v in vs] for k, vs in self.parts.items()},
        }


def max_context(model: Model) -> int:
    """Where a model's line ends: its max_position_embeddings, capped at 10M tokens."""
    return min(model.max_position_embeddings or DEFAULT_MAX_CONTEXT, MAX_CONTEXT)


def breakpoints(model: Model, eng: Engine) -> set[int]:
    """Contexts where some layer stops growing (so plateaus start exactly where they should)."""
    in_flight = VLLM_CONCURRENT_BATCHES * eng.max_num_batched_tokens
    out: set[int] = set()
    for layer in model.layers:
        for leaf in layer.leaves():
            size = leaf.window if isinstance(leaf, SlidingWindow) else None
            if isinstance(leaf, ChunkedAttention):
                size = leaf.chunk
            if size:
                out |= {size - 1, size, size - 1 + in_flight, size + in_flight}
    return out


def context_points(model: Model, eng: Engine, n: int = POINTS) -> tuple[int, ...]:
    """About ``n`` log-spaced token counts from 1K to the model's max context, plus its breakpoints and
    the powers of two between (the page's data table reads every line at those: exact values)."""
    hi = max_context(model)
    lo = MIN_CONTEXT if hi > MIN_CONTEXT else max(1, hi // 32)
    if hi <= lo or n < 2:
        return (hi,)
    ratio = hi / lo
    xs = {round(lo * ratio ** (k / (n - 1))) for k in range(n)} | {lo, hi}
    xs |= {b for b in breakpoints(model, eng) if lo < b < hi}
    xs |= {1 << p for p in range(hi.bit_length()) if lo < 1 << p < hi}
    return tuple(sorted(xs))


class Prepared:
    """A parsed model ready for repeated questions: distinct layer specs, counts, cached lines."""

    def __init__(self, model: Model) -> None:
        self.model = model
        counts = Counter(model.layers)
        self.unique = dataclasses.replace(model, layers=tuple(counts))
        self.counts = tuple(counts.values())
        self.kinds = tuple(layer.kind for layer in counts)
        self._lines: dict[tuple[str, Engine], Line] = {}
        #: Other per-model results worth keeping across requests (parameter counts, weights).
        self.memo: dict[object, object] = {}

    def _layer_bytes(self, seq_len: int, batch: int, dtype: str, eng: Engine) -> list[int]:
        per = layer_bytes(self.unique, seq_len, batch_size=batch, kv_dtype=dtype, **eng.kwargs())  # type: ignore[arg-type]
        return [b * c for b, c in zip(per, self.counts, strict=True)]

    def total(self, seq_len: int, batch: int, dtype: str, eng: Engine) -> int:
        """Same as kv_cache_bytes(model, seq_len, batch_size=batch, kv_dtype=dtype, **eng)."""
        return sum(self._layer_bytes(seq_len, batch, dtype, eng))

    def by_kind(self, seq_len: int, batch: int, dtype: str, eng: Engine) -> dict[str, int]:
        """Same as breakdown(...), without the kinds that never hold bytes."""
        return self._grouped(self._layer_bytes(seq_len, batch, dtype, eng))

    def _grouped(self, sizes: list[int]) -> dict[str, int]:
        """Bytes per kind from bytes per distinct layer (already multiplied by its count)."""
        out: dict[str, int] = {}
        for kind, size in zip(self.kinds, sizes, strict=True):
            if kind not in EMPTY_KINDS:
                out[kind] = out.get(kind, 0) + size
        return out

    def line(self, dtype: str, eng: Engine) -> Line:
        """Bytes at batch 1 over :func:`context_points` (memoised)."""
        key = (dtype, eng)
        if key not in self._lines:
            if len(self._lines) >= _MAX_CACHED_LINES:
                self._lines.clear()
            xs = context_points(self.model, eng)
            parts: dict[str, list[int]] = {k: [] for k in dict.fromkeys(self.kinds) if k not in EMPTY_KINDS}
            ys = []
            for kinds in self._points(xs, dtype, eng):
                for k, v in kinds.items():
                    parts[k].append(v)
                ys.append(sum(kinds.values()))
            self._lines[key] = Line(tuple(xs), tuple(ys), {k: tuple(v) for k, v in parts.items()})
        return self._lines[key]

    def totals(self, xs: Sequence[int], dtype: str, eng: Engine) -> dict[int, int]:
        """total(x, 1, dtype, eng) at each of ``xs`` (sorted, distinct), worked out as a line's points
        are (:meth:`_points`: one vLLM page layout; affine runs filled in between the model's
        breakpoints, which join the grid)."""
        if not xs:
            return {}
        grid = set(xs)
        if eng.engine in AFFINE_ENGINES:
            grid |= {c for c in breakpoints(self.model, eng) if xs[0] <= c <= xs[-1]}
        ordered = tuple(sorted(grid))
        values = self._points(ordered, dtype, eng)
        got = {x: sum(kinds.values()) for x, kinds in zip(ordered, values, strict=True)}
        return {x: got[x] for x in xs}

    def _points(self, xs: tuple[int, ...], dtype: str, eng: Engine) -> list[dict[str, int]]:
        """by_kind at every x. The ideal and transformers caches are affine in the context between
        two :func:`breakpoints` (full: c·L, windows: c·min(L, W), states: constant), so each such
        run is computed at its start, start + 1 and end, and filled in — checked at the end against
        the direct value, and computed point by point if the check ever fails. vLLM's paged sizes
        are step functions: every point, from a page layout worked out once; other engines' sizes
        are computed point by point."""
        if eng.engine == "vllm":
            kw = {k: v for k, v in eng.kwargs().items() if k != "engine"}
            rows = vllm_layer_bytes_over(self.unique, xs, kv_dtype=dtype, **kw)  # type: ignore[arg-type]
            return [self._grouped([b * c for b, c in zip(row, self.counts, strict=True)]) for row in rows]
        if eng.engine not in AFFINE_ENGINES:
            return [self.by_kind(x, 1, dtype, eng) for x in xs]
        cuts = breakpoints(self.model, eng)
        out: list[dict[str, int]] = [self.by_kind(xs[0], 1, dtype, eng)]
        i = 0
        while i < len(xs) - 1:
            j = i + 1
            while j < len(xs) - 1 and xs[j] not in cuts:
                j += 1
            start, end = out[i], self.by_kind(xs[j], 1, dtype, eng)
            step = self.by_kind(xs[i] + 1, 1, dtype, eng)
            slope = {k: step[k] - v for k, v in start.items()}
            if all(start[k] + slope[k] * (xs[j] - xs[i]) == v for k, v in end.items()):
                out += [{k: v + slope[k] * (x - xs[i]) for k, v in start.items()} for x in xs[i + 1 : j]]
            else:  # pragma: no cover - a cache kind that is not affine between breakpoints
                out += [self.by_kind(x, 1, dtype, eng) for x in xs[i + 1 : j]]
            out.append(end)
            i = j
        return out

    def token_bytes(self, dtype: str, tp: int = 1) -> int:
        """Bytes one more token adds at short context (ideal; sliding layers still growing)."""
        key = ("token_bytes", dtype, tp)
        if key not in self.memo:
            self.memo[key] = kv_bytes_per_token_short(self.model, dtype, tensor_parallel_size=tp)
        return self.memo[key]  # type: ignore[return-value]

    def long_token_bytes(self, dtype: str, tp: int = 1) -> int:
        """Bytes one more token adds at long context (windows full): kv_bytes_per_token."""
        key = ("long_token_bytes", dtype, tp)
        if key not in self.memo:
            self.memo[key] = kv_bytes_per_token(self.model, dtype, tensor_parallel_size=tp)
        return self.memo[key]  # type: ignore[return-value]
