"""compare with ``engines: [...]``: one real model under several engines, each number equal to that
engine module's own (kvcalc.kv_cache_bytes with the same request), each launch line in its vocabulary."""

from __future__ import annotations

import json
from typing import Any

import pytest

import kvcalc
from kvcalc import web
from kvcalc.engines import ENGINES
from tests.shared_configs import hf_config

GIB = 1 << 30
ALL = list(ENGINES)


def call(req: dict[str, Any]) -> dict[str, Any]:
    return json.loads(web.compute(json.dumps(req)))


def side(hf_id: str, **controls: Any) -> dict[str, Any]:
    req = {"op": "compare", "engines": ALL, "models": [{"id": hf_id, "config": hf_config(hf_id)}],
           "seq_len": 32768, "batch_size": 1, "kv_dtypes": ["bf16"], "tensor_parallel_size": 1, "gpu": "h100",
           **controls}  # fmt: skip
    resp = call(req)
    assert resp["ok"], resp
    return resp


def engine_bytes(hf_id: str, engine: str, seq: int, batch: int, dtype: str) -> int:
    model = kvcalc.load_model(hf_config(hf_id))
    L = seq * batch if engine == "llama.cpp" else seq  # llama.cpp's -c counts every slot
    return kvcalc.kv_cache_bytes(model, L, batch_size=batch, kv_dtype=dtype, engine=engine)


CASES = [
    ("meta-llama/Llama-3.1-8B", 32768, 1),
    ("meta-llama/Llama-3.1-8B", 10000, 4),
    ("mistralai/Mistral-7B-v0.1", 32768, 2),  # sliding window
    ("Qwen/Qwen3-30B-A3B", 40000, 1),  # MoE
    ("openai/gpt-oss-20b", 100000, 2),  # interleaved sliding
]


@pytest.mark.parametrize(("hf_id", "seq", "batch"), CASES)
def test_each_engine_equals_its_module(hf_id: str, seq: int, batch: int) -> None:
    resp = side(hf_id, seq_len=seq, batch_size=batch)
    assert [e["engine"] for e in resp["engines"]] == ALL
    assert resp["settings"]["seq_len"] == seq and resp["settings"]["engines"] == ALL
    for e in resp["engines"]:
        if e["error"]:
            # a refusal must be the engine's own (the module raises the same)
            with pytest.raises(kvcalc.KVCalcError):
                engine_bytes(hf_id, e["engine"], seq, batch, "bf16")
            continue
        assert e["row"]["cache"]["bf16"] == engine_bytes(hf_id, e["engine"], seq, batch, "bf16"), e["engine"]
        assert e["row"]["beyond_max"] == (e["row"]["max_context"] < seq)


def test_llama_cpp_c_counts_all_slots() -> None:
    """batch 4 at 10000 tokens each is `-c 40000 -np 4` (not -c 10000: 2500 tokens a slot)."""
    resp = side("meta-llama/Llama-3.1-8B", seq_len=10000, batch_size=4, kv_dtypes=["bf16", "fp8", "q8_0"])
    cpp = next(e for e in resp["engines"] if e["engine"] == "llama.cpp")
    assert cpp["launch"]["q8_0"]["command"].endswith("-c 40000 -np 4 -ctk q8_0 -ctv q8_0")
    assert set(cpp["row"]["cache"]) == {"bf16", "q8_0"}
    assert cpp["notices"] == ["llama.cpp's -ctk/-ctv take no fp8: not shown."]
    ideal = next(e for e in resp["engines"] if e["engine"] == "ideal")
    # llama.cpp pads each slot's cells to 256: 4 × 10240 cells of 128 KiB
    # (32 layers × 8 KV heads × 128 × K and V × 2 bytes)
    assert cpp["row"]["cache"]["bf16"] == 4 * 10240 * 131072
    assert ideal["row"]["cache"]["bf16"] == 4 * 10000 * 131072


def test_vocabulary_per_engine() -> None:
    resp = side("meta-llama/Llama-3.1-8B", kv_dtypes=["fp8"], batch_size=2)
    launch = {e["engine"]: e["launch"].get("fp8") for e in resp["engines"]}
    assert "--max-model-len 32768 --max-num-seqs 2 --kv-cache-dtype fp8" in launch["vllm"]["command"]
    assert "gpu_memory_utilization" in launch["vllm"]["terms"]
    assert "--kv-cache-dtype fp8_e4m3 --page-size 1" in launch["sglang"]["command"]
    assert "--mem-fraction-static 0.83" in launch["sglang"]["command"]  # H100, tp 1 (memory_hook.py)
    assert "tokens_per_block" in launch["trtllm"]["terms"]
    assert launch["llama.cpp"] is None  # fp8 is no llama.cpp cache type
    assert launch["transformers"] is None  # transformers caches in the model dtype


@pytest.mark.parametrize(
    ("patch", "start"),
    [
        ({"engines": []}, "engines: expected a list"),
        ({"engines": "vllm"}, "engines: expected a list"),
        ({"engines": ["vllm", "tgi"]}, "engines: unknown engine 'tgi'"),
        ({"models": []}, "models: engines side by side compares one model"),
        ({"seq_len": 0}, "seq_len: must be ≥ 1"),
    ],
)
def test_bad_requests_name_the_field(patch: dict[str, Any], start: str) -> None:
    model = {"id": "x", "config": hf_config("Qwen/Qwen3-8B")}
    req = {"op": "compare", "engines": ["vllm"], "models": [model], **patch}
    resp = call(req)
    assert not resp["ok"] and resp["error"].startswith(start), resp


def test_tp_applies_to_vllm_and_llama_cpp_answers_one_device() -> None:
    resp = side("meta-llama/Llama-3.1-8B", tensor_parallel_size=2, engines=["vllm", "llama.cpp"])
    vllm, cpp = resp["engines"]
    one = engine_bytes("meta-llama/Llama-3.1-8B", "vllm", 32768, 1, "bf16")
    assert (
        vllm["row"]["cache"]["bf16"] == one // 2
        and "--tensor-parallel-size 2" in vllm["launch"]["bf16"]["command"]
    )
    assert cpp["row"]["cache"]["bf16"] == engine_bytes(
        "meta-llama/Llama-3.1-8B", "llama.cpp", 32768, 1, "bf16"
    )
    assert any("tensor parallel set to 1" in n for n in cpp["notices"])


@pytest.mark.parametrize(
    ("hf_id", "seq", "batch"), [("meta-llama/Llama-3.1-8B", 32768, 4), ("openai/gpt-oss-20b", 8192, 3)]
)
def test_plain_compare_under_llama_cpp_is_batch_slots_of_seq_tokens(hf_id: str, seq: int, batch: int) -> None:
    """The page's "batch b at L tokens" under llama.cpp is -c b·L -np b (was -c L: L/b tokens a slot)."""
    req = {"op": "compare", "models": [{"id": hf_id, "config": hf_config(hf_id)}], "seq_len": seq,
           "batch_size": batch, "kv_dtypes": ["bf16"], "engine": "llama.cpp", "lines": False}  # fmt: skip
    resp = call(req)
    assert resp["ok"], resp
    assert resp["models"][0]["cache"]["bf16"] == engine_bytes(hf_id, "llama.cpp", seq, batch, "bf16")
    one_slot = engine_bytes(hf_id, "llama.cpp", seq, 1, "bf16")
    assert resp["models"][0]["cache"]["bf16"] >= one_slot  # b slots of L tokens hold at least one slot's
