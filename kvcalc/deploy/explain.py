"""``kvcalc explain``: re-derive every memory number a vLLM start-up log prints.

The log is read by :mod:`kvcalc.deploy.vllm_log` (model, version, engine args, GPU, memory lines). For
each printed number kvcalc recomputes it:

* ``GPU KV cache size`` / ``# GPU blocks`` / ``Maximum concurrency`` / "maximum number of tokens" —
  exactly, from the printed ``Available KV cache memory`` (two decimals, so every block count within
  ±0.005 GiB is tried) and vLLM's page arithmetic (:mod:`kvcalc.deploy.vllm_kv`). When a number is not
  reproduced, the alternatives vLLM could have used are tried and the one that reproduces it is named
  (older release's token formula, prefix caching on/off for hybrids, speculative draft layers, an fp8
  cache, a smaller budget on another tensor-parallel rank);
* "KV cache is needed" — the bytes one ``max_model_len`` request needs;
* ``Available KV cache memory`` and the parts vLLM prints (weights, activation peak, non-torch,
  CUDA graphs, GPU total) — against :func:`kvcalc.deploy.plan.plan`'s estimates and their published
  spread (an estimate is "within range", never "exact").

An unknown model, GPU or a truncated log gives a partial answer that says what is missing; nothing here
raises on the log's content.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kvcalc.core.model import Model
from kvcalc.deploy.gpus import GPU, GPUS, get_gpu
from kvcalc.deploy.plan import ACTIVATION_RANGE, CUDAGRAPH_RANGE, NON_TORCH_RANGE, Plan, plan
from kvcalc.deploy.vllm_kv import KVLayout, kv_layout, num_blocks, report
from kvcalc.deploy.vllm_log import GIB, LogLine, VLLMLog, parse_log
from kvcalc.deploy.vllm_versions import VLLM_VERSIONS, VLLMVersion, get_vllm_version
from kvcalc.errors import KVCalcError

__all__ = ["Explanation", "LineCheck", "explain"]

HALF_STEP = 0.005  # GiB: vLLM prints two decimals
EXACT, RANGE, DIFFERS, UNCHECKED = "exact", "within range", "differs", "unchecked"
_MARK = {
    EXACT: "✔ reproduced exactly",
    RANGE: "≈ within kvcalc's range",
    DIFFERS: "✘ differs",
    UNCHECKED: "· not checked",
}


@dataclass(frozen=True)
class LineCheck:
    """One printed number and what kvcalc makes of it."""

    line_no: int
    kind: str
    text: str
    status: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "line": self.line_no,
            "kind": self.kind,
            "text": self.text,
            "status": self.status,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Explanation:
    """The answer for one log: what was found, and each printed number checked."""

    model: str | None
    gpu: str | None
    logged_version: str | None
    modelled_version: str
    settings: Mapping[str, Any]
    checks: tuple[LineCheck, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def exit_code(self) -> int:
        """0: every checked number reproduced (exactly or within range); 1: something differs or nothing
        could be checked."""
        checked = [c for c in self.checks if c.status != UNCHECKED]
        return 0 if checked and all(c.status in (EXACT, RANGE) for c in checked) else 1

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "model": self.model,
            "gpu": self.gpu,
            "logged_version": self.logged_version,
            "modelled_version": self.modelled_version,
            "settings": dict(self.settings),
            "checks": [c.as_dict() for c in self.checks],
            "notes": list(self.notes),
            "exit_code": self.exit_code,
        }

    def text(self) -> str:
        """Line by line, as ``kvcalc explain`` prints it."""
        version = self.logged_version or "not in the log"
        out = [
            f"model: {self.model or 'unknown'} · GPU: {self.gpu or 'unknown'} · vLLM {version} "
            f"(kvcalc applies its rules for vLLM {self.modelled_version})",
            "settings: " + (", ".join(f"{k}={v}" for k, v in self.settings.items()) or "none found"),
            "",
        ]
        last = None
        for c in self.checks:
            if (c.line_no, c.text) != last:
                where = f"line {c.line_no}" if c.line_no else "published figure"
                out.append(f"{where}: {c.text}")
                last = (c.line_no, c.text)
            out.append(f"  {_MARK[c.status]} ({c.kind}): {c.detail}")
        if not self.checks:
            out.append(
                "no vLLM memory lines found (looked for 'Available KV cache memory', "
                "'GPU KV cache size', "
                "'# GPU blocks', 'Maximum concurrency', 'KV cache is needed')"
            )
        out += [""] + [f"note: {n}" for n in self.notes] if self.notes else []
        return "\n".join(out)


# ------------------------------------------------------------------------------------------------
# what the log is about


@dataclass(frozen=True)
class _Context:
    log: VLLMLog
    model: Model | None
    gpu: GPU | None
    version: VLLMVersion
    max_model_len: int | None
    tp: int
    pp: int
    block_size: int
    mnbt: int
    prefix_caching: bool
    kv_dtype: str
    draft_layers: int

    def layout(self, **change: Any) -> KVLayout | None:
        """vLLM's layout for this log (``change``: an alternative to try)."""
        if self.model is None or not self.max_model_len:
            return None
        kw: dict[str, Any] = {
            "kv_dtype": self.kv_dtype,
            "tensor_parallel_size": self.tp,
            "pipeline_parallel_size": self.pp,
            "block_size": self.block_size,
            "max_num_batched_tokens": self.mnbt,
            "enable_prefix_caching": self.prefix_caching,
            "draft_layers": self.draft_layers,
        }
        kw.update(change)
        return kv_layout(self.model, self.max_model_len, **kw)


def _find_gpu(log: VLLMLog, gpu: str | GPU | None) -> GPU | None:
    for name in (gpu, log.header.get("gpu"), log.gpu_name):
        if name and not str(name).startswith("unknown"):
            try:
                return get_gpu(name)
            except KVCalcError:
                continue
    total = log.memory.get("total")
    if total is not None:
        hits = [g for g in GPUS if not g.unified and abs(g.memory_bytes / GIB - total) < HALF_STEP + 1e-9]
        if len(hits) == 1:
            return hits[0]
    return None


def _is_hybrid(model: Model) -> bool:
    leaves = [leaf for layer in model.layers for leaf in layer.leaves()]
    return any(x.state for x in leaves) and any(x.paged for x in leaves)


def _draft_layers(log: VLLMLog, model: Model | None) -> int:
    spec = log.settings.get("speculative_config") or {}
    method = str(spec.get("method", "") if isinstance(spec, Mapping) else "") or log.header.get(
        "speculative", ""
    )
    method = method.split()[0].lower() if method else ""
    if method.startswith("eagle"):
        return 1
    if "mtp" in method and model is not None:
        text = model.text_config
        return next(
            (text[k] for k in ("num_nextn_predict_layers", "mtp_num_hidden_layers") if text.get(k)), 1
        )
    return 0


def _context(log: VLLMLog, model: Model | None, gpu: str | GPU | None) -> _Context:
    s = log.settings
    version = get_vllm_version(log.version) if log.version else get_vllm_version(None)
    max_len = s.get("max_model_len") or (model.max_position_embeddings if model else None)
    tp = int(s.get("tp") or log.header.get("tp") or 1)
    pp = int(s.get("pp") or log.header.get("pp") or 1)
    hybrid = model is not None and _is_hybrid(model)
    prefix = s.get("enable_prefix_caching", version.hybrid_prefix_caching if hybrid else True)
    return _Context(
        log=log,
        model=model,
        gpu=_find_gpu(log, gpu),
        version=version,
        max_model_len=int(max_len) if max_len else None,
        tp=tp,
        pp=pp,
        block_size=int(s.get("block_size", 16)),
        mnbt=int(s.get("max_num_batched_tokens", s.get("max_num_batched_tokens_default", 8192))),
        prefix_caching=bool(prefix),
        kv_dtype=str(s.get("kv_cache_dtype", "auto")).replace("fp8_e4m3", "fp8"),
        draft_layers=_draft_layers(log, model),
    )


# ------------------------------------------------------------------------------------------------
# the exact part: numbers that follow from the printed budget


def _blocks_range(avail_gib: float, layout: KVLayout) -> range:
    lo = num_blocks(math.ceil((avail_gib - HALF_STEP) * GIB), layout)
    hi = num_blocks(math.floor((avail_gib + HALF_STEP) * GIB), layout)
    return range(lo, hi + 1)


def _prints(line: LogLine, layout: KVLayout, b: int, length: int, version: VLLMVersion) -> bool:
    tokens, conc = report(layout, b, length, version)
    if line.kind == "tokens":
        return tokens == int(line.values[0])
    if line.kind == "blocks":
        return b == int(line.values[0])
    if line.kind == "max_tokens":
        return b * layout.block_size == int(line.values[0])
    return line.kind == "concurrency" and f"{conc:.2f}" == f"{line.values[1]:.2f}"


def _matches(line: LogLine, layout: KVLayout, blocks: range, length: int, version: VLLMVersion) -> int | None:
    """The block count in ``blocks`` (nearest its middle) that prints ``line``'s value, or None."""
    hits = [b for b in blocks if _prints(line, layout, b, length, version)]
    mid = (blocks.start + blocks.stop - 1) / 2
    return min(hits, key=lambda b: abs(b - mid)) if hits else None


def _describe(layout: KVLayout, b: int, length: int, version: VLLMVersion) -> str:
    tokens, conc = report(layout, b, length, version)
    how = (
        "int(concurrency × max_model_len)"
        if version.tokens_from_concurrency
        else f"{b:,} // {layout.num_groups} groups × {layout.block_size}"
    )
    if not version.v1:
        how = f"{b:,} × {layout.block_size}"
    return (
        f"{b:,} blocks of {layout.bytes_per_block:,} bytes ({layout.group_size} layers × "
        f"{layout.page_bytes:,}-byte pages); {layout.blocks_per_request:,} blocks per request → "
        f"concurrency {conc:.2f}×, {tokens:,} tokens ({how})"
    )


def _alternatives(ctx: _Context) -> list[tuple[str, KVLayout | None, VLLMVersion]]:
    """What else vLLM could have done, most likely first, with the cause each one names."""
    out: list[tuple[str, KVLayout | None, VLLMVersion]] = []
    hybrid = ctx.model is not None and _is_hybrid(ctx.model)
    for v in VLLM_VERSIONS:
        if (v.v1, v.tokens_from_concurrency) != (
            ctx.version.v1,
            ctx.version.tokens_from_concurrency,
        ) and v.v1:
            # that release's own hybrid prefix-caching default: it sets the hybrid block alignment too
            layout = ctx.layout(enable_prefix_caching=v.hybrid_prefix_caching) if hybrid else ctx.layout()
            out.append(
                (
                    f"the token line of vLLM {v.name} (an older or newer release than the log says)",
                    layout,
                    v,
                )
            )
    if ctx.model is not None and _is_hybrid(ctx.model):
        other = not ctx.prefix_caching
        out.append(
            (
                f"prefix caching {'on' if other else 'off'} for this hybrid model "
                f"({3 if other else 1} state pages per layer per request)",
                ctx.layout(enable_prefix_caching=other),
                ctx.version,
            )
        )
    for n in (1, 2, 3):
        if n != ctx.draft_layers:
            out.append(
                (
                    f"speculative decoding: {n} draft layer(s) holding KV (EAGLE / MTP)",
                    ctx.layout(draft_layers=n),
                    ctx.version,
                )
            )
    if ctx.kv_dtype == "auto":
        out.append(("an fp8 KV cache (--kv-cache-dtype fp8)", ctx.layout(kv_dtype="fp8"), ctx.version))
    return out


def _check_derived(ctx: _Context, line: LogLine, avails: list[float]) -> LineCheck:
    """A number that follows from a printed budget; with several ranks, any rank's budget may print it."""
    best = None
    for avail in avails or [None]:
        check = _check_derived_one(ctx, line, avail)
        if check.status == EXACT:
            return check
        best = best or check
    return best


def _check_derived_one(ctx: _Context, line: LogLine, avail: float | None) -> LineCheck:
    text = line.text
    layout = _safe(ctx.layout)
    if layout is None or not ctx.max_model_len:
        why = "no model config" if ctx.model is None else "no max_model_len in the log"
        return LineCheck(
            line.line_no, line.kind, text, UNCHECKED, f"{why}: pass --model CONFIG" + _consistency(ctx, line)
        )
    if avail is None:
        return LineCheck(
            line.line_no,
            line.kind,
            text,
            UNCHECKED,
            "the log has no 'Available KV cache memory' line to derive it from",
        )
    blocks = _blocks_range(avail, layout)
    b = _matches(line, layout, blocks, ctx.max_model_len, ctx.version)
    if b is not None:
        return LineCheck(
            line.line_no,
            line.kind,
            text,
            EXACT,
            f"from {avail:.2f} GiB: " + _describe(layout, b, ctx.max_model_len, ctx.version),
        )
    for cause, alt, version in _alternatives(ctx):
        if alt is None:
            continue
        b = _matches(line, alt, _blocks_range(avail, alt), ctx.max_model_len, version)
        if b is not None:
            return LineCheck(
                line.line_no,
                line.kind,
                text,
                DIFFERS,
                f"not with the log's settings; reproduced exactly with {cause}: "
                + _describe(alt, b, ctx.max_model_len, version),
            )
    return LineCheck(line.line_no, line.kind, text, DIFFERS, _implied(ctx, line, layout, avail))


def _consistency(ctx: _Context, line: LogLine) -> str:
    """What can be said without the model: V0's concurrency is blocks × block_size / max_model_len."""
    blocks = ctx.log.first("blocks")
    if line.kind == "concurrency" and blocks and ctx.max_model_len and not ctx.version.v1:
        value = blocks.values[0] * ctx.block_size / ctx.max_model_len
        ok = f"{value:.2f}" == f"{line.values[1]:.2f}"
        word = "consistent" if ok else "inconsistent"
        n = int(blocks.values[0])
        return f" ({word} with # GPU blocks: {n:,} × {ctx.block_size} / {ctx.max_model_len:,} = {value:.2f})"
    return ""


def _implied_blocks(ctx: _Context, line: LogLine, layout: KVLayout) -> float | None:
    """The block count that would print ``line`` (inverse of :func:`report`)."""
    v, length = ctx.version, ctx.max_model_len or 1
    if line.kind == "tokens":
        if v.tokens_from_concurrency:
            return line.values[0] / length * layout.blocks_per_request
        return line.values[0] / layout.block_size * (layout.num_groups if v.v1 else 1)
    if line.kind == "max_tokens":
        return line.values[0] / layout.block_size
    if line.kind == "blocks":
        return line.values[0]
    if line.kind == "concurrency":
        return line.values[1] * (layout.blocks_per_request if v.v1 else length / layout.block_size)
    return None


def _implied(ctx: _Context, line: LogLine, layout: KVLayout, avail: float) -> str:
    """The budget that would print ``line`` — the likeliest cause when nothing else reproduces it."""
    blocks = _implied_blocks(ctx, line, layout)
    if blocks is None:
        return "kvcalc cannot say what produced this number"
    implied = blocks * layout.bytes_per_block / GIB
    if ctx.tp * ctx.pp > 1 and implied < avail:
        return (
            f"needs ~{implied:.2f} GiB, the log prints {avail:.2f} GiB: each of the "
            f"{ctx.tp * ctx.pp} ranks "
            "prints its own budget and vLLM keeps the smallest block count, so another rank had less "
            "free memory"
        )
    return (
        f"needs ~{implied:.2f} GiB, the log prints {avail:.2f} GiB: a different model config, "
        "cache dtype "
        "or block size than the log shows"
    )


def _check_needed(ctx: _Context, line: LogLine) -> LineCheck:
    layout = _safe(ctx.layout)
    if layout is None:
        return LineCheck(
            line.line_no, line.kind, line.text, UNCHECKED, "no model config: pass --model CONFIG"
        )
    need = layout.per_request_bytes / GIB
    ok = f"{need:.2f}" == f"{line.values[1]:.2f}"
    detail = (
        f"one {ctx.max_model_len:,}-token request holds {layout.per_request_bytes:,} bytes "
        f"= {need:.2f} GiB" + ("" if ok else f" (the log says {line.values[1]:.2f} GiB)")
    )
    return LineCheck(line.line_no, line.kind, line.text, EXACT if ok else DIFFERS, detail)


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except KVCalcError:
        return None


# ------------------------------------------------------------------------------------------------
# the estimated part: the budget and its parts


def _plan(ctx: _Context) -> Plan | None:
    if ctx.model is None or ctx.gpu is None or not ctx.max_model_len:
        return None
    s, log = ctx.log.settings, ctx.log
    kw: dict[str, Any] = {
        "gpu": ctx.gpu,
        "num_gpus": ctx.tp * ctx.pp,
        "tensor_parallel_size": ctx.tp,
        "pipeline_parallel_size": ctx.pp,
        "max_model_len": ctx.max_model_len,
        "kv_dtype": ctx.kv_dtype,
        "block_size": ctx.block_size,
        "max_num_batched_tokens": ctx.mnbt,
        "enable_prefix_caching": ctx.prefix_caching,
        "vllm_version": ctx.version.name,
        "enforce_eager": bool(s.get("enforce_eager")),
    }
    for key in ("gpu_memory_utilization", "max_num_seqs", "kv_cache_memory"):
        if key in s:
            kw[key] = s[key]
    if log.header.get("weights"):
        kw["weight_dtype"] = log.header["weights"]
    if ctx.draft_layers:
        kw["speculative_config"] = {"method": "eagle"} if ctx.draft_layers == 1 else None
    return _safe(lambda: plan(ctx.model, **kw))


_PARTS = {  # log kind → (Plan field, what it is)
    "weights": ("weights_bytes", "weights"),
    "activation": ("activation_bytes", "activation peak"),
    "non_torch": ("non_torch_bytes", "non-torch memory"),
    "cudagraph": ("cudagraph_bytes", "CUDA-graph pool"),
}


def _check_available(ctx: _Context, line: LogLine, pl: Plan | None) -> LineCheck:
    logged = line.values[0]
    if pl is None:
        missing = "model config" if ctx.model is None else "GPU (pass --gpu)"
        return LineCheck(line.line_no, line.kind, line.text, UNCHECKED, f"the budget needs the {missing}")
    est, (lo, hi) = pl.kv_budget_bytes / GIB, (x / GIB for x in pl.kv_budget_range)
    status = RANGE if lo - HALF_STEP <= logged <= hi + HALF_STEP else DIFFERS
    detail = (
        f"kvcalc {est:.2f} GiB, range {lo:.2f}–{hi:.2f} GiB ({pl.gpu_memory_utilization} × "
        f"{pl.gpu_memory_bytes / GIB:.2f} GiB − weights {pl.weights_bytes / GIB:.2f} − activation "
        f"{pl.activation_bytes / GIB:.2f} − non-torch {pl.non_torch_bytes / GIB:.2f} − CUDA graphs "
        f"{pl.cudagraph_bytes / GIB:.2f})"
    )
    parts = []
    for kind, (attr, what) in _PARTS.items():
        after = kind == "cudagraph" and not ctx.version.cudagraph_in_budget
        if kind in ctx.log.memory and not after:
            diff = ctx.log.memory[kind] - getattr(pl, attr) / GIB
            parts.append(
                (
                    abs(diff),
                    f"{what}: logged {ctx.log.memory[kind]:.2f} GiB, kvcalc {getattr(pl, attr) / GIB:.2f}",
                )
            )
    gap = abs(logged - est)
    if parts and (status == RANGE or max(parts)[0] >= gap / 2):
        detail += "; largest gap — " + max(parts)[1]
    elif status == DIFFERS and gap > 1:
        detail += (
            f"; the {gap:.2f} GiB difference is not in the parts kvcalc estimates: another process on the "
            "GPU at start-up, a different GPU (pass --gpu), or a different utilization"
        )
    elif status == DIFFERS:
        detail += "; most likely the activation peak or non-torch memory (the log does not split them)"
    return LineCheck(line.line_no, line.kind, line.text, status, detail)


def _check_usage(ctx: _Context, line: LogLine, pl: Plan | None) -> LineCheck:
    """``Free memory on device (free/total GiB) … Actual usage is W for weight, A for peak activation, N for
    non-torch memory, and G for CUDAGraph memory``."""
    total, parts = (
        line.values[1],
        dict(zip(("weights", "activation", "non_torch", "cudagraph"), line.values[2:], strict=False)),
    )
    if ctx.gpu is None or pl is None:
        return LineCheck(
            line.line_no, line.kind, line.text, UNCHECKED, "recorded (the GPU or model is unknown)"
        )
    ours = ctx.gpu.memory_bytes / GIB
    exact_total = abs(ours - total) <= HALF_STEP + 1e-9
    pieces = [f"GPU total {total:.2f} GiB {'= kvcalc' if exact_total else f'vs kvcalc {ours:.2f}'}"]
    for key, value in parts.items():
        attr, what = _PARTS[key]
        pieces.append(f"{what} {value:.2f} vs kvcalc {getattr(pl, attr) / GIB:.2f}")
    if not ctx.version.cudagraph_in_budget:
        pieces.append("the CUDA graphs were captured after sizing (not in this release's budget)")
    return LineCheck(
        line.line_no, line.kind, line.text, EXACT if exact_total else DIFFERS, "; ".join(pieces) + " GiB"
    )


def _part_range(key: str, ours: float, ctx: _Context) -> tuple[float, float]:
    """The published spread of one estimated part (bench/vllm_logs/fit.json), in GiB."""
    if key == "non_torch":
        lo, hi = NON_TORCH_RANGE[min(ctx.tp * ctx.pp, 2)]
        return min(lo / GIB, ours), max(hi / GIB, ours)
    if key == "activation":
        return ours * ACTIVATION_RANGE[0], ours * ACTIVATION_RANGE[1]
    if key == "cudagraph":
        return CUDAGRAPH_RANGE[0] / GIB, CUDAGRAPH_RANGE[1] / GIB
    return ours * 0.97, ours * 1.03  # weights: sharding and kernel padding are estimates


def _check_free(line: LogLine) -> LineCheck:
    """``Free memory on device (F/T GiB) on startup is less than desired GPU memory utilization (u, W)``."""
    free, total, util, want = line.values
    ok = f"{util * total:.2f}" == f"{want:.2f}"
    detail = (
        f"vLLM refuses to start: {util} × {total:.2f} GiB = {util * total:.2f} GiB wanted, "
        f"only {free:.2f} GiB free — another process holds {total - free:.2f} GiB"
    )
    return LineCheck(line.line_no, line.kind, line.text, EXACT if ok else DIFFERS, detail)


def _check_part(ctx: _Context, line: LogLine, pl: Plan | None) -> LineCheck:
    if line.kind == "total":
        if ctx.gpu is None:
            return LineCheck(line.line_no, line.kind, line.text, UNCHECKED, "GPU not named: pass --gpu")
        ours = ctx.gpu.memory_bytes / GIB
        ok = abs(ours - line.values[0]) <= HALF_STEP + 1e-9
        return LineCheck(
            line.line_no,
            line.kind,
            line.text,
            EXACT if ok else DIFFERS,
            f"{ctx.gpu.name}: {ours:.2f} GiB in kvcalc's catalog ({ctx.gpu.memory_source})",
        )
    if line.kind == "cudagraph" and not ctx.version.cudagraph_in_budget:
        return LineCheck(
            line.line_no,
            line.kind,
            line.text,
            UNCHECKED,
            "captured after the KV cache was sized: not in the budget (vLLM < 0.21)",
        )
    if line.kind == "cudagraph" and "Graph capturing finished" in line.text:
        return LineCheck(line.line_no, line.kind, line.text, UNCHECKED, "the pool measured after capture")
    key = {"nontorch": "non_torch", "cudagraph_estimate": "cudagraph"}.get(line.kind, line.kind)
    if key not in _PARTS or pl is None:
        return LineCheck(line.line_no, line.kind, line.text, UNCHECKED, "recorded (nothing to derive)")
    attr, what = _PARTS[key]
    ours = getattr(pl, attr) / GIB
    value = line.values[0]
    lo, hi = _part_range(key, ours, ctx)
    close = lo - HALF_STEP <= value <= hi + HALF_STEP
    detail = f"kvcalc's {what} estimate {ours:.2f} GiB (range {lo:.2f}–{hi:.2f})"
    if key == "weights" and not close:
        detail += " (quantized or padded weights: e.g. vLLM's mxfp4 MoE kernels pad the experts)"
    return LineCheck(line.line_no, line.kind, line.text, RANGE if close else DIFFERS, detail)


# ------------------------------------------------------------------------------------------------
# the door


def explain(
    text: str,
    *,
    model: Model | None = None,
    gpu: str | GPU | None = None,
    resolve: Callable[[str], Model] | None = None,
) -> Explanation:
    """Check every memory number a vLLM start-up log prints (see the module doc).

    ``model``: the config to use (else the header's ``config:`` or the log's model id through ``resolve``,
    e.g. a catalog lookup); ``gpu``: when the log does not name it (else its total memory picks it).
    """
    if not isinstance(text, str):
        raise KVCalcError(f"log: expected the log text, got {type(text).__name__}")
    log = parse_log(text)
    notes: list[str] = []
    if model is None and resolve is not None:
        for name in (log.header.get("config", "").split(" ")[0], log.model):
            if name:
                model = _safe(lambda n=name: resolve(n)) or _safe(
                    lambda n=name: resolve(n.rstrip("/").split("/")[-1])
                )
                if model is not None:
                    break
    if model is None:
        notes.append(
            f"model {log.model or '(not in the log)'!r} is not one kvcalc knows: "
            "pass --model CONFIG "
            "to check the token and block lines"
        )
    ctx = _context(log, model, gpu)
    if not log.version:
        notes.append(
            f"the log names no vLLM version: kvcalc assumed the newest modelled rules ({ctx.version.name})"
        )
    if ctx.gpu is None:
        total = log.memory.get("total")
        seen = f"its total {total:.2f} GiB matches no catalog GPU" if total else "its total not printed"
        notes.append(f"GPU not named and {seen}: pass --gpu to check the budget")
    pl = _plan(ctx)
    avails = sorted({x.values[0] for x in log.lines if x.kind == "available"})
    checks = []
    for line in log.lines:
        if line.kind in ("tokens", "blocks", "concurrency", "max_tokens"):
            checks.append(_check_derived(ctx, line, avails))
        elif line.kind == "needed":
            checks.append(_check_needed(ctx, line))
        elif line.kind == "available":
            checks.append(_check_available(ctx, line, pl))
        elif line.kind == "usage":
            checks.append(_check_usage(ctx, line, pl))
        elif line.kind == "free":
            checks.append(_check_free(line))
        elif line.kind in (
            "weights",
            "total",
            "cudagraph",
            "cudagraph_estimate",
            "activation",
            "nontorch",
            "non_torch",
            "profile",
        ):
            checks.append(_check_part(ctx, line, pl))
    if not log.lines:
        notes.append(
            "nothing recognised: paste the start-up log from 'vllm serve' up to 'Maximum concurrency'"
        )
    settings = {k: v for k, v in log.settings.items() if not k.endswith("_default")}
    return Explanation(
        model=model.name if model else log.model,
        gpu=ctx.gpu.key if ctx.gpu else None,
        logged_version=log.version,
        modelled_version=ctx.version.span,
        settings=settings,
        checks=tuple(checks),
        notes=tuple(notes),
    )
