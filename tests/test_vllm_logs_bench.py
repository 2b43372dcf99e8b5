"""bench/vllm_logs.py's targets (issue 13), so a change that worsens kvcalc against published logs fails.

Exact part: every printed number reproduced, except where the log hides a setting (`# unseen:`). Full
prediction: median |error| on "GPU KV cache size" ≤ 1 % and ≥ 80 % of runs within 3 %, excluding runs the
benchmark excludes with a stated reason.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import vllm_logs  # noqa: E402


def test_published_logs_targets() -> None:
    runs = vllm_logs.runs()
    assert len(runs) >= 25
    exact = [ok for r in runs if not r.log.header.get("unseen") for ok in r.exact.values()]
    assert exact and all(exact)
    errors = [abs(r.error) for r in runs if r.error is not None and not r.excluded]
    assert len(errors) >= 15
    assert statistics.median(errors) <= 0.01
    assert sum(e <= 0.03 for e in errors) >= 0.8 * len(errors)
    for r in runs:
        if r.excluded:
            assert len(r.excluded) > 10  # a stated reason
    table = vllm_logs.table(runs)
    assert table.count("\n| 0") == len(runs) and "median |error|" in table
