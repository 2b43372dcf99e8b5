"""Encoder–decoder caches: the encoder length (``encoder_seq_len``), and encoders that keep no cache.

T5 / Whisper are real configs (configs/); the transformers-marked test measures the cache
T5ForConditionalGeneration returns on the meta device with the encoder length given.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

import kvcalc
from kvcalc.cli.main import main
from tests.shared_configs import hf_config

T5 = kvcalc.load_model(hf_config("google-t5/t5-small"))
WHISPER = kvcalc.load_model(hf_config("openai/whisper-large-v3"))
T5_TOKEN = 6 * 2 * 8 * 64 * 2  # 6 decoder layers · K and V · 8 heads · d_kv 64 · bf16


def test_t5_caches_self_and_cross_attention() -> None:
    """Measured (docs/validation.md): 7,372,800 bytes at 300 tokens — encoder length = seq_len."""
    assert kvcalc.kv_cache_bytes(T5, 300, engine="transformers") == 7_372_800 == 2 * 300 * T5_TOKEN


@pytest.mark.parametrize("engine", ["ideal", "transformers"])
def test_t5_encoder_seq_len(engine: str) -> None:
    got = kvcalc.kv_cache_bytes(T5, 300, engine=engine, encoder_seq_len=512)
    assert got == (300 + 512) * T5_TOKEN
    per_layer = kvcalc.layer_bytes(T5, 300, engine=engine, encoder_seq_len=512)
    assert per_layer == [(300 + 512) * T5_TOKEN // 6] * 6


def test_whisper_encoder_length_is_fixed() -> None:
    """Whisper pads every input to 30 s: 1500 encoder positions (max_source_positions)."""
    default = kvcalc.kv_cache_bytes(WHISPER, 300, engine="transformers")
    assert kvcalc.kv_cache_bytes(WHISPER, 300, engine="transformers", encoder_seq_len=1500) == default
    with pytest.raises(kvcalc.KVCalcError, match="^encoder_seq_len: .* always encodes 1,500 positions"):
        kvcalc.kv_cache_bytes(WHISPER, 300, encoder_seq_len=3000)


def test_decoder_only_models_refuse_an_encoder_length() -> None:
    gpt2 = kvcalc.load_model(hf_config("openai-community/gpt2"))
    with pytest.raises(kvcalc.KVCalcError, match="^encoder_seq_len: .* has no encoder"):
        kvcalc.kv_cache_bytes(gpt2, 300, encoder_seq_len=300)


@pytest.mark.parametrize("model_type", ["bert", "roberta", "clip_text_model", "xlm-roberta"])
def test_encoders_have_no_kv_cache(model_type: str) -> None:
    """Synthetic BERT-sized configs: transformers returns no cache for them (is_decoder false)."""
    cfg = {"model_type": model_type, "hidden_size": 768, "num_attention_heads": 12, "num_hidden_layers": 12}
    with pytest.raises(kvcalc.KVCalcError, match="no KV cache"):
        kvcalc.load_model(cfg)


def test_cli_states_the_encoder_length(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kv", "whisper-large-v3", "--seq-len", "300"]) == 0
    assert "encoder length: 1,500 positions (fixed by the model)" in capsys.readouterr().out
    assert main(["kv", "t5-small", "--seq-len", "300", "--encoder-seq-len", "512", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["encoder_seq_len"], data["encoder_seq_len_source"]) == (512, "given")
    assert data["bytes"] == (300 + 512) * T5_TOKEN


@pytest.mark.transformers
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs the measure extra")
def test_t5_encoder_seq_len_matches_transformers() -> None:
    from kvcalc.measure import run as measure

    m = measure.measure_cache(hf_config("google-t5/t5-small"), 300, 2, "bf16", encoder_len=512, method="meta")
    assert m.encoder_len == 512
    assert kvcalc.kv_cache_bytes(T5, 300, batch_size=2, engine="transformers", encoder_seq_len=512) == m.total


def test_web_describes_the_encoder_length() -> None:
    from kvcalc.web import compute

    ids = ["openai/whisper-large-v3", "google-t5/t5-small", "openai-community/gpt2"]
    models = [{"id": i, "config": hf_config(i)} for i in ids]
    out = json.loads(compute(json.dumps({"op": "compare", "models": models, "seq_len": 300})))
    lengths = {m["id"]: m["encoder_seq_len"] for m in out["models"]}
    assert lengths == dict(zip(ids, [1500, "seq_len", None], strict=True))


def test_model_notes_state_the_encoder_length_assumed() -> None:
    """A model's notes (the page shows them) name the encoder length its cross-attention caches."""
    whisper = kvcalc.load_model(hf_config("openai/whisper-large-v3"))
    assert any("1,500 encoder positions" in n for n in whisper.notes), whisper.notes
    assert any("as many encoder positions as the context" in n for n in T5.notes), T5.notes
    assert kvcalc.kv_cache_bytes(whisper, 300) == kvcalc.kv_cache_bytes(whisper, 300, encoder_seq_len=1500)
    assert kvcalc.kv_cache_bytes(T5, 300) == kvcalc.kv_cache_bytes(T5, 300, encoder_seq_len=300)
