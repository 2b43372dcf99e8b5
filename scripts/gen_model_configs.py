#!/usr/bin/env python3
"""Generate model_configs.json (the preloaded model set) from configs/ + configs/SOURCES.tsv.

    python3 scripts/gen_model_configs.py [--configs DIR] [--out FILE] [--check]

configs/ is the repository's own copy of the real upstream configs (with their provenance); it arrives
through ../shared/hf-configs, which tests/test_model_configs.py keeps in step when it is present.
Every <org>/<name>/config.json under configs/ (except those in ``PENDING``) becomes one entry: hf id,
short name, family, the original config dict (whole), SOURCES.tsv provenance and the sha256
computed here (and whether it
matches SOURCES.tsv). Non-finite floats (``Infinity`` in Nemotron-H's time_step_limit) are not valid JSON:
they are stored as the strings "Infinity"/"-Infinity"/"NaN" and their paths listed in ``nonfinite``.
Output is deterministic (entries sorted by id, fixed formatting). ``--check`` exits 1 on drift.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
#: Delivery route of new real configs (absent on a plain clone of the repository).
SHARED = REPO.parent / "shared" / "hf-configs"
#: Real configs kept in configs/ but not preloaded yet: kvcalc is not yet exact for them (issue 11).
PENDING: frozenset[str] = frozenset()
DEFAULT_OUT = REPO / "model_configs.json"
SCHEMA = 1

#: Family by hf organisation (display grouping).
FAMILIES = {
    "deepseek-ai": "DeepSeek",
    "meta-llama": "Llama",
    "qwen": "Qwen",
    "mistralai": "Mistral",
    "moonshotai": "Kimi",
    "zai-org": "GLM",
    "thudm": "GLM",
    "minimaxai": "MiniMax",
    "openai": "gpt-oss",
    "nvidia": "Nemotron",
    "allenai": "OLMo",
    "google": "Gemma",
    "microsoft": "Phi",
    "google-t5": "T5",
    "openai-community": "GPT-2",
    "state-spaces": "Mamba",
    "tiiuae": "Falcon",
    "ai21labs": "Jamba",
}
#: Family of single models whose organisation's family does not fit.
FAMILY_BY_ID = {"openai/whisper-large-v3": "Whisper"}


class MissingConfigs(RuntimeError):
    """The configs directory is not there."""


def family(hf_id: str) -> str:
    """Display family of an hf id (its organisation's family, else the organisation)."""
    if hf_id in FAMILY_BY_ID:
        return FAMILY_BY_ID[hf_id]
    org = hf_id.split("/", 1)[0]
    return FAMILIES.get(org.lower(), org)


def _sanitize(value: Any, path: str, found: list[str]) -> Any:
    """Replace non-finite floats by strings, recording where they were."""
    if isinstance(value, float) and not math.isfinite(value):
        found.append(path)
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _sanitize(v, f"{path}.{k}" if path else k, found) for k, v in value.items()}
    if isinstance(value, list):
        return [_sanitize(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


def read_sources(shared: Path) -> dict[str, dict[str, str]]:
    """SOURCES.tsv rows by hf id."""
    path = shared / "SOURCES.tsv"
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        return {row["hf_id"]: row for row in csv.DictReader(fh, delimiter="\t")}


def entry(shared: Path, hf_id: str, sources: dict[str, dict[str, str]]) -> dict[str, Any]:
    """One catalog entry for configs/<hf_id>/config.json."""
    raw = (shared / hf_id / "config.json").read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    nonfinite: list[str] = []
    config = _sanitize(json.loads(raw), "", nonfinite)
    row = sources.get(hf_id, {})
    out: dict[str, Any] = {
        "id": hf_id,
        "name": hf_id.split("/", 1)[1],
        "family": family(hf_id),
        "config": config,
        "provenance": {
            "source": row.get("source", ""),
            "sha256": row.get("sha256", ""),
            "verified_against_upstream_hash": row.get("verified_against_upstream_hash", "").lower() == "yes",
        },
        "sha256": digest,
        "sha256_matches_sources": bool(row) and row.get("sha256") == digest,
    }
    if nonfinite:
        out["nonfinite"] = nonfinite
    return out


def all_ids(shared: Path) -> list[str]:
    """Every <org>/<name> with a config.json, sorted case-insensitively."""
    ids = [str(p.parent.relative_to(shared)) for p in shared.glob("*/*/config.json")]
    return sorted(ids, key=lambda s: (s.lower(), s))


def hf_ids(shared: Path) -> list[str]:
    """The preloaded ids: every config but the ``PENDING`` ones."""
    return [i for i in all_ids(shared) if i not in PENDING]


def build_catalog(shared: Path = CONFIGS) -> dict[str, Any]:
    """The whole catalog as a dict."""
    if not shared.is_dir():
        raise MissingConfigs(f"{shared} not found: model_configs.json is generated from configs/")
    sources = read_sources(shared)
    return {
        "schema": SCHEMA,
        "generated_by": "scripts/gen_model_configs.py",
        "source": "configs/ (+ SOURCES.tsv)",
        "models": [entry(shared, hf_id, sources) for hf_id in hf_ids(shared)],
    }


def render(catalog: dict[str, Any]) -> str:
    """Deterministic text of the catalog (strict JSON, 1-space indent, trailing newline)."""
    return json.dumps(catalog, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=Path, default=CONFIGS, help="directory of <org>/<name>/config.json")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output file (model_configs.json)")
    parser.add_argument("--check", action="store_true", help="fail if the file is not up to date")
    args = parser.parse_args(argv)
    try:
        text = render(build_catalog(args.configs))
    except MissingConfigs as exc:
        print(f"gen_model_configs: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current != text:
            print(f"gen_model_configs: {args.out} is out of date; rerun this script", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(json.loads(text)['models'])} models)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
