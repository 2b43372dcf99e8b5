"""Every transformers causal-LM / image-text-to-text model type, built from its config-class defaults.

Marked ``transformers``. For each model type in transformers' ``MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`` and
``MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES``, ``ConfigClass().to_dict()`` is measured by
:mod:`kvcalc.measure.run` (meta device; two spawned workers) at a short and a long prompt, and kvcalc must
either return exactly those bytes (``engine="transformers"``) or refuse with a KVCalcError naming the
model type. A wrong number always fails. Types transformers itself cannot run from its defaults
(encoders without a cache, invalid defaults, models needing images) are skipped with the reason.

The parameter count is checked the same way: ``count_params(model).total`` must equal
``sum(p.numel() for p in model.parameters())`` of the model transformers built for the measurement (same
class, meta device, tied weights once) or raise a KVCalcError; a wrong count always fails.

The coverage figure, exact / buildable, must reach 90 % for caches; the parameter figure is printed.

Cost: most types take well under a second per setting. The reference Mamba-1 / RWKV scans (mamba,
falcon_mamba, jamba, zamba, rwkv) loop over every token in Python on meta — zamba needs ~280 CPU
seconds for 5000 tokens — so those five are measured at 40 (b=2) and 120 tokens: their states have no
sequence axis, their attention layers (jamba, zamba) no window, so the short lengths exercise the same
rules. notes/transformers_defaults_measured.json has their 300/5000-token measurements.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import pytest

import kvcalc
from kvcalc.measure import run as measure

pytestmark = [pytest.mark.transformers, pytest.mark.timeout(900)]
if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("needs the measure extra: pip install kvcalc[measure]", allow_module_level=True)

SHORT = (300, 2, "bf16")
LONG = (5000, 1, "bf16")  # past every default window (Mistral/Gemma2/Cohere2 4096, Llama4 chunk 8192 aside)
SEQUENTIAL_SCAN = {"mamba", "falcon_mamba", "jamba", "zamba", "rwkv"}  # O(L) Python loop in the reference
SCAN_SETTINGS = [(40, 2, "bf16"), (120, 1, "bf16")]
TIMEOUT = 240  # seconds per measurement; a timeout is reported as "not measured", never as a pass
MIN_COVERAGE = 0.90
MODEL_TYPES = measure.causal_lm_model_types()


def settings_for(model_type: str) -> measure.Settings:
    """The (seq_len, batch, dtype) settings measured for one model type."""
    return SCAN_SETTINGS if model_type in SEQUENTIAL_SCAN else [SHORT, LONG]


class Survey:
    """Measurements of every model type, produced in order by two worker processes, consumed lazily."""

    def __init__(self, model_types: list[str]) -> None:
        processes = min(2, os.cpu_count() or 1)
        self._pending: Iterator[tuple[str, dict]] = measure.iter_survey_model_types(
            model_types, settings_for, timeout=TIMEOUT, processes=processes
        )
        self.results: dict[str, dict] = {}

    def get(self, model_type: str) -> dict:
        """The survey entry of one model type (waits for it)."""
        while model_type not in self.results:
            name, entry = next(self._pending)
            self.results[name] = entry
        return self.results[model_type]

    def close(self) -> None:
        """Stop the workers."""
        self._pending.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def survey(request: pytest.FixtureRequest) -> Iterator[Survey]:
    """One survey for the module, limited to the selected model types unless the figure is wanted."""
    mine = [item for item in request.session.items if getattr(item, "module", None) is request.module]
    selected = {item.callspec.params["model_type"] for item in mine if hasattr(item, "callspec")}
    wants_all = any(item.name == "test_coverage_figure" for item in mine)
    types = MODEL_TYPES if wants_all else [t for t in MODEL_TYPES if t in selected]
    s = Survey(types)
    yield s
    s.close()


@functools.cache
def default_config(model_type: str) -> dict:
    """transformers' config-class defaults, as the dict kvcalc is given."""
    return measure.default_config_dict(model_type)


def verdict(model_type: str, entry: dict) -> tuple[str, str]:
    """("exact" | "refused" | "wrong" | "unbuildable", detail) for one surveyed model type."""
    if not entry["buildable"]:
        return "unbuildable", entry.get("reason", "")
    config = default_config(model_type)
    names = {model_type, str(config.get("model_type"))} | {
        str(sub.get("model_type"))
        for sub in config.values()
        if isinstance(sub, dict) and sub.get("model_type")
    }
    try:
        model = kvcalc.load_model(config)
    except kvcalc.KVCalcError as exc:
        if any(name in str(exc) for name in names):
            return "refused", str(exc)
        return "wrong", f"KVCalcError does not name the model type ({sorted(names)}): {exc}"
    wrong, refused, matched = [], [], []
    for key, m in entry["measurements"].items():
        seq_len, batch, dtype = key.split("/")
        kw: dict[str, Any] = {"batch_size": int(batch), "kv_dtype": dtype, "engine": "transformers"}
        try:
            ours = kvcalc.kv_cache_bytes(model, int(seq_len), **kw)
        except kvcalc.KVCalcError as exc:
            if not m["beyond_position_table"]:  # past a learned position table transformers fails too
                refused.append(f"{key}: {exc}")
            continue
        if ours == m["total"]:
            matched.append(key)
            continue
        line = f"{key}: kvcalc {ours:,} != transformers {m['total']:,} ({m['kinds']})"
        ours_layers = kvcalc.layer_bytes(model, int(seq_len), **kw)
        if len(ours_layers) == len(m["layer_bytes"]):
            bad = [
                f"layer {i} {kind}: {a:,} != {b:,}"
                for i, (a, b, kind) in enumerate(
                    zip(ours_layers, m["layer_bytes"], m["layer_kinds"], strict=True)
                )
                if a != b
            ]
            line += "; " + "; ".join(bad[:3])
        else:
            line += f"; kvcalc has {len(ours_layers)} layers, the cache {len(m['layer_bytes'])}"
        wrong.append(line)
    if wrong:
        return "wrong", " | ".join(wrong)
    if refused or not matched:
        return "refused", " | ".join(refused) or "every setting refused"
    return "exact", ", ".join(matched)


def params_verdict(model_type: str, entry: dict) -> tuple[str, str]:
    """("exact" | "refused" | "wrong" | "unbuildable", detail) for the parameter count of one type."""
    if "params" not in entry:
        return "unbuildable", entry.get("params_error") or entry.get("reason", "")
    try:
        counted = kvcalc.count_params(kvcalc.load_model(default_config(model_type))).total
    except kvcalc.KVCalcError as exc:
        return "refused", str(exc)
    if counted == entry["params"]:
        return "exact", f"{counted:,}"
    return "wrong", f"kvcalc {counted:,} != transformers {entry['params']:,}"


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_model_type(model_type: str, survey: Survey) -> None:
    """kvcalc equals transformers for this type's defaults (cache bytes and parameter count), or refuses;
    never a wrong number."""
    entry = survey.get(model_type)
    status, detail = verdict(model_type, entry)
    if status == "unbuildable":
        pytest.skip(f"transformers cannot run {model_type} from its defaults: {detail[:300]}")
    assert status != "wrong", f"{model_type}: silent wrong number: {detail}"
    p_status, p_detail = params_verdict(model_type, entry)
    assert p_status != "wrong", f"{model_type}: silent wrong parameter count: {p_detail}"


def test_coverage_figure(survey: Survey) -> None:
    """exact / buildable >= 90 %; prints every miss and every type transformers could not build."""
    verdicts = {t: verdict(t, survey.get(t)) for t in MODEL_TYPES}
    buildable = [t for t, (status, _) in verdicts.items() if status != "unbuildable"]
    exact = [t for t in buildable if verdicts[t][0] == "exact"]
    coverage = len(exact) / len(buildable)
    print(f"\ncoverage: {len(exact)}/{len(buildable)} = {coverage:.1%} of buildable types exact")
    for status in ("wrong", "refused", "unbuildable"):
        for t, (s, detail) in verdicts.items():
            if s == status:
                print(f"  {status:11} {t}: {detail[:200]}")
    p_verdicts = {t: params_verdict(t, survey.get(t)) for t in buildable}
    p_exact = [t for t, (s, _) in p_verdicts.items() if s == "exact"]
    print(f"parameters: {len(p_exact)}/{len(buildable)} of buildable types exact, the rest refused")
    for t, (s, detail) in p_verdicts.items():
        if s != "exact":
            print(f"  params {s:11} {t}: {detail[:160]}")
    assert not [t for t in buildable if verdicts[t][0] == "wrong"], "silent wrong numbers (see above)"
    assert not [t for t, (s, _) in p_verdicts.items() if s == "wrong"], "silent wrong parameter counts"
    assert coverage >= MIN_COVERAGE, f"coverage {coverage:.1%} < {MIN_COVERAGE:.0%}"
