"""docs/validation.md and .json are current (regenerate them: ``python3 scripts/gen_validation.py``).

Every row is checked against the current kvcalc: the stored transformers measurements are kept, kvcalc's
side (cache bytes at every length, batch, dtype, prefill and decode step; parameter count) is recomputed
and both files are re-rendered in memory — they must be byte-identical to the committed ones. That is
cheap and covers every model and every cell.

Re-measuring transformers for every model × 24 settings costs many minutes on 2 cores (and
tests/test_transformers_validation.py already checks every catalog model at the same lengths), so the
``transformers``-marked drift test re-measures a deterministic subset: the first model of each
``model_type`` in catalog order, at 1 token in bf16 (batch 1, prefill) and at 300 tokens in fp32 at
batch 2, after the prefill and after one decode step (one run gives both), plus its parameter count;
the installed torch/transformers versions must be the ones the file states.
"""

from __future__ import annotations

import json

import pytest

from kvcalc.core.catalog import load_catalog
from scripts import gen_validation as gen

CATALOG = load_catalog()
COMMITTED = json.loads(gen.JSON_PATH.read_text(encoding="utf-8"))
SUBSET_SETTINGS = [(1, 1, "bf16", 0), (300, 2, "fp32", 0), (300, 2, "fp32", 1)]


def _subset() -> list[str]:
    """The first catalog entry of each model_type, in catalog order."""
    seen: dict[str, str] = {}
    for entry in CATALOG:
        seen.setdefault(entry.model().model_type, entry.id)
    return list(seen.values())


def test_every_catalog_model_is_in_the_doc() -> None:
    assert list(COMMITTED["models"]) == [e.id for e in CATALOG]
    assert COMMITTED["seq_lens"] == list(gen.SEQ_LENS) and COMMITTED["dtypes"] == list(gen.DTYPES)
    assert COMMITTED["batches"] == [1, 2] and COMMITTED["decode_steps"] == [0, 1]
    for row in COMMITTED["models"].values():
        assert [gen.setting(c) for c in row["cache"]] == gen.SETTINGS


def test_every_cell_is_exact() -> None:
    """No row is 'approximately': every stored cell and parameter count is equal on both sides."""
    wrong = [
        (model_id, gen.setting(c))
        for model_id, row in COMMITTED["models"].items()
        for c in row["cache"]
        if c["kvcalc"] != c["transformers"]
    ]
    assert not wrong
    assert all(r["params"]["kvcalc"] == r["params"]["transformers"] for r in COMMITTED["models"].values())


def test_kvcalc_side_and_rendering_have_not_drifted() -> None:
    """Recompute kvcalc's numbers for every row, re-render: both files must be unchanged."""
    refreshed = gen.refresh(COMMITTED, CATALOG)
    stale = "out of date: run scripts/gen_validation.py"
    assert gen.to_json(refreshed) == gen.JSON_PATH.read_text(encoding="utf-8"), stale
    assert gen.render(refreshed) == gen.MD_PATH.read_text(encoding="utf-8"), stale


def test_summary_line_counts_exact_models() -> None:
    summary = COMMITTED["summary"]
    assert summary["exact"] == sum(r["exact"] for r in COMMITTED["models"].values())
    text = gen.MD_PATH.read_text(encoding="utf-8")
    assert f"**{summary['exact']} of {summary['models']} models are measured exact**" in text


@pytest.mark.transformers
def test_versions_are_the_installed_ones() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    assert {k: COMMITTED[k] for k in ("torch", "transformers")} == gen.versions(), "regenerate the doc"


@pytest.mark.transformers
@pytest.mark.parametrize("model_id", _subset())
def test_transformers_side_has_not_drifted(model_id: str) -> None:
    """Re-measure on the meta device: the stored transformers numbers still hold (subset, see above)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    entry = CATALOG.get(model_id)
    row = gen.measure_model(entry, SUBSET_SETTINGS)
    stored = {gen.setting(c): c["transformers"] for c in COMMITTED["models"][model_id]["cache"]}
    measured = {gen.setting(c): c["transformers"] for c in row["cache"]}
    assert measured == {s: stored[s] for s in SUBSET_SETTINGS}
    assert row["params"]["transformers"] == COMMITTED["models"][model_id]["params"]["transformers"]
