"""``kvcalc plan --engine llama.cpp``: layer offload, Mac working set, expert offload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvcalc.core.model import load_model
from kvcalc.deploy import llamacpp_plan as P
from kvcalc.engines import llamacpp as L
from kvcalc.errors import KVCalcError

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def _model(name: str):  # type: ignore[no-untyped-def]
    return load_model(ROOT / "configs" / name / "config.json")


@pytest.mark.parametrize(
    ("ram_gb", "logged_mib"),
    [(16, 10922.67), (32, 21845.34), (64, 49152.00)],  # recommendedMaxWorkingSetSize in llama.cpp logs
)
def test_mac_working_set(ram_gb: int, logged_mib: float) -> None:
    assert abs(P.working_set(ram_gb) / MIB - logged_mib) < 0.02


def test_quant_bits_from_llamacpp_table() -> None:
    """Q4_K_M: 4.58 GiB for Llama-3-8B's 8.03 B parameters → 4.90 bits per weight."""
    assert round(P.BPW["Q4_K_M"], 2) == 4.90 and round(P.BPW["Q8_0"], 2) == 8.51
    with pytest.raises(KVCalcError, match="quant: unknown llama.cpp type 'Q7_K'"):
        P.weights_from_config(_model("meta-llama/Llama-3.1-8B"), "Q7_K")


def test_everything_on_one_big_gpu() -> None:
    model = _model("meta-llama/Llama-3.1-8B")
    pl = P.plan(model, P.gpu_machine("h100"), L.Settings(n_ctx=8192), quant="Q4_K_M")
    assert pl.n_gpu_layers == 33 and pl.fits and pl.kv_cpu == 0
    assert pl.kv_gpu == L.memory(model, L.Settings(n_ctx=8192)).bytes


def test_partial_offload_is_maximal() -> None:
    """The chosen -ngl fits every GPU's budget and one layer more does not."""
    model = _model("meta-llama/Llama-3.1-70B")
    machine = P.gpu_machine("3090", 2)
    s = L.Settings(n_ctx=32768)
    pl = P.plan(model, machine, s, quant="Q4_K_M")
    budget = [b - P.FIT_MARGIN for b in machine.gpu_bytes]
    assert 0 < pl.n_gpu_layers <= 80 and all(g <= b for g, b in zip(pl.gpu_bytes, budget, strict=True))
    more = P.plan(model, machine, s, quant="Q4_K_M", n_gpu_layers=pl.n_gpu_layers + 1)
    assert not all(g <= b for g, b in zip(more.gpu_bytes, budget, strict=True))
    # bytes are conserved: GPU + CPU = weights + KV
    w = P.weights_from_config(model, "Q4_K_M")
    total = w.embeddings + sum(w.layers) + sum(w.experts) + w.output + pl.memory.bytes
    assert sum(pl.gpu_bytes) + pl.cpu_bytes == total


def test_expert_offload_frees_gpu_memory() -> None:
    model = _model("Qwen/Qwen3-30B-A3B")
    machine = P.gpu_machine(None, vram_gib=16)
    s = L.Settings(n_ctx=131072)
    none = P.plan(model, machine, s, quant="Q4_K_M")
    all_moe = P.plan(model, machine, s, quant="Q4_K_M", n_cpu_moe=48)
    assert none.n_gpu_layers < 49 and all_moe.n_gpu_layers == 49
    assert all_moe.weights_cpu > none.weights_cpu / 2


@settings(max_examples=30, deadline=None)
@given(vram=st.floats(min_value=2, max_value=200), n_ctx=st.integers(min_value=256, max_value=131072))
def test_more_memory_never_fewer_layers(vram: float, n_ctx: int) -> None:
    model = _model("meta-llama/Llama-3.1-8B")
    s = L.Settings(n_ctx=n_ctx)
    a = P.plan(model, P.gpu_machine(None, vram_gib=vram), s, quant="Q4_K_M")
    b = P.plan(model, P.gpu_machine(None, vram_gib=vram * 1.5), s, quant="Q4_K_M")
    assert b.n_gpu_layers >= a.n_gpu_layers


def test_gguf_weights_are_exact() -> None:
    """With a GGUF header (the converter's own, tensor data dropped) the weights come from its tensors."""
    from kvcalc.core import gguf

    path = ROOT / "tests" / "data" / "llamacpp_gguf" / "meta-llama--Llama-3.1-8B.gguf"
    if not path.exists():
        pytest.skip("run scripts/validate_llamacpp.py")
    header = gguf.read_file(path)
    w = P.weights_from_gguf(header)
    assert w.exact and w.embeddings + sum(w.layers) + sum(w.experts) + w.output == header.weight_bytes()
    pl = P.plan(_model("meta-llama/Llama-3.1-8B"), P.gpu_machine("4090"), L.Settings(n_ctx=4096), gguf=header)
    assert pl.n_gpu_layers == 33


def test_cli_plan(capsys: pytest.CaptureFixture[str]) -> None:
    from kvcalc.cli.main import main

    argv = ["plan", "Llama-3.1-70B", "--engine", "llama.cpp", "--machine", "m3-max-64gb", "--quant", "Q4_K_M"]
    assert main([*argv, "-c", "32k", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["machine"] == "Apple M3 Max 64GB" and d["gpu_budget_bytes"] == [48 * (1 << 30) - P.FIT_MARGIN]
    assert main([*argv[:5], "m9-max-64gb", "--quant", "Q4_K_M"]) == 2
    assert "not a known Mac" in capsys.readouterr().err


def test_cli_plan_one_gpu_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    from kvcalc.cli.main import main

    argv = [
        "plan",
        "Llama-3.1-8B",
        "--engine",
        "llama.cpp",
        "--gpu",
        "4090",
        "--quant",
        "Q4_K_M",
        "-c",
        "32k",
    ]
    assert main([*argv, "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert len(d["gpu_bytes"]) == 1 and d["all_on_gpu"] and d["kv_bytes"] == 4 * (1 << 30)


def test_n_cpu_moe_auto_is_the_fewest() -> None:
    model = _model("Qwen/Qwen3-30B-A3B")
    machine = P.gpu_machine(None, vram_gib=16)
    s = L.Settings(n_ctx=131072)
    auto = P.plan(model, machine, s, quant="Q4_K_M", n_cpu_moe="auto")
    assert auto.n_gpu_layers == 49 and 0 < auto.n_cpu_moe < 48
    fewer = P.plan(model, machine, s, quant="Q4_K_M", n_cpu_moe=auto.n_cpu_moe - 1)
    assert fewer.n_gpu_layers < 49
    with pytest.raises(KVCalcError, match="no experts"):
        P.plan(_model("meta-llama/Llama-3.1-8B"), machine, s, quant="Q4_K_M", n_cpu_moe="auto")


def test_layer_placement_follows_load_tensors() -> None:
    """i_gpu_start = n_layer + 1 − ngl: -ngl 1 offloads only the output layer, then repeating layers from
    the end; two equal GPUs split at (il − i_gpu_start) / ngl = 1/2."""
    assert P.device_of_layers(4, 0, (1,)) == [None] * 5
    assert P.device_of_layers(4, 1, (1,)) == [None, None, None, None, 0]
    assert P.device_of_layers(4, 3, (1,)) == [None, None, 0, 0, 0]
    two = P.device_of_layers(80, 81, (24, 24))
    assert two[:41] == [0] * 41 and two[41:] == [1] * 40
    uneven = P.device_of_layers(3, 4, (3, 1))  # fractions 0, .25, .5, .75 against splits .75, 1
    assert uneven == [0, 0, 0, 1]
