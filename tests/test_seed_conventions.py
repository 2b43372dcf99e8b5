"""One unit convention (GiB + exact bytes), attention labels under every head-count name, the comparison
page's names and insights, MiniLLM's measure flags: what the older tools' users see changed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import kvcalc
from kvcalc import web
from kvcalc.compat import attention_type, calculate_memory
from kvcalc.core.catalog import PAGE_ALIASES, load_catalog
from kvcalc.core.facts import attention_label
from kvcalc.core.units import fmt_token_bytes
from kvcalc.engines import kv_bytes_per_token_short
from kvcalc.errors import KVCalcError

REPO = Path(__file__).resolve().parents[1]
GIB = 1 << 30


def config_model(hf_id: str) -> kvcalc.Model:
    return kvcalc.load_model(REPO / "configs" / hf_id / "config.json")


# (hf id, head-count key the config uses, label, compat attention_type)
LABELS = [
    ("openai-community/gpt2", "n_head", "MHA", "mha"),
    ("tiiuae/falcon-7b", "num_attention_heads", "MQA", "mqa"),  # multi_query: true
    ("openai/whisper-large-v3", "decoder_attention_heads", "MHA", "mha"),  # was GQA: heads not found
    ("google-t5/t5-small", "num_heads", "MHA", "mha"),
    ("microsoft/phi-2", "num_attention_heads", "MHA", "mha"),
    ("meta-llama/Llama-2-7b-hf", "num_attention_heads", "MHA", "mha"),
    ("meta-llama/Llama-3.1-8B", "num_attention_heads", "GQA", "gqa"),
    ("mistralai/Mistral-7B-v0.1", "num_attention_heads", "SWA", "gqa"),
    ("openai/gpt-oss-20b", "num_attention_heads", "GQA + SWA", "gqa"),
    ("deepseek-ai/DeepSeek-V3", "num_attention_heads", "MLA", "mla"),
    ("ai21labs/Jamba-v0.1", "num_attention_heads", "hybrid (Mamba + GQA)", "hybrid"),
    ("state-spaces/mamba-130m-hf", "—", "Mamba", "ssm"),
]


@pytest.mark.parametrize(("hf_id", "key", "label", "kind"), LABELS, ids=[x[0] for x in LABELS])
def test_labels_read_every_head_count_name(hf_id: str, key: str, label: str, kind: str) -> None:
    model = config_model(hf_id)
    if key != "—":
        assert key in model.text_config or key in model.config
    assert attention_label(model) == label
    assert attention_type(model) == kind


# (preloaded name, short-context bytes/token bf16, long-context, display)
TOKEN_BYTES = [
    ("Mistral-7B-v0.1", 131_072, 0, "131,072 within the window, 0 beyond"),
    ("gpt-oss-120b", 73_728, 36_864, "73,728 within the window, 36,864 beyond"),
    ("DeepSeek-V3", 70_272, 70_272, "70,272"),
    ("Llama-3.1-8B", 131_072, 131_072, "131,072"),
]


@pytest.mark.parametrize(("name", "short", "long", "text"), TOKEN_BYTES, ids=[x[0] for x in TOKEN_BYTES])
def test_window_bytes_per_token_never_bare_zero(name: str, short: int, long: int, text: str) -> None:
    model = load_catalog().model(name)
    assert kv_bytes_per_token_short(model, "bf16") == short
    assert kvcalc.kv_bytes_per_token(model, "bf16") == long
    assert fmt_token_bytes(short, long) == text


def test_cli_shows_window_bytes_per_token() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "kvcalc", "compare", "Mistral-7B", "Kimi-K2", "--seq-len", "128k"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    mistral = next(line for line in out.stdout.splitlines() if line.startswith("Mistral-7B-v0.1"))
    assert "131,072 within the window, 0 beyond" in mistral and "0.50" in mistral
    assert "GiB = 2^30 bytes" in out.stdout


def test_compat_sizes_are_gib_with_bytes() -> None:
    r = calculate_memory("Qwen2.5-7B", batch_size=3, seq_length=10_000, precision="bf16")
    assert r.kv_cache_bytes == 3 * 10_000 * 57_344
    assert r.kv_cache_gb == r.kv_cache_bytes / GIB
    assert r.total_memory_gb == r.total_memory_bytes / GIB
    assert r.recommended_gpu_memory_gb is not None
    d = r.as_dict()
    assert all(d[f"{k}_gb"] == (d[f"{k}_bytes"] or 0) / GIB for k in ("weight_memory", "total_memory"))
    json.dumps(d, allow_nan=False)


def test_page_aliases_resolve_to_the_rows_models() -> None:
    from scripts.gen_model_configs import PENDING

    catalog = load_catalog()
    held_back = [name for name, hf_id in PAGE_ALIASES.items() if hf_id in PENDING]
    for name, hf_id in PAGE_ALIASES.items():
        if hf_id not in PENDING:
            assert catalog.get(name).id == hf_id
            assert catalog.get(name.lower()).id == hf_id
    assert set(held_back) <= {"GLM-4.5", "MiniMax-M2.1", "Qwen2.5-72B"}  # until issue 11 preloads them
    assert catalog.get("Mistral-7B").id == "mistralai/Mistral-7B-v0.1"


def _compare(ids: list[str], **controls: Any) -> dict[str, Any]:
    catalog = load_catalog()
    models = [{"id": catalog.get(i).id, "name": i, "config": dict(catalog.get(i).config)} for i in ids]
    return json.loads(web.compute(json.dumps({**web.DEFAULT_REQUEST, "models": models, **controls})))


def test_page_insights_mla_vs_mha_and_extremes() -> None:
    out = _compare(["DeepSeek-V3", "Kimi-K2", "Llama-3.1-8B", "Qwen2.5-7B", "Mistral-7B"])
    texts = {i["kind"]: [] for i in out["insights"]}
    for i in out["insights"]:
        texts[i["kind"]].append(i["text"])
    # MLA: 70,272 per token; MHA family: (131,072 + 57,344 + 131,072) / 3 = 106,496 → 34 % less.
    assert (
        "MLA models (DeepSeek-V3 and Kimi-K2) store 70,272 bytes per token on average in BF16, against "
        "106,496 for the 3 MHA/GQA models (Llama-3.1-8B, Qwen2.5-7B and Mistral-7B): 34% less per token."
    ) in texts["mla"]
    assert texts["efficiency"] == [
        "Most efficient per token: Qwen2.5-7B (57,344 bytes in BF16); least efficient: Llama-3.1-8B "
        "(131,072 bytes), 2.3× as much."
    ]
    alone = _compare(["Llama-3.1-8B", "Qwen2.5-7B"])
    assert not any("MLA models" in i["text"] for i in alone["insights"])


def test_measure_minillm_flags_errors() -> None:
    from kvcalc.cli.main import build_parser
    from kvcalc.cli.measure import _target

    def target(*args: str) -> Any:
        return _target(build_parser().parse_args(["measure", *args]))

    with pytest.raises(KVCalcError, match="dim-model: only with --config custom"):
        target("--config", "small", "--dim-model", "1024")
    with pytest.raises(KVCalcError, match="model: give MODEL or --config, not both"):
        target("small", "--config", "small")
    with pytest.raises(KVCalcError, match="num_heads: 7 does not divide dim_model 512"):
        target("--config", "custom", "--num-heads", "7")
    with pytest.raises(KVCalcError, match="max_kv_cache_len: 16 leaves no prompt"):
        target("--config", "custom", "--max-kv-cache-len", "16")
    cfg = target("--config", "custom", "--dim-model", "1024", "--num-heads", "16").config
    assert (cfg["hidden_size"], cfg["head_dim"], cfg["num_key_value_heads"]) == (1024, 64, 16)
