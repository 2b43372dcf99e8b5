#!/usr/bin/env python3
"""Generate docs/validation.md and docs/validation.json: kvcalc vs transformers for every preloaded model.

    python3 scripts/gen_validation.py            # rewrite both files (needs the measure extra)
    python3 scripts/gen_validation.py --check    # exit 1 if the committed files are out of date
    python3 scripts/gen_validation.py --refresh  # kvcalc's side only, stored measurements kept (seconds)

For every model of model_configs.json, at each of SEQ_LENS prompt tokens, in bf16 and fp32, at batch 1
and 2, after the prefill and after one more decode step: ``kv_cache_bytes(engine="transformers")`` at the
tokens the cache has seen (prompt, or prompt + 1 after the decode step; encoder-decoder models at the
encoder length that was fed) against the bytes of the cache transformers returns on the ``meta`` device
(:func:`kvcalc.measure.run.measure_cache`, ``method="meta"``, ``decode_steps`` 0 or 1); and
``count_params(model).total`` against ``sum(p.numel() for p in model.parameters())`` of the causal LM
transformers builds on the meta device. Output is deterministic: no timestamps, versions stated.

:func:`collect` measures; :func:`render` turns its data (the JSON written to docs/validation.json) into
the markdown, and :func:`refresh` recomputes only kvcalc's side of stored data — so a test can check
every row against the current kvcalc cheaply and re-measure transformers on a subset.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import kvcalc  # noqa: E402
from kvcalc.core.catalog import CatalogEntry, load_catalog  # noqa: E402

MD_PATH = ROOT / "docs" / "validation.md"
JSON_PATH = ROOT / "docs" / "validation.json"
SEQ_LENS = (1, 300, 5000)  # 5000 is past every sliding window of the set (gpt-oss 128, Mistral 4096)
DTYPES = ("bf16", "fp32")
BATCHES = (1, 2)
DECODE_STEPS = (0, 1)  # 0: right after the prefill; 1: after one more (one-token) forward pass
Setting = tuple[int, int, str, int]  # (prompt tokens, batch, dtype, decode steps)
SETTINGS: list[Setting] = [
    (n, b, d, k) for d in DTYPES for b in BATCHES for n in SEQ_LENS for k in DECODE_STEPS
]


# ------------------------------------------------------------------------------------------------
# kvcalc's side (stdlib)


def kinds_label(model: kvcalc.Model) -> str:
    """E.g. ``36× gated_deltanet + 12× full``."""
    return " + ".join(f"{n}× {kind}" for kind, n in model.kinds().items())


def setting(cell: Mapping[str, Any]) -> Setting:
    """(seq_len, batch, dtype, decode) of a cache cell."""
    return cell["seq_len"], cell["batch"], cell["dtype"], cell["decode"]


def predicted_bytes(model: kvcalc.Model, cell: Mapping[str, Any]) -> int:
    """kvcalc's transformers-engine cache bytes for a cell: the cache has seen ``seq_len + decode`` tokens
    (sliding layers keep ``min(tokens, window - 1)``, states do not grow); encoder-decoder models at the
    encoder length the measurement fed (``encoder_len``), which a decode step does not change."""
    return kvcalc.kv_cache_bytes(
        model,
        cell["seq_len"] + cell["decode"],
        batch_size=cell["batch"],
        kv_dtype=cell["dtype"],
        engine="transformers",
        encoder_seq_len=cell.get("encoder_len"),
    )


def refresh(data: dict[str, Any], entries: Iterable[CatalogEntry]) -> dict[str, Any]:
    """A copy of data whose kvcalc numbers (and verdicts) are recomputed; measured numbers kept."""
    out = copy.deepcopy(data)
    by_id = {e.id: e for e in entries}
    for model_id, row in out["models"].items():
        model = by_id[model_id].model()
        row["kinds"] = kinds_label(model)
        for cell in row["cache"]:
            cell["kvcalc"] = predicted_bytes(model, cell)
        row["params"]["kvcalc"] = kvcalc.count_params(model).total
        _verdicts(row)
    _summary(out)
    return out


def _verdicts(row: dict[str, Any]) -> None:
    for cell in row["cache"]:
        cell["exact"] = cell["kvcalc"] == cell["transformers"]
    row["params"]["exact"] = row["params"]["kvcalc"] == row["params"]["transformers"]
    row["cache_exact"] = all(c["exact"] for c in row["cache"])
    row["params_exact"] = row["params"]["exact"]
    row["exact"] = row["cache_exact"] and row["params_exact"]


def _summary(data: dict[str, Any]) -> None:
    rows = data["models"].values()
    data["summary"] = {
        "models": len(rows),
        "cells": sum(len(r["cache"]) for r in rows),
        "cells_exact": sum(c["exact"] for r in rows for c in r["cache"]),
        "exact": sum(r["exact"] for r in rows),
        "cache_exact": sum(r["cache_exact"] for r in rows),
        "params_exact": sum(r["params_exact"] for r in rows),
    }


# ------------------------------------------------------------------------------------------------
# transformers' side (torch, lazily)


def transformers_params(config: Mapping[str, Any]) -> int:
    """Parameters of the model transformers builds for config on the meta device (tied once): the causal
    LM, or the seq2seq model of an encoder-decoder (the class whose cache is measured)."""
    from kvcalc.measure import run as measure

    return measure.count_parameters(dict(config))


def measure_model(entry: CatalogEntry, settings: Iterable[Setting] = SETTINGS) -> dict[str, Any]:
    """One model's row: cache bytes at every setting and the parameter count, both sides.

    A prefill and the decode step after it come from one run (the prefill is measured before the step).
    """
    from kvcalc.measure import run as measure

    model = entry.model()
    config = dict(entry.config)
    settings = list(settings)
    steps: dict[tuple[int, int, str], int] = {}
    for n, b, d, k in settings:
        steps[n, b, d] = max(k, steps.get((n, b, d), 0))
    cache = []
    for n, b, d, k in settings:
        measure.measure_cache(config, n, b, d, method="meta", decode_steps=steps[n, b, d])  # one run
        measured = measure.measure_cache(config, n, b, d, method="meta", decode_steps=k)
        cell: dict[str, Any] = {"seq_len": n, "batch": b, "dtype": d, "decode": k}
        if measured.encoder_len is not None:
            cell["encoder_len"] = measured.encoder_len
        cell |= {"kvcalc": predicted_bytes(model, cell), "transformers": measured.total}
        cache.append(cell)
    params = {"kvcalc": kvcalc.count_params(model).total, "transformers": transformers_params(config)}
    row = {"name": entry.name, "model_type": model.model_type, "kinds": kinds_label(model)}
    row |= {"seq_lens": sorted({s[0] for s in settings}), "dtypes": sorted({s[2] for s in settings})}
    row |= {"batches": sorted({s[1] for s in settings}), "decode_steps": sorted({s[3] for s in settings})}
    row |= {"cache": cache, "params": params}
    _verdicts(row)
    return row


def versions() -> dict[str, str]:
    """torch and transformers versions the measurements come from."""
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__}


def collect(entries: Iterable[CatalogEntry], progress: bool = False) -> dict[str, Any]:
    """The whole validation data set (what docs/validation.json holds)."""
    data: dict[str, Any] = {
        "generated_by": "scripts/gen_validation.py",
        **versions(),
        "seq_lens": list(SEQ_LENS),
        "dtypes": list(DTYPES),
        "batches": list(BATCHES),
        "decode_steps": list(DECODE_STEPS),
        "models": {},
    }
    for entry in entries:
        start = time.perf_counter()
        data["models"][entry.id] = measure_model(entry)
        if progress:
            row = data["models"][entry.id]
            verdict = "exact" if row["exact"] else "DIFF"
            print(f"{entry.name}: {verdict} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    _summary(data)
    return data


def add_missing(data: dict[str, Any], entries: Iterable[CatalogEntry]) -> dict[str, Any]:
    """data plus a measured row for every catalog model it lacks (rows in catalog order), refreshed."""
    entries = list(entries)
    rows = dict(data["models"])
    for entry in entries:
        if entry.id not in rows:
            start = time.perf_counter()
            rows[entry.id] = measure_model(entry)
            verdict = "exact" if rows[entry.id]["exact"] else "DIFF"
            print(f"{entry.name}: {verdict} ({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    out = {**data, "models": {e.id: rows[e.id] for e in entries}}
    return refresh(out, entries)


# ------------------------------------------------------------------------------------------------
# rendering


def _and(items: list[str]) -> str:
    """``a, b and c``."""
    *head, last = items
    return f"{', '.join(head)} and {last}" if head else last


def _cell(cell: Mapping[str, Any]) -> str:
    if cell["exact"]:
        return f"{cell['kvcalc']:,}"
    diff = cell["kvcalc"] - cell["transformers"]
    return f"kvcalc {cell['kvcalc']:,} ≠ {cell['transformers']:,} ({diff:+,})"


def _verdict(exact: bool) -> str:
    return "exact" if exact else "**DIFF**"


def _overview(data: Mapping[str, Any]) -> list[str]:
    lines = [
        "| model | layer kinds (kvcalc) | cache bytes | parameters | measured |",
        "|---|---|---|---|---|",
    ]
    for row in data["models"].values():
        lines.append(
            f"| {row['name']} | {row['kinds']} | {_verdict(row['cache_exact'])} | "
            f"{_verdict(row['params_exact'])} | {'✔ measured exact' if row['exact'] else '✘ differs'} |"
        )
    return lines


def _column(seq_len: int, decode: int) -> str:
    """Column head: ``300 prefill`` or ``300 + 1 decode`` (prompt tokens, then decode steps)."""
    return f"{seq_len:,} prefill" if not decode else f"{seq_len:,} + {decode} decode"


def _cache_table(data: Mapping[str, Any]) -> list[str]:
    columns = [(n, k) for n in data["seq_lens"] for k in data["decode_steps"]]
    heads = " | ".join(_column(n, k) for n, k in columns)
    rule = "|---|---|---:|" + "---:|" * len(columns) + "---|"
    lines = [f"| model | dtype | batch | {heads} | cache |", rule]
    for row in data["models"].values():
        by_setting = {setting(c): c for c in row["cache"]}
        for dtype in data["dtypes"]:
            for batch in data["batches"]:
                cells = [by_setting[n, batch, dtype, k] for n, k in columns]
                lines.append(
                    f"| {row['name']} | {dtype} | {batch} | "
                    + " | ".join(_cell(c) for c in cells)
                    + f" | {_verdict(all(c['exact'] for c in cells))} |"
                )
    return lines


def _params_table(data: Mapping[str, Any]) -> list[str]:
    lines = [
        "| model | kvcalc `count_params().total` | transformers (meta) | parameters |",
        "|---|---:|---:|---|",
    ]
    for row in data["models"].values():
        p = row["params"]
        diff = "" if p["exact"] else f" ({p['kvcalc'] - p['transformers']:+,})"
        lines.append(
            f"| {row['name']} | {p['kvcalc']:,} | {p['transformers']:,} | {_verdict(p['exact'])}{diff} |"
        )
    return lines


def render(data: Mapping[str, Any]) -> str:
    """docs/validation.md from the data :func:`collect` returns."""
    s = data["summary"]
    lens = _and([f"{n:,}" for n in data["seq_lens"]])
    batches = _and([str(b) for b in data["batches"]])
    different = [r["name"] for r in data["models"].values() if not r["exact"]]
    lines = [
        "# kvcalc vs transformers: measured validation",
        "",
        "<!-- generated by scripts/gen_validation.py: do not edit by hand; tests/test_validation_doc.py "
        "fails when it drifts -->",
        "",
        f"Measured with torch {data['torch']} and transformers {data['transformers']}. For every preloaded "
        f"model (`model_configs.json`), each model is built from its config.json on PyTorch's `meta` device "
        f"(shapes and dtypes, no memory, no download), a forward pass (prefill) of each of {lens} tokens "
        f"is run with `use_cache=True` at batch {batches} in {' and '.join(data['dtypes'])}, then one "
        "decode step (a one-token forward pass that is fed the returned cache, as `generate()` does). "
        "After the prefill and again after the decode step, every tensor of the cache is summed "
        "(`numel × element_size`, each tensor once). That is compared with "
        '`kvcalc.kv_cache_bytes(model, tokens, batch_size=…, kv_dtype=…, engine="transformers")` where '
        "`tokens` is the prompt length after the prefill and the prompt length + 1 after the decode step "
        "(encoder-decoder models: `encoder_seq_len` = the encoder length fed — T5 the prompt length, "
        "Whisper its fixed 1,500 frames — which a decode step does not change). "
        "The parameter count `kvcalc.count_params(model).total` is compared with "
        "`sum(p.numel() for p in model.parameters())` of the causal LM transformers builds on the meta "
        "device (tied weights once).",
        "",
        f"**{s['exact']} of {s['models']} models are measured exact** — cache bytes at every length, "
        f"batch and dtype, after the prefill and after the decode step ({s['cells']} cache cells, "
        f"{s['cells_exact']} exact), and the parameter count "
        f"({s['cache_exact']}/{s['models']} exact on cache bytes, "
        f"{s['params_exact']}/{s['models']} on parameters)."
        + (f" Differences: {', '.join(different)}." if different else ""),
        "",
        "To see a cache in real memory and the decoding speedup it buys, run a model for real (random "
        "weights, CPU): `kvcalc measure small` or `kvcalc measure Qwen3-Next-80B-A3B-Thinking --layers 4`.",
        "",
        "## Summary",
        "",
        *_overview(data),
        "",
        "## Cache bytes (kvcalc = transformers when a cell shows one number)",
        "",
        "`N prefill`: the cache right after a forward pass of N prompt tokens. `N + 1 decode`: the same "
        "cache after one more one-token step (it has seen N + 1 tokens; sliding layers keep "
        "min(N + 1, window − 1), recurrent states do not grow).",
        "",
        *_cache_table(data),
        "",
        "## Parameters",
        "",
        *_params_table(data),
        "",
        "Regenerate: `python3 scripts/gen_validation.py` (needs `pip install kvcalc[measure]`).",
        "",
    ]
    return "\n".join(lines)


def to_json(data: Mapping[str, Any]) -> str:
    """docs/validation.json text (stable key order, trailing newline)."""
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    """Write (or, with --check, verify) docs/validation.md and docs/validation.json."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files differ")
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="recompute kvcalc's side only, keeping the stored transformers measurements (no torch)",
    )
    parser.add_argument(
        "--missing",
        action="store_true",
        help="measure only the models docs/validation.json lacks; refresh kvcalc's side of the rest",
    )
    args = parser.parse_args(argv)
    if args.missing:
        data = add_missing(json.loads(JSON_PATH.read_text(encoding="utf-8")), load_catalog())
    elif args.refresh:
        data = refresh(json.loads(JSON_PATH.read_text(encoding="utf-8")), load_catalog())
    else:
        data = collect(load_catalog(), progress=True)
    md, js = render(data), to_json(data)
    if args.check:
        stale = [
            p.name for p, text in ((MD_PATH, md), (JSON_PATH, js)) if p.read_text(encoding="utf-8") != text
        ]
        if stale:
            print(f"out of date: {', '.join(stale)} (run scripts/gen_validation.py)", file=sys.stderr)
            return 1
        return 0
    MD_PATH.write_text(md, encoding="utf-8")
    JSON_PATH.write_text(js, encoding="utf-8")
    s = data["summary"]
    print(
        f"wrote {MD_PATH.relative_to(ROOT)}, {JSON_PATH.relative_to(ROOT)}: {s['exact']}/{s['models']} exact"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
