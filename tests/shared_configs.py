"""The real upstream configs kept in the repository (configs/, with SOURCES.tsv)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HF_CONFIGS = REPO / "configs"


def hf_ids() -> list[str]:
    """Every hf id with a config.json in configs/ that is preloaded (not pending), sorted."""
    from scripts.gen_model_configs import PENDING

    ids = (str(p.parent.relative_to(HF_CONFIGS)) for p in HF_CONFIGS.glob("*/*/config.json"))
    return sorted(i for i in ids if i not in PENDING)


def hf_config(hf_id: str) -> dict[str, Any]:
    """The real config.json of one model."""
    with (HF_CONFIGS / hf_id / "config.json").open() as fh:
        return json.load(fh)


def sources() -> dict[str, dict[str, str]]:
    """SOURCES.tsv rows by hf id."""
    with (HF_CONFIGS / "SOURCES.tsv").open() as fh:
        return {row["hf_id"]: row for row in csv.DictReader(fh, delimiter="\t")}
