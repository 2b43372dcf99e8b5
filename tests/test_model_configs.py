"""model_configs.json: generated from configs/ (no drift), configs/ in step with ../shared/hf-configs
when that exists, every entry loads and is hash-checked."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

import kvcalc
from kvcalc.core.catalog import load_catalog
from scripts import gen_model_configs as gen

REPO = Path(__file__).resolve().parents[1]
FILE = REPO / "model_configs.json"
TEXT = FILE.read_text(encoding="utf-8")
DATA = json.loads(TEXT)
CATALOG = load_catalog(DATA)

needs_shared = pytest.mark.skipif(not gen.SHARED.is_dir(), reason=f"{gen.SHARED} not present (a plain clone)")


def test_no_drift_from_configs() -> None:
    """Regenerate in memory: the committed file must be byte-identical (run scripts/gen_model_configs.py)."""
    assert gen.render(gen.build_catalog()) == TEXT


def test_every_config_is_listed_with_matching_hashes() -> None:
    ids = gen.hf_ids(gen.CONFIGS)
    assert [m["id"] for m in DATA["models"]] == ids
    for m in DATA["models"]:
        raw = (gen.CONFIGS / m["id"] / "config.json").read_bytes()
        assert m["sha256"] == hashlib.sha256(raw).hexdigest()


def test_pending_configs_exist() -> None:
    """Every id held back from the preloaded set is a real config in configs/."""
    assert set(gen.all_ids(gen.CONFIGS)) >= gen.PENDING


@needs_shared
def test_configs_in_step_with_shared() -> None:
    """configs/ is a byte-identical copy of ../shared/hf-configs (the delivery route): copy new ones in."""
    ours = {p.relative_to(gen.CONFIGS): p.read_bytes() for p in gen.CONFIGS.rglob("*") if p.is_file()}
    theirs = {p.relative_to(gen.SHARED): p.read_bytes() for p in gen.SHARED.rglob("*") if p.is_file()}
    missing = sorted(map(str, set(theirs) - set(ours)))
    changed = sorted(str(k) for k in set(ours) & set(theirs) if ours[k] != theirs[k])
    assert not missing and not changed, f"copy from {gen.SHARED}: missing {missing}, changed {changed}"


def test_entries_are_complete_and_hashes_match_sources() -> None:
    assert DATA["schema"] == 1 and len(DATA["models"]) >= 39
    for m in DATA["models"]:
        assert set(m) >= {"id", "name", "family", "config", "provenance", "sha256", "sha256_matches_sources"}
        assert m["name"] == m["id"].split("/", 1)[1]
        assert m["sha256_matches_sources"] and m["provenance"]["sha256"] == m["sha256"]
        assert m["provenance"]["source"]
        assert isinstance(m["provenance"]["verified_against_upstream_hash"], bool)


def test_file_is_strict_json_with_stable_formatting() -> None:
    json.loads(TEXT, parse_constant=lambda c: pytest.fail(f"non-finite constant {c} in model_configs.json"))
    assert gen.render(DATA) == TEXT


@pytest.mark.parametrize("entry", CATALOG.entries, ids=[e.id for e in CATALOG.entries])
def test_every_entry_loads(entry) -> None:  # noqa: ANN001
    model = kvcalc.load_model(entry.config, name=entry.name)
    assert model.layers and model.verified
    assert kvcalc.kv_cache_bytes(model, 1024) > 0


def test_families() -> None:
    families = {m["family"] for m in DATA["models"]}
    expected = {"DeepSeek", "Llama", "Qwen", "Mistral", "Kimi", "GLM", "MiniMax", "gpt-oss", "Nemotron"}
    assert expected <= families


def test_nonfinite_values_round_trip() -> None:
    entry = CATALOG.get("nvidia/Nemotron-H-56B-Base-8K")
    raw = next(m for m in DATA["models"] if m["id"] == entry.id)
    assert raw["nonfinite"] == ["time_step_limit[1]"] and raw["config"]["time_step_limit"][1] == "Infinity"
    assert math.isinf(entry.config["time_step_limit"][1])


def test_catalog_accepts_data_text_and_path(tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(TEXT, encoding="utf-8")
    for source in (DATA, DATA["models"], TEXT, path, str(path)):
        assert len(load_catalog(source)) == len(DATA["models"])


def test_lookup_by_id_or_short_name_case_insensitive() -> None:
    assert CATALOG.get("deepseek-ai/DeepSeek-V3").name == "DeepSeek-V3"
    assert CATALOG.get("deepseek-v3").id == "deepseek-ai/DeepSeek-V3"
    assert CATALOG.model("GPT-OSS-120B").name == "gpt-oss-120b"
    with pytest.raises(kvcalc.KVCalcError, match="did you mean Qwen3-0.6B"):
        CATALOG.get("qwen3-0.6")


def test_catalog_errors() -> None:
    with pytest.raises(kvcalc.KVCalcError, match="catalog: expected an object with a 'models' list"):
        load_catalog({"nope": 1})
    with pytest.raises(kvcalc.KVCalcError, match=r"catalog: models\[0\].config missing"):
        load_catalog([{"id": "a/b", "name": "b"}])
    with pytest.raises(kvcalc.KVCalcError, match="catalog: cannot read"):
        load_catalog("/nonexistent/model_configs.json")


def test_generator_reports_missing_shared(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gen.main(["--configs", str(tmp_path / "absent"), "--out", str(tmp_path / "x.json")]) == 2
    assert "not found" in capsys.readouterr().err
