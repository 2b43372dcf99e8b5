"""RWKV (v4), xLSTM and Zamba (v1) caches at transformers' config-class defaults (issue 11).

Expected bytes are the ones measured on the meta device in notes/transformers_defaults_measured.json
(tests/test_architecture_coverage.py re-measures them live).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kvcalc

MEASURED = json.loads(
    (Path(__file__).resolve().parents[1] / "notes/transformers_defaults_measured.json").read_text()
)["entries"]

#: transformers 5.23 RwkvConfig() / ZambaConfig() defaults (the keys the caches depend on).
RWKV_DEFAULTS = {"model_type": "rwkv", "hidden_size": 4096, "num_hidden_layers": 32, "vocab_size": 50277}
XLSTM_DEFAULTS = {"model_type": "xlstm", "hidden_size": 4096, "num_hidden_layers": 32, "num_heads": 8,
                  "qk_dim_factor": 0.5, "v_dim_factor": 1.0, "vocab_size": 50304}  # fmt: skip
ZAMBA_DEFAULTS = {
    "model_type": "zamba", "hidden_size": 3712, "num_hidden_layers": 76, "num_attention_heads": 16,
    "num_key_value_heads": 16, "attn_layer_period": 6, "attn_layer_offset": 4, "mamba_expand": 2,
    "mamba_d_conv": 4, "mamba_d_state": 16, "n_mamba_heads": 2, "vocab_size": 32000,
}  # fmt: skip


@pytest.mark.parametrize(
    ("model_type", "config"), [("rwkv", RWKV_DEFAULTS), ("xlstm", XLSTM_DEFAULTS), ("zamba", ZAMBA_DEFAULTS)]
)
def test_defaults_equal_the_measured_cache(model_type: str, config: dict) -> None:
    model = kvcalc.load_model(config)
    assert model.verified
    for key, m in MEASURED[model_type]["measurements"].items():
        seq_len, batch, dtype = key.split("/")
        got = kvcalc.kv_cache_bytes(model, int(seq_len), batch_size=int(batch), kv_dtype=dtype,
                                    engine="transformers")  # fmt: skip
        assert got == m["total"], key


def test_rwkv_state_is_two_model_dtype_and_three_fp32_vectors() -> None:
    model = kvcalc.load_model(RWKV_DEFAULTS)
    assert kvcalc.kv_cache_bytes(model, 1, engine="transformers", kv_dtype="fp32") == 32 * 4096 * 5 * 4
    assert kvcalc.kv_cache_bytes(model, 9999, engine="transformers") == 32 * 4096 * (2 * 2 + 3 * 4)
    with pytest.raises(kvcalc.KVCalcError, match="vLLM has no RWKV model"):
        kvcalc.kv_cache_bytes(model, 100, engine="vllm")


def test_zamba_layer_pattern() -> None:
    kinds = [x.kind for x in kvcalc.load_model(ZAMBA_DEFAULTS).layers]
    assert kinds.count("parallel") == 13 and kinds.count("mamba1") == 63
    assert kinds[:3] == ["mamba1", "mamba1", "parallel"]
    with pytest.raises(kvcalc.KVCalcError, match="vLLM has no Zamba"):
        kvcalc.kv_cache_bytes(kvcalc.load_model(ZAMBA_DEFAULTS), 100, engine="vllm")


def test_xlstm_state_is_c_n_m_per_head_in_the_model_dtype() -> None:
    model = kvcalc.load_model(XLSTM_DEFAULTS)  # qk_head_dim 2048 / 8 = 256, v_head_dim 4096 / 8 = 512
    assert kvcalc.kv_cache_bytes(model, 1, engine="transformers") == 32 * 8 * (256 * 512 + 256 + 1) * 2
    with pytest.raises(kvcalc.KVCalcError, match="vLLM has no xLSTM model"):
        kvcalc.kv_cache_bytes(model, 100, engine="vllm")
