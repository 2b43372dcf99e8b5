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


def mla_vs_gqa(rows: Sequence[Row], d: str, ctx: str) -> list[str]:
    """How much less each MLA model stores than the GQA model nearest to it in size."""
    gqa = [r for r in rows if r["attention"] in _PURE_ATTENTION and r["cache"][d]]
    if not gqa:
        return []
    groups: dict[tuple[int, str], list[Row]] = {}
    for r in (r for r in rows if r["attention"] == "MLA"):
        other = min(gqa, key=lambda g: abs(math.log(_size(g) / _size(r))))
        groups.setdefault((r["cache"][d], other["id"]), []).append(r)
    out = []
    for (a, other_id), same in groups.items():
        other = next(g for g in gqa if g["id"] == other_id)
        b = other["cache"][d]
        basis = "parameter count" if all(x.get("params") for x in [*same, other]) else "depth"
        rel = f"{_times(b, a)} less than" if b >= a else f"{_times(a, b)} more than"
        verb = "stores" if len(same) == 1 else "each store"
        out.append(
            f"{_names(same)} (MLA) {verb} {fmt_gib(a)} at {ctx} in {_dt(d)} — {rel} {other['name']} "
            f"({other['attention']}, {fmt_gib(b)}), the nearest full-attention model by {basis}: "
            f"{fmt_int(same[0]['token_bytes'][d])} vs {fmt_int(other['token_bytes'][d])} bytes per token."
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


def fp8_savings(rows: Sequence[Row], dtypes: Sequence[str]) -> list[str]:
    """When BF16 and FP8 are both shown: which caches FP8 does not exactly halve."""
    if "bf16" not in dtypes or "fp8" not in dtypes:
        return []
    halved = [r for r in rows if r["cache"]["bf16"] and r["cache"]["fp8"] * 2 == r["cache"]["bf16"]]
    partial = [r for r in rows if r["cache"]["bf16"] and r not in halved]
    out = []
    if halved:
        out.append(f"FP8 exactly halves the cache of {_names(halved)}.")
    for r in partial[:MAX_PER_KIND]:
        saved = 1 - r["cache"]["fp8"] / r["cache"]["bf16"]
        out.append(
            f"FP8 saves {saved:.0%} on {r['name']}, not 50%: part of its cache (state or scales) keeps "
            "its own precision."
        )
    return out


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
    out = []
    if known:
        fit = [r for r in known if r["fits"][d]]
        if fit:
            out.append(
                f"At {load}, {len(fit)} of {len(known)} models fit on {where} with weights{reserve} and "
                f"{_dt(d)} cache: {_names(fit)}."
            )
        else:
            with_all = f"with weights{reserve} and {_dt(d)} cache"
            out.append(f"At {load}, none of the models fit on {where} {with_all}.")
        for other in dtypes[1:]:
            rescued = [r for r in known if not r["fits"][d] and r["fits"][other]]
            if rescued:
                out.append(f"With an {_dt(other)} cache, {_names(rescued)} fit as well.")
    over = [r for r in rows if r["cache"][d] > gpu["bytes"]]
    if over:
        out.append(f"At {load}, the {_dt(d)} cache alone of {_names(over)} outgrows {where.rstrip(',')}.")
    return out


def spread(rows: Sequence[Row], d: str, ctx: str) -> list[str]:
    """Largest and smallest cache in the selection, among the models that reach the context (one past
    its max context is never "the smallest": it would not serve that many tokens)."""
    sized = [r for r in rows if r["cache"][d] and not r.get("beyond_max")]
    if len(sized) < 2:
        return []
    hi = max(sized, key=lambda r: r["cache"][d])
    lo = min(sized, key=lambda r: r["cache"][d])
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
    windows, states, FP8). Near-duplicates are merged: when the per-token extremes are the same two
    models as the cache extremes, one sentence says both."""
    if not rows or not dtypes:
        return []
    d, ctx = dtypes[0], f"{fmt_tokens(seq_len)} tokens"
    extremes = spread(rows, d, ctx)
    efficiency = most_least_efficient(rows, d)
    if extremes and efficiency and _same_extremes(rows, d):
        efficiency, extremes = [f"{efficiency[0]} {extremes[0]}"], []
    groups = (
        ("context", beyond_max(rows, ctx)),
        ("fit", gpu_fit(rows, dtypes, ctx, batch, gpu, tp, engine)),
        ("spread", extremes),
        ("efficiency", efficiency),
        ("mla", mla_vs_gqa(rows, d, ctx)),
        ("mla", mla_vs_mha_average(rows, d)),
        ("sliding", sliding_caps(rows, d, engine)),
        ("state", state_floors(rows, d, batch)),
        ("fp8", fp8_savings(rows, dtypes)),
    )
    return [{"kind": kind, "text": text} for kind, texts in groups for text in texts]


def _same_extremes(rows: Sequence[Row], d: str) -> bool:
    """Do :func:`spread` and :func:`most_least_efficient` name the same two models?"""
    sized = [r for r in rows if r["cache"][d] and not r.get("beyond_max")]
    per = [r for r in rows if r["token_bytes"][d]]
    if len(sized) < 2 or len(per) < 2:
        return False
    big = max(sized, key=lambda r: r["cache"][d]), max(per, key=lambda r: r["token_bytes"][d])
    small = min(sized, key=lambda r: r["cache"][d]), min(per, key=lambda r: r["token_bytes"][d])
    return big[0] is big[1] and small[0] is small[1]
