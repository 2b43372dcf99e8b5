"""One rule, one reader, three callers: tensor parallelism shards the query heads (vLLM's and
SGLang's QKVParallelLinear divide total_num_heads by tp), read under every config name. The page
(kvcalc.web, vLLM and the ideal even split), kvcalc.deploy.plan.plan (vLLM) and the SGLang engine all
refuse the same sizes with the same words."""

from __future__ import annotations

import json
from typing import Any

import pytest

import kvcalc
from kvcalc.deploy.plan import plan
from kvcalc.errors import KVCalcError
from kvcalc.web import DEFAULT_REQUEST, compute
from tests.shared_configs import hf_config


def legacy_falcon() -> dict[str, Any]:
    """tiiuae/falcon-7b's real config with its query heads under Falcon's older key, ``n_head``
    (transformers' FalconConfig maps it to num_attention_heads): 71 query heads, one KV head."""
    cfg = dict(hf_config("tiiuae/falcon-7b"))
    cfg["n_head"] = cfg.pop("num_attention_heads")
    return cfg


CASES = [
    # (name, config, tp, heads refused or None when every caller accepts the split)
    ("Qwen2.5-7B-Instruct", lambda: hf_config("Qwen/Qwen2.5-7B-Instruct"), 8, 28),  # 4 KV heads replicate
    ("Llama-3.1-8B", lambda: hf_config("meta-llama/Llama-3.1-8B"), 8, None),
    ("Llama-3.1-8B", lambda: hf_config("meta-llama/Llama-3.1-8B"), 64, 32),
    ("falcon-7b, n_head", legacy_falcon, 2, 71),  # the KV head replicates; 71 query heads do not split
    ("falcon-7b", lambda: hf_config("tiiuae/falcon-7b"), 2, 71),
]


def page_error(cfg: dict[str, Any], tp: int, engine: str) -> str | None:
    req = {**DEFAULT_REQUEST, "engine": engine, "tensor_parallel_size": tp,
           "models": [{"id": "m", "name": "m", "config": cfg}]}  # fmt: skip
    out = json.loads(compute(json.dumps(req)))
    assert out["ok"], out
    return out["errors"][0]["error"] if out["errors"] else None


def plan_error(cfg: dict[str, Any], tp: int) -> str | None:
    try:
        plan(kvcalc.load_model(cfg), gpu="h100", num_gpus=tp, max_model_len=4096)
    except KVCalcError as e:
        return str(e)
    return None


@pytest.mark.parametrize(("name", "config", "tp", "heads"), CASES, ids=[f"{c[0]}-tp{c[2]}" for c in CASES])
def test_query_heads_split_alike_everywhere(name: str, config: Any, tp: int, heads: int | None) -> None:
    cfg = config()
    want = heads and f"tensor_parallel_size: {tp} does not divide num_attention_heads {heads}"
    for engine, suffix in (("vllm", "; vLLM refuses it"), ("ideal", "; vLLM and an even split refuse it")):
        got = page_error(cfg, tp, engine)
        assert got == (None if want is None else want + suffix), (engine, got)
    got = plan_error(cfg, tp)
    if want is None:
        assert got is None or "does not divide" not in got, got  # (weights may still not fit)
    else:
        assert got == want
    if "falcon" not in name:  # SGLang has no Falcon model class: refused by name before the split
        try:
            kvcalc.kv_cache_bytes(kvcalc.load_model(cfg), 4096, engine="sglang", tensor_parallel_size=tp)
            sglang = None
        except KVCalcError as e:
            sglang = str(e)
        assert sglang == want
