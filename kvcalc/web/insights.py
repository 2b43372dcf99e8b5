"""Insight sentences computed from the current selection (never canned text).

Input rows are the per-model dicts :mod:`kvcalc.web` builds (cache, lines, facts, fits…); each
insight is ``{"kind": ..., "text": ...}``, plain text the page shows as text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from kvcalc.core.units import fmt_gib, fmt_int, fmt_token_bytes, fmt_tokens
from kvcalc.engines.vllm import CONCURRENT_BATCHES as VLLM_CONCURRENT_BATCHES
from kvcalc.web.series import Engine

Row = dict[str, Any]
MAX_PER_KIND = 3
STATE_KINDS = ("mamba1", "mamba2", "gated_deltanet", "linear", "short_conv")
_PURE_ATTENTION = ("GQA", "MQA", "MHA")


def _dt(dtype: str) -> str:
    return dtype.upper().replace("_", " ")


def _names(rows: Sequence[Row], limit: int = 4) -> str:
    names = [r["name"] for r in rows]
    if len(names) > limit:
        return ", ".join(names[:limit]) + f" and {len(names) - limit} more"
    return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]


def _times(a: int, b: int) -> str:
    return f"{a / b:,.1f}×" if b else "∞×"


def _size(row: Row) -> float:
    params = row.get("params") or {}
    return float(params.get("total") or row["layers"])


def mla_pairs(rows: Sequence[Row], d: str) -> list[tuple[list[Row], Row]]:
    """Each MLA model's full-attention reference — the GQA/MQA/MHA model nearest to it in size — as
    (MLA models with the same cache and reference, reference), in selection order."""
    gqa = [r for r in rows if r["attention"] in _PURE_ATTENTION and r["cache"][d]]
    if not gqa:
        return []
    groups: dict[tuple[int, str], list[Row]] = {}
    refs: dict[str, Row] = {}
    for r in (r for r in rows if r["attention"] == "MLA"):
        other = min(gqa, key=lambda g: abs(math.log(_size(g) / _size(r))))
        refs[other["id"]] = other
        groups.setdefault((r["cache"][d], other["id"]), []).append(r)
    return [(same, refs[other_id]) for (_, other_id), same in groups.items()]


def _relative(a: int, b: int) -> str:
    return f"{_times(b, a)} less" if b >= a else f"{_times(a, b)} more"


def mla_vs_gqa(rows: Sequence[Row], d: str, ctx: str) -> list[str]:
    """How much less each MLA model stores than the GQA model nearest to it in size; MLA models that
    share that reference are said in one sentence (the reference named once)."""
    by_ref: dict[str, list[tuple[list[Row], Row]]] = {}
    for same, other in mla_pairs(rows, d):
        by_ref.setdefault(other["id"], []).append((same, other))
    out = []
    for pairs in by_ref.values():
        other = pairs[0][1]
        b = other["cache"][d]
        named = [x for same, _ in pairs for x in same]
        basis = "parameter count" if all(x.get("params") for x in [*named, other]) else "depth"
        if len(pairs) == 1:
            same = pairs[0][0]
            a = same[0]["cache"][d]
            verb = "stores" if len(same) == 1 else "each store"
            out.append(
                f"{_names(same)} (MLA) {verb} {fmt_gib(a)} at {ctx} in {_dt(d)} — {_relative(a, b)} than "
                f"{other['name']} ({other['attention']}, {fmt_gib(b)}), the nearest full-attention model by "
                f"{basis}: {fmt_int(same[0]['token_bytes'][d])} vs {fmt_int(other['token_bytes'][d])} bytes "
                "per token."
            )
            continue
        parts = []
        for same, _ in pairs:
            a = same[0]["cache"][d]
            each = " each" if len(same) > 1 else ""
            parts.append(
                f"{_names(same)} {fmt_gib(a)}{each}, {_relative(a, b)} "
                f"({fmt_int(same[0]['token_bytes'][d])} bytes per token)"
            )
        out.append(
            f"At {ctx} in {_dt(d)}, against {other['name']} ({other['attention']}, {fmt_gib(b)}, "
            f"{fmt_int(other['token_bytes'][d])} bytes per token), the nearest full-attention model by "
            f"{basis}, the MLA models store: {'; '.join(parts)}."
        )
    return out[:MAX_PER_KIND]


def _standard(row: Row) -> bool:
    """Multi-head attention in one of its forms (MHA, GQA, MQA, sliding windows): no latent, no state."""
    label = row["attention"]
    if label == "MLA" or label.startswith("hybrid"):
        return False
    return any(k in label for k in ("MHA", "GQA", "MQA", "SWA"))


def mla_vs_mha_average(rows: Sequence[Row], d: str) -> list[str]:
    """The comparison page's sentence: average bytes per token of the MLA models against the MHA-family
    ones (MHA/GQA/MQA, sliding windows at short context) and the share MLA saves."""
    mla = [r for r in rows if r["attention"] == "MLA" and r["token_bytes"][d]]
    std = [r for r in rows if _standard(r) and r["token_bytes"][d]]
    if not mla or not std:
        return []
    a = sum(r["token_bytes"][d] for r in mla) / len(mla)
    b = sum(r["token_bytes"][d] for r in std) / len(std)
    saving = f"{1 - a / b:.0%} less" if a <= b else f"{a / b - 1:.0%} more"
    return [
        f"MLA models ({_names(mla)}) store {a:,.0f} bytes per token on average in {_dt(d)}, against "
        f"{b:,.0f} for the {len(std)} MHA/GQA model{'s' if len(std) > 1 else ''} ({_names(std)}): "
        f"{saving} per token."
    ]


def most_least_efficient(rows: Sequence[Row], d: str) -> list[str]:
    """The page's other sentence: the smallest and largest bytes per token of the selection (short
    context; a sliding-window model's long-context 0 is said, not ranked)."""
    sized = [r for r in rows if r["token_bytes"][d]]
    if len(sized) < 2:
        return []
    lo = min(sized, key=lambda r: r["token_bytes"][d])
    hi = max(sized, key=lambda r: r["token_bytes"][d])
    if lo is hi or lo["token_bytes"][d] == hi["token_bytes"][d]:
        return []

    def per_token(r: Row) -> str:
        return fmt_token_bytes(r["token_bytes"][d], r["long_token_bytes"][d])

    return [
        f"Most efficient per token: {lo['name']} ({per_token(lo)} bytes in {_dt(d)}); least efficient: "
        f"{hi['name']} ({per_token(hi)} bytes), {_times(hi['token_bytes'][d], lo['token_bytes'][d])} as much."
    ]


def _plateau(line: dict[str, Any]) -> tuple[int, int] | None:
    """(first context where the line stops growing, its value) when it flattens before its end."""
    xs, ys = line["x"], line["y"]
    if len(ys) < 3 or ys[-1] != ys[-2]:
        return None
    i = len(ys) - 1
    while i > 0 and ys[i - 1] == ys[-1]:
        i -= 1
    return xs[i], ys[-1]


def vllm_window_tokens(window: int) -> int:
    """Tokens vLLM keeps per sliding layer: window − 1 + in-flight tokens, in flight being
    max_concurrent_batches (2) × max_num_batched_tokens (vllm/v1/core/single_type_kv_cache_manager.py
    SlidingWindowManager, with async scheduling; kvcalc.engines.vllm.blocks)."""
    return window - 1 + VLLM_CONCURRENT_BATCHES * Engine().max_num_batched_tokens


def _vllm_window(window: int) -> str:
    """The vLLM sliding-window number, explained: 20,479 = 4,096 − 1 + 2 × 8,192."""
    batched = Engine().max_num_batched_tokens
    return (
        f"vLLM keeps {fmt_int(vllm_window_tokens(window))} = {fmt_int(window)} − 1 + "
        f"{VLLM_CONCURRENT_BATCHES} × {fmt_int(batched)} tokens per sliding layer (the window plus the "
        f"tokens in flight: {VLLM_CONCURRENT_BATCHES} scheduled batches of max_num_batched_tokens "
        f"{fmt_int(batched)})"
    )


def sliding_caps(rows: Sequence[Row], d: str, engine: str = "ideal") -> list[str]:
    """Which models sliding windows cap, and where (under vLLM: where its pages stop growing, and why)."""
    out = []
    for r in rows:
        window = r.get("sliding_window")
        if not window:
            continue
        plateau = _plateau(r["lines"][d])
        if r["growing_layers"] == 0 and plateau and engine == "vllm":
            out.append(
                f"Under vLLM, {r['name']}'s cache stays at {fmt_gib(plateau[1])} past "
                f"{fmt_int(vllm_window_tokens(window))} tokens, however long the context: every layer slides "
                f"over a {fmt_int(window)}-token window and {_vllm_window(window)}."
            )
        elif r["growing_layers"] == 0 and plateau:
            out.append(
                f"{r['name']} stops growing at {fmt_int(plateau[0])} tokens: every layer slides over a "
                f"{fmt_int(window)}-token window, so its cache stays at {fmt_gib(plateau[1])} however long "
                "the context."
            )
        elif r["growing_layers"]:
            slide = r["layers"] - r["growing_layers"] - r["state_layers"]
            vllm = f"; {_vllm_window(window)}" if engine == "vllm" else ""
            out.append(
                f"{r['name']}: {slide} of {r['layers']} layers slide over {fmt_int(window)} tokens, so past "
                f"the window only {r['growing_layers']} layers grow — {fmt_int(r['long_token_bytes'][d])} "
                f"instead of {fmt_int(r['token_bytes'][d])} bytes per token{vllm}."
            )
    return out[:MAX_PER_KIND]


def state_floors(rows: Sequence[Row], d: str, batch: int) -> list[str]:
    """Hybrids: the fixed recurrent state and the layers that still grow."""
    out = []
    for r in rows:
        parts = r["breakdown"][d]
        state = sum(v for k, v in parts.items() if k in STATE_KINDS)
        if not r["state_layers"] or not state:
            continue
        per = "" if batch == 1 else f" for {fmt_int(batch)} sequences"
        grow = (
            f"only its {r['growing_layers']} attention layers grow with context "
            f"({fmt_int(r['long_token_bytes'][d])} bytes per token)"
            if r["growing_layers"]
            else "nothing grows with context"
        )
        out.append(
            f"{r['name']} keeps a fixed {fmt_gib(state)} of recurrent state in {r['state_layers']} layers"
            f"{per}, whatever the context; {grow}."
        )
    return out[:MAX_PER_KIND]


def _share(x: float) -> str:
    """A fraction as a percentage, with as many decimals as it takes not to read 50% when it is not."""
    for digits in range(5):
        text = f"{x:.{digits}%}"
        if float(text.rstrip("%")) != 50 or x == 0.5:
            return text
    return f"{x:.6%}"


def fp8_savings(rows: Sequence[Row], dtypes: Sequence[str]) -> list[str]:
    """When BF16 and FP8 are both shown, one sentence: whose cache FP8 exactly halves, and what it
    saves on the others (part of their cache keeps its own precision)."""
    if "bf16" not in dtypes or "fp8" not in dtypes:
        return []
    halved = [r for r in rows if r["cache"]["bf16"] and r["cache"]["fp8"] * 2 == r["cache"]["bf16"]]
    partial = [r for r in rows if r["cache"]["bf16"] and r not in halved]
    if not halved and not partial:
        return []
    saved = [f"{_share(1 - r['cache']['fp8'] / r['cache']['bf16'])} on {r['name']}" for r in partial]
    if len(saved) > 4:
        saved = [*saved[:4], f"less than half on {len(saved) - 4} more"]
    text = ", ".join(saved[:-1]) + (" and " if len(saved) > 1 else "") + (saved[-1] if saved else "")
    their = "its" if len(partial) == 1 else "their"
    why = f"it saves {text}, not half: part of {their} cache (state or scales) keeps its own precision"
    if not halved:
        return [f"FP8 {why.removeprefix('it ')}."]
    if not partial:
        return [f"FP8 exactly halves the cache of {_names(halved)}."]
    return [f"FP8 exactly halves the cache of {_names(halved)}; {why}."]


def gpu_fit(
    rows: Sequence[Row],
    dtypes: Sequence[str],
    ctx: str,
    batch: int,
    gpu: dict[str, Any] | None,
    tp: int = 1,
    engine: str = "ideal",
) -> list[str]:
    """Which models fit on the chosen GPU (the row's "fits": weights per GPU + cache, plus vLLM's own
    reserve under vLLM), and what FP8 rescues."""
    if gpu is None or not rows:
        return []
    d = dtypes[0]
    where = (
        f"one {gpu['name']}, {fmt_gib(gpu['bytes'])},"
        if tp == 1
        else (f"each of {tp} × {gpu['name']} (tensor parallel), {fmt_gib(gpu['bytes'])} each,")
    )
    load = f"{ctx} × batch {fmt_int(batch)}"
    reserve = ", vLLM's reserve" if engine == "vllm" else ""
    known = [r for r in rows if r["fits"][d] is not None]
    over = [r for r in rows if r["cache"][d] > gpu["bytes"]]
    alone = f"the {_dt(d)} cache alone of {_names(over)} outgrows" if over else ""
    out = []
    if known:
        fit = [r for r in known if r["fits"][d]]
        why = f"; {alone} it." if over else "."  # said with the fit, not as a second "At …" sentence
        if fit:
            out.append(
                f"At {load}, {len(fit)} of {len(known)} models fit on {where} with weights{reserve} and "
                f"{_dt(d)} cache: {_names(fit)}{why}"
            )
        else:
            with_all = f"with weights{reserve} and {_dt(d)} cache"
            out.append(f"At {load}, none of the models fit on {where} {with_all}{why}")
        for other in dtypes[1:]:
            rescued = [r for r in known if not r["fits"][d] and r["fits"][other]]
            if rescued:
                out.append(f"With an {_dt(other)} cache, {_names(rescued)} fit as well.")
    elif over:
        out.append(f"At {load}, {alone} {where.rstrip(',')}.")
    return out


def spread(rows: Sequence[Row], d: str, ctx: str) -> list[str]:
    """Largest and smallest cache in the selection, among the models that reach the context (one past
    its max context is never "the smallest": it would not serve that many tokens)."""
    sized = [r for r in rows if r["cache"][d] and not r.get("beyond_max")]
    if len(sized) < 2:
        return []
    hi = max(sized, key=lambda r: r["cache"][d])
    lo = min(sized, key=lambda r: r["cache"][d])
    if hi["cache"][d] == lo["cache"][d]:  # one model would be named as both largest and smallest
        return [f"At {ctx}, {_names(sized)} hold the same {_dt(d)} cache: {fmt_gib(hi['cache'][d])} each."]
    return [
        f"At {ctx}, the largest {_dt(d)} cache is {hi['name']}'s ({fmt_gib(hi['cache'][d])}), "
        f"{_times(hi['cache'][d], lo['cache'][d])} the smallest, {lo['name']}'s ({fmt_gib(lo['cache'][d])})."
    ]


def beyond_max(rows: Sequence[Row], ctx: str) -> list[str]:
    """Models asked about past their max_position_embeddings."""
    over = [r for r in rows if r.get("beyond_max")]
    if not over:
        return []
    detail = ", ".join(f"{r['name']} ({fmt_tokens(r['max_context'])})" for r in over)
    return [f"{ctx} is past the max context of {detail}: their numbers are what the cache would hold."]


def insights(
    rows: Sequence[Row],
    dtypes: Sequence[str],
    seq_len: int,
    batch: int,
    gpu: dict[str, Any] | None,
    tp: int = 1,
    engine: str = "ideal",
) -> list[dict[str, str]]:
    """All insights for the selection, most important first: a caveat on the numbers (past a model's
    max context), what fits the GPU, the spread of the selection, then why (MLA, per-token efficiency,
    windows, states, FP8). Nothing is said twice: the spread and the per-token extremes are one
    sentence when they name the same two models, and are left to the MLA sentence when that already
    compares those two (an MLA model against its full-attention reference); the MLA average is left
    out when it only restates such a pair (one full-attention model to average over)."""
    if not rows or not dtypes:
        return []
    d, ctx = dtypes[0], f"{fmt_tokens(seq_len)} tokens"
    pairs = mla_pairs(rows, d)
    by_cache, by_token = _cache_ends(rows, d), _token_ends(rows, d)
    extremes = [] if _said_by_mla(by_cache, pairs) else spread(rows, d, ctx)
    efficiency = [] if _said_by_mla(by_token, pairs) else most_least_efficient(rows, d)
    if extremes and efficiency and _same_extremes(rows, d):
        efficiency, extremes = [f"{efficiency[0]} {extremes[0]}"], []
    average = (
        []
        if _average_restated(rows, d, pairs, by_token if efficiency else None)
        else (mla_vs_mha_average(rows, d))
    )
    groups = (
        ("context", beyond_max(rows, ctx)),
        ("fit", gpu_fit(rows, dtypes, ctx, batch, gpu, tp, engine)),
        ("spread", extremes),
        ("efficiency", efficiency),
        ("mla", mla_vs_gqa(rows, d, ctx)),
        ("mla", average),
        ("sliding", sliding_caps(rows, d, engine)),
        ("state", state_floors(rows, d, batch)),
        ("fp8", fp8_savings(rows, dtypes)),
    )
    return [{"kind": kind, "text": text} for kind, texts in groups for text in texts]


Ends = tuple[Row, Row] | None


def _cache_ends(rows: Sequence[Row], d: str) -> Ends:
    """(smallest, largest) cache among the models that reach the context, as :func:`spread` names them."""
    sized = [r for r in rows if r["cache"][d] and not r.get("beyond_max")]
    if len(sized) < 2:
        return None
    return min(sized, key=lambda r: r["cache"][d]), max(sized, key=lambda r: r["cache"][d])


def _token_ends(rows: Sequence[Row], d: str) -> Ends:
    """(least, most) bytes per token, as :func:`most_least_efficient` names them."""
    per = [r for r in rows if r["token_bytes"][d]]
    if len(per) < 2:
        return None
    return min(per, key=lambda r: r["token_bytes"][d]), max(per, key=lambda r: r["token_bytes"][d])


def _said_by_mla(ends: Ends, pairs: Sequence[tuple[list[Row], Row]]) -> bool:
    """Is the smaller end an MLA model and the larger end its full-attention reference (so
    :func:`mla_vs_gqa` already says both sizes, the ratio and the bytes per token)?"""
    if ends is None or ends[0] is ends[1]:
        return False
    lo, hi = ends
    return any(other is hi and any(r is lo for r in same) for same, other in pairs)


def _average_restated(
    rows: Sequence[Row], d: str, pairs: Sequence[tuple[list[Row], Row]], shown_ends: Ends
) -> bool:
    """Would :func:`mla_vs_mha_average` only repeat another sentence? Yes when it averages over one
    full-attention model and either the MLA sentence compares every MLA model with it, or the shown
    per-token extremes are that model and the MLA models (all of one size)."""
    std = [r for r in rows if _standard(r) and r["token_bytes"][d]]
    mla = [r for r in rows if r["attention"] == "MLA" and r["token_bytes"][d]]
    if len(std) != 1 or not mla:
        return False
    if pairs and all(other is std[0] for _, other in pairs):
        return True
    if shown_ends is None or len({r["token_bytes"][d] for r in mla}) != 1:
        return False
    named = {id(r) for r in shown_ends}
    return id(std[0]) in named and any(id(r) in named for r in mla)


def _same_extremes(rows: Sequence[Row], d: str) -> bool:
    """Do :func:`spread` and :func:`most_least_efficient` name the same two models?"""
    by_cache, by_token = _cache_ends(rows, d), _token_ends(rows, d)
    if by_cache is None or by_token is None:
        return False
    return by_cache[0] is by_token[0] and by_cache[1] is by_token[1]
