"""kvcalc.plan(model, engine=…): each serving engine's own planner, reached through one entry point."""

from __future__ import annotations

import pytest

import kvcalc
from kvcalc.deploy import llamacpp_plan, sglang_plan
from kvcalc.deploy import plan as vllm_plan
from kvcalc.engines import trtllm
from kvcalc.engines.llamacpp import Settings
from tests.shared_configs import hf_config

LLAMA = kvcalc.load_model(hf_config("meta-llama/Llama-3.1-8B"))


def test_vllm_is_the_default_and_the_same_plan() -> None:
    kw = {"gpu": "H100", "max_model_len": 32768}
    assert kvcalc.plan(LLAMA, **kw).as_dict() == vllm_plan.plan(LLAMA, **kw).as_dict()
    assert kvcalc.plan(LLAMA, engine="vllm", **kw).as_dict() == vllm_plan.plan(LLAMA, **kw).as_dict()


def test_sglang_plan_is_sglangs() -> None:
    got = kvcalc.plan(LLAMA, engine="sglang", available_bytes=40 << 30)
    want = sglang_plan.plan_sglang(LLAMA, available_bytes=40 << 30)
    assert got.as_dict() == want.as_dict()


def test_trtllm_plan_is_its_capacity() -> None:
    got = kvcalc.plan(LLAMA, engine="trtllm", free_bytes=60 << 30)
    assert got == trtllm.capacity(LLAMA, 60 << 30)
    with pytest.raises(kvcalc.KVCalcError, match="free_bytes: the trtllm plan needs"):
        kvcalc.plan(LLAMA, engine="trtllm")


def test_llamacpp_plan_takes_its_own_flags() -> None:
    got = kvcalc.plan(LLAMA, engine="llama.cpp", gpu="4090", quant="Q4_K_M", n_ctx=32768, type_k="q8_0")
    machine = llamacpp_plan.gpu_machine("4090", 1, 64, None)
    want = llamacpp_plan.plan(LLAMA, machine, Settings(n_ctx=32768, type_k="q8_0").checked(), quant="Q4_K_M")
    assert got.as_dict() == want.as_dict()
    mac = kvcalc.plan(LLAMA, engine="llama.cpp", machine="m3-max-64gb", quant="Q4_K_M", n_ctx=8192)
    assert mac.as_dict()["fits"]
    with pytest.raises(kvcalc.KVCalcError, match="gpu: give gpu="):
        kvcalc.plan(LLAMA, engine="llama.cpp", quant="Q4_K_M")


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        ("ideal", "engine: 'ideal' is an accounting, not a server"),
        ("transformers", "engine: 'transformers' is an accounting"),
        ("tgi", "engine: unknown engine 'tgi'"),
        (None, "engine: unknown engine None"),
    ],
)
def test_engines_without_a_plan_are_refused(engine: object, message: str) -> None:
    with pytest.raises(kvcalc.KVCalcError, match=message):
        kvcalc.plan(LLAMA, engine=engine, gpu="H100")  # type: ignore[arg-type]
