"""python -m kvcalc.generate_config: local folders offline, missing ids fail fast with a JSON error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("transformers")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / "configs"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "kvcalc.generate_config", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=ENV, timeout=120)


def test_local_folder_remote_code_type() -> None:
    """kimi_k2 is not a transformers type: resolved through architectures (DeepseekV3ForCausalLM)."""
    out = generate("--model", str(SHARED / "moonshotai" / "Kimi-K2-Instruct"))
    assert out.returncode == 0, out.stdout + out.stderr
    entry = json.loads(out.stdout)
    assert (entry["id"], entry["name"]) == ("moonshotai/Kimi-K2-Instruct", "Kimi-K2-Instruct")
    assert entry["family"] == "Kimi"
    assert entry["transformers_model_type"] == "deepseek_v3"
    norm = entry["normalised"]
    assert (norm["model_type"], norm["kinds"], norm["kv_bytes_per_token"]) == ("kimi_k2", {"mla": 61}, 70_272)
    assert norm["params"] == 1_026_408_209_408 and norm["params_exact"]
    raw = (SHARED / "moonshotai" / "Kimi-K2-Instruct" / "config.json").read_bytes()
    assert entry["config"] == json.loads(raw)


def test_missing_id_fails_fast_offline() -> None:
    start = time.monotonic()
    out = generate("--model", "nobody/no-such-model-anywhere")
    assert time.monotonic() - start < 60
    assert out.returncode == 1
    error = json.loads(out.stdout)["error"]
    assert "nobody/no-such-model-anywhere" in error and "Traceback" not in out.stderr


def test_not_json_config_is_a_json_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{not json")
    out = generate("--model", str(tmp_path))
    assert out.returncode == 1 and "not valid JSON" in json.loads(out.stdout)["error"]


def test_bad_arguments_exit_2() -> None:
    out = generate()
    assert out.returncode == 2 and "--model" in out.stderr
