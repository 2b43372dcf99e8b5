#!/usr/bin/env python3
"""Time kvcalc.web.compute for the page's typical requests, in CPython, as the page sends them.

    python3 bench/compute_profile.py [--repeat N] [--profile KIND] [--compare DIR]

The page's session: the default compare request (build.site_data: the default models, bf16 + fp8,
ideal, no lines cached yet), then control changes sent the way app.js sends them (models by id only,
``lines: false`` once the page holds the lines): a context change, a dtype change, a GPU change, an
engine change (vLLM) and a context change under vLLM. Each kind is timed as the median of N sessions,
each in a fresh interpreter state (web._cache cleared), so memoised results count as they do on the
page: carried over from the earlier requests of the same session only. ``--profile KIND`` prints
cProfile's top functions for that request kind; ``--compare DIR`` also times another checkout's
kvcalc (e.g. main) in a subprocess, interleaved, and prints both columns.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(os.environ.get("PYTHONPATH") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))

import build  # noqa: E402
from kvcalc import web  # noqa: E402


def session() -> list[tuple[str, dict[str, Any]]]:
    """(kind, request) in the order the page sends them."""
    entries = build.model_entries()
    by_id = {e["id"]: e for e in entries}
    ids = build.default_ids(entries)
    first = {
        **web.DEFAULT_REQUEST,
        "models": [{k: by_id[i][k] for k in ("id", "name", "config")} for i in ids],
    }
    base = {**web.DEFAULT_REQUEST, "models": [{"id": i} for i in ids], "lines": False}
    return [
        ("default (parse + lines)", first),
        ("context 131072 → 32768", {**base, "seq_len": 32768}),
        ("context 32768 → 1048576", {**base, "seq_len": 1048576}),
        (
            "dtype + fp8_e5m2",
            {**base, "seq_len": 1048576, "kv_dtypes": ["bf16", "fp8", "fp8_e5m2"], "lines": True},
        ),
        ("GPU → A100 40G", {**base, "seq_len": 1048576, "gpu": "a100-40gb"}),
        ("engine → vLLM", {**base, "engine": "vllm", "lines": True}),
        ("vLLM context → 32768", {**base, "engine": "vllm", "seq_len": 32768}),
        ("vLLM GPU → A100 40G", {**base, "engine": "vllm", "seq_len": 32768, "gpu": "a100-40gb"}),
    ]


def times(repeat: int, profile: str | None) -> dict[str, list[float]]:
    """ms per request kind over ``repeat`` sessions."""
    reqs = session()
    out: dict[str, list[float]] = {k: [] for k, _ in reqs}
    for n in range(repeat):
        web._cache.clear()
        for kind, req in reqs:
            text = json.dumps(req)
            prof = cProfile.Profile() if profile == kind and n == repeat - 1 else None
            t0 = time.perf_counter()
            if prof:
                prof.enable()
            answer = web.compute(text)
            if prof:
                prof.disable()
            out[kind].append((time.perf_counter() - t0) * 1000)
            if not json.loads(answer)["ok"]:
                raise SystemExit(f"{kind}: {answer[:300]}")
            if prof:
                pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", help="a request kind to profile with cProfile")
    parser.add_argument("--compare", help="another checkout whose kvcalc to time as well (e.g. /work/main)")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # one round, as JSON
    args = parser.parse_args()
    if args.json:
        print(json.dumps(times(args.repeat, None)))
        return
    other: dict[str, list[float]] = {}
    mine: dict[str, list[float]] = {}
    for _ in range(args.repeat):  # interleaved, so both see the same machine load
        if args.compare:
            env = {**os.environ, "PYTHONPATH": args.compare}
            cmd = [sys.executable, __file__, "--json", "--repeat", "1"]
            got = json.loads(subprocess.run(cmd, env=env, cwd=args.compare, capture_output=True, text=True,
                                            check=True).stdout)  # fmt: skip
            for k, v in got.items():
                other.setdefault(k, []).extend(v)
        for k, v in times(1, args.profile).items():
            mine.setdefault(k, []).extend(v)
    med = lambda ts: f"{statistics.median(ts):.1f}"  # noqa: E731
    if args.compare:
        print(f"| request | {args.compare} ms | this checkout ms |")
        print("|---|---|---|")
        for kind, ts in mine.items():
            print(f"| {kind} | {med(other[kind])} | {med(ts)} |")
    else:
        print("| request | median ms |")
        print("|---|---|")
        for kind, ts in mine.items():
            print(f"| {kind} | {med(ts)} |")


if __name__ == "__main__":
    main()
