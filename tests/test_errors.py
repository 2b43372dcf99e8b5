"""Bad input gets one clear KVCalcError naming the field — never a traceback or a wrong number."""

from __future__ import annotations

import json
from typing import Any

import pytest

import kvcalc

BASE: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 8,
}


def with_(**changes: Any) -> dict[str, Any]:
    cfg = dict(BASE)
    for key, value in changes.items():
        if value is ...:
            cfg.pop(key)
        else:
            cfg[key] = value
    return cfg


BAD_CONFIGS = [
    (with_(num_hidden_layers=...), "num_hidden_layers: required field missing"),
    (with_(num_hidden_layers=0), "num_hidden_layers: must be ≥ 1"),
    (with_(num_hidden_layers=-4), "num_hidden_layers: must be ≥ 1"),
    (with_(num_hidden_layers=3.5), "num_hidden_layers: expected an integer"),
    (with_(num_hidden_layers="32"), "num_hidden_layers: expected an integer"),
    (with_(num_hidden_layers=True), "num_hidden_layers: expected an integer"),
    (with_(num_hidden_layers=10**12), "num_hidden_layers: 1000000000000 is implausibly large"),
    (with_(hidden_size=4000, num_attention_heads=48), "head_dim: missing, and hidden_size 4000"),
    (with_(num_key_value_heads=5), "num_key_value_heads: 5 key/value heads must divide"),
    (with_(head_dim=-1), "head_dim: must be ≥ 1"),
    (with_(layer_types=["full_attention"] * 31 + ["warp_attention"]), "'warp_attention' is not supported"),
    (with_(layer_types=["full_attention"] * 3), "layer_types: has 3 entries for 32 layers"),
    (with_(sliding_window=1), "sliding_window: must be ≥ 2"),
    (with_(model_type="mystery_ssm", ssm_state_size=16), "'mystery_ssm' has recurrent-state fields"),
    ({"text_config": {"hidden_size": 64, "num_attention_heads": 4}}, "text_config.num_hidden_layers"),
]


@pytest.mark.parametrize(("cfg", "message"), BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_bad_config_names_field(cfg: dict[str, Any], message: str) -> None:
    with pytest.raises(kvcalc.KVCalcError) as err:
        kvcalc.load_model(cfg)
    assert message in str(err.value)


BAD_TEXT = [
    ("{not json", "config: not valid JSON"),
    ("[1, 2, 3]", "config: expected a JSON object"),
    ("[" * 100_000 + "]" * 100_000, "config: "),
    ('{"a": ' * 200 + "1" + "}" * 200, "nested more than 64 levels"),
    ('{"pad": "' + "x" * (10 * 1024 * 1024) + '"}', "too large for a config.json"),
    ("/no/such/dir/config.json", "config: cannot read"),
]


@pytest.mark.parametrize(("text", "message"), BAD_TEXT, ids=[m for _, m in BAD_TEXT])
def test_bad_json_text(text: str, message: str) -> None:
    with pytest.raises(kvcalc.KVCalcError) as err:
        kvcalc.load_model(text)
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kv_dtype": "fp7"}, "kv_dtype: unknown dtype 'fp7'"),
        ({"engine": "tgi"}, "engine: unknown engine 'tgi'"),
        ({"batch_size": 0}, "batch_size: must be ≥ 1"),
        ({"engine": "transformers", "kv_dtype": "fp8"}, "kv_dtype: the transformers engine"),
        ({"engine": "transformers", "tensor_parallel_size": 2}, "tensor_parallel_size"),
        ({"block_size": 0}, "block_size: must be ≥ 1"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    model = kvcalc.load_model(BASE)
    with pytest.raises(kvcalc.KVCalcError) as err:
        kvcalc.kv_cache_bytes(model, 128, **kwargs)
    assert message in str(err.value)


def test_negative_seq_len() -> None:
    model = kvcalc.load_model(BASE)
    with pytest.raises(kvcalc.KVCalcError, match="seq_len: must be ≥ 0"):
        kvcalc.kv_cache_bytes(model, -1)
    assert kvcalc.kv_cache_bytes(model, 0) == 0


def test_error_is_a_value_error() -> None:
    assert issubclass(kvcalc.KVCalcError, ValueError)


def test_json_text_and_path_load_the_same(tmp_path: Any) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(BASE))
    by_dict = kvcalc.load_model(BASE)
    assert kvcalc.load_model(json.dumps(BASE)).layers == by_dict.layers
    assert kvcalc.load_model(str(path)).layers == by_dict.layers
    assert kvcalc.load_model(tmp_path).layers == by_dict.layers


def test_unknown_plain_model_is_marked_unverified() -> None:
    model = kvcalc.load_model(with_(model_type="brand_new_lm"))
    assert not model.verified
    assert "not verified" in model.notes[0]
    assert kvcalc.kv_bytes_per_token(model) == 32 * 2 * 8 * 128 * 2


def test_seed_format_without_model_type() -> None:
    seed = {
        k: BASE[k] for k in ("hidden_size", "num_attention_heads", "num_hidden_layers", "num_key_value_heads")
    }
    model = kvcalc.load_model(seed, name="seed")
    assert model.name == "seed"
    assert kvcalc.kv_bytes_per_token(model) == 131_072
