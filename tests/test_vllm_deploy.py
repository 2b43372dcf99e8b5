"""vLLM releases, pipeline/data parallelism, speculative decoding, --kv-cache-memory and the overhead fit."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from kvcalc import KVCalcError
from kvcalc.core.catalog import load_catalog
from kvcalc.core.params import weight_bytes
from kvcalc.deploy import plan as plan_module
from kvcalc.deploy.plan import plan
from kvcalc.deploy.vllm_kv import kv_layout, pp_stage_layers, report
from kvcalc.deploy.vllm_versions import DEFAULT_VLLM_VERSION, VLLM_VERSIONS, get_vllm_version

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog(ROOT / "model_configs.json")
GIB = 1 << 30


def model(name: str):  # noqa: ANN201
    return CATALOG.model(name)


@pytest.mark.parametrize(
    ("logged", "rules"),
    [("0.6.4", "0.6"), ("0.8.3.dev172+g2b93162f", "0.8"), ("v0.10.2", "0.8"), ("0.19.1", "0.8"),
     ("0.20.0", "0.20"), ("0.21.0", "0.21"), ("0.27.1", "0.21"), ("0.28.0", "0.28"), ("0.33.0", "0.28"),
     ("1.2", "0.28")],
)  # fmt: skip
def test_release_maps_to_rules(logged: str, rules: str) -> None:
    assert get_vllm_version(logged).name == rules


def test_release_table() -> None:
    assert DEFAULT_VLLM_VERSION == VLLM_VERSIONS[-1].name == "0.28" and get_vllm_version(None).name == "0.28"
    assert [v.span for v in VLLM_VERSIONS] == ["0.6–0.7", "0.8–0.19", "0.20", "0.21–0.27", "0.28+"]
    assert [v.default_gpu_memory_utilization for v in VLLM_VERSIONS] == [0.9, 0.9, 0.9, 0.9, 0.92]
    assert [v.cudagraph_in_budget for v in VLLM_VERSIONS] == [False, False, False, True, True]
    for bad in ("0.5.4", "latest", 7):
        with pytest.raises(KVCalcError, match="vllm_version"):
            get_vllm_version(bad)


def test_plan_names_the_release_and_applies_its_defaults() -> None:
    m = model("Llama-3.1-8B-Instruct")
    new, old = (
        plan(m, gpu="h100", max_model_len=16_000),
        plan(m, gpu="h100", max_model_len=16_000, vllm_version="0.11"),
    )
    assert (new.vllm_version, new.gpu_memory_utilization, new.cudagraph_bytes) == (
        "0.28",
        0.92,
        round(0.71 * GIB),
    )
    assert (old.vllm_version, old.gpu_memory_utilization, old.cudagraph_bytes) == ("0.8", 0.9, 0)
    assert any("models vLLM 0.28+ releases" in n for n in new.notes)
    eager = plan(m, gpu="h100", max_model_len=16_000, enforce_eager=True)
    assert eager.cudagraph_bytes == 0 and eager.kv_budget_bytes == new.kv_budget_bytes + new.cudagraph_bytes


def test_hybrid_prefix_caching_default_follows_the_release() -> None:
    """Qwen3-Next at tp 2: 0.10 turned prefix caching off for hybrids (1 state page, block 544, as the
    published H200 log prints); 2026 releases keep it on (3 state pages per layer per request, and the
    attention block aligned to lcm(16, 64) for gated delta net: 576)."""
    m = model("Qwen3-Next-80B-A3B-Thinking")
    old = plan(m, gpu="h200", num_gpus=2, vllm_version="0.10.2")
    new = plan(m, gpu="h200", num_gpus=2)
    assert old.page_bytes == 544 * 1024 and old.blocks_per_request == math.ceil(262_144 / 544) + 3 * 1
    assert new.page_bytes == 576 * 1024 and new.blocks_per_request == math.ceil(262_144 / 576) + 3 * 3
    assert any("prefix caching off" in n for n in old.notes) and any(
        "prefix caching on" in n for n in new.notes
    )


def test_token_line_formula_by_release() -> None:
    """≤ 0.19 prints num_blocks // groups × block; later int(concurrency × max_model_len)."""
    m = model("Qwen3-Next-80B-A3B-Thinking")
    layout = kv_layout(m, 262_144, tensor_parallel_size=2, enable_prefix_caching=False)
    assert (layout.group_size, layout.num_groups, layout.blocks_per_request) == (12, 4, 485)
    assert report(layout, 7_162, 262_144, get_vllm_version("0.10.2")) == (973_760, 7_162 / 485)
    assert report(layout, 7_162, 262_144, get_vllm_version("0.28"))[0] == int(7_162 / 485 * 262_144)


@pytest.mark.parametrize(
    ("layers", "pp", "stages"),
    [(40, 2, [20, 20]), (61, 4, [15, 15, 16, 15]), (94, 8, [11, 12, 12, 12, 12, 12, 12, 11]), (32, 1, [32])],
)
def test_pipeline_stages_follow_get_pp_indices(layers: int, pp: int, stages: list[int]) -> None:
    assert pp_stage_layers(layers, pp) == stages and sum(stages) == layers


def test_pipeline_parallel_splits_the_layers() -> None:
    """Qwen3-14B at pp 2: each stage keeps 20 of 40 layers, so a block is half the tp-1 block."""
    m = model("Qwen3-14B")
    one = plan(m, gpu="l4", max_model_len=40_960, weight_dtype="awq")
    pp2 = plan(m, gpu="l4", pipeline_parallel_size=2, max_model_len=40_960, weight_dtype="awq")
    assert (pp2.num_gpus, pp2.tensor_parallel_size, pp2.pipeline_parallel_size) == (2, 1, 2)
    assert pp2.bytes_per_block * 2 == one.bytes_per_block and pp2.group_size == 20
    assert pp2.weights_bytes < one.weights_bytes and pp2.kv_tokens > 2 * one.kv_tokens
    with pytest.raises(KVCalcError, match="num_gpus: 3 is not a multiple of pipeline × data parallel 2"):
        plan(m, gpu="l4", num_gpus=3, pipeline_parallel_size=2)


def test_data_parallel_replicas_are_whole_copies() -> None:
    m = model("Llama-3.1-8B-Instruct")
    one = plan(m, gpu="h100", max_model_len=16_000)
    dp = plan(m, gpu="h100", data_parallel_size=4, max_model_len=16_000)
    assert (dp.num_gpus, dp.replicas, dp.kv_tokens) == (4, 4, one.kv_tokens)
    assert dp.max_batch == 4 * one.max_batch
    with pytest.raises(KVCalcError, match="data_parallel_size: 4 replicas of 2 GPUs need 8 GPUs, not 4"):
        plan(m, gpu="h100", num_gpus=4, tensor_parallel_size=2, data_parallel_size=4)


def test_eagle_draft_layer_holds_kv() -> None:
    """A published EAGLE run (vllm#19996) prints exactly 33/32 of Llama-3.1-8B's KV per token."""
    m = model("Llama-3.1-8B-Instruct")
    base = plan(m, gpu="h100", max_model_len=131_072)
    eagle = plan(
        m,
        gpu="h100",
        max_model_len=131_072,
        speculative_config='{"method": "eagle", "num_speculative_tokens": 3}',
    )
    assert eagle.draft_layers == 1 and eagle.bytes_per_block * 32 == base.bytes_per_block * 33
    assert eagle.per_request_bytes * 32 == base.per_request_bytes * 33


def test_mtp_layers_come_from_the_config() -> None:
    m = model("DeepSeek-V3")  # num_nextn_predict_layers: 1
    base = plan(m, gpu="h200", num_gpus=8, max_model_len=32_768)
    mtp = plan(m, gpu="h200", num_gpus=8, max_model_len=32_768, speculative_config={"method": "deepseek_mtp"})
    assert mtp.draft_layers == 1 and mtp.bytes_per_block * 61 == base.bytes_per_block * 62
    assert plan(m, gpu="h200", num_gpus=8, speculative_config={"method": "ngram"}).draft_layers == 0
    with pytest.raises(KVCalcError, match="speculative_config: 'mtp' needs MTP layers"):
        plan(model("Llama-3.1-8B-Instruct"), gpu="h100", speculative_config={"method": "mtp"})
    with pytest.raises(KVCalcError, match="speculative_config: method 'draft_model' is not modelled"):
        plan(
            model("Llama-3.1-8B-Instruct"),
            gpu="h100",
            speculative_config={"model": "meta-llama/Llama-3.2-1B"},
        )


def test_kv_cache_memory_is_a_fixed_budget() -> None:
    pl = plan(model("Llama-3.1-8B-Instruct"), gpu="h100", max_model_len=16_000, kv_cache_memory=20 * GIB)
    assert pl.kv_budget_bytes == 20 * GIB == pl.kv_budget_range[0] == pl.kv_budget_range[1]
    assert pl.num_blocks == 20 * GIB // pl.bytes_per_block


def test_budget_range_brackets_the_estimate() -> None:
    pl = plan(model("Qwen3-32B"), gpu="h100", num_gpus=2, max_model_len=16_000)
    lo, hi = pl.kv_budget_range
    assert lo < pl.kv_budget_bytes < hi and pl.kv_tokens_range[0] <= pl.kv_tokens <= pl.kv_tokens_range[1]
    pcie = plan(model("Qwen3-32B"), gpu="l40s", num_gpus=2, max_model_len=16_000)
    assert pcie.non_torch_bytes == plan_module.NON_TORCH_PCIE_BYTES < pl.non_torch_bytes


def test_constants_are_the_medians_of_the_published_fit() -> None:
    fit = json.loads((ROOT / "bench/vllm_logs/fit.json").read_text(encoding="utf-8"))
    tp1 = [x["gib"] for x in fit["non_torch"] if x["tp"] == 1]
    nvlink = [x["gib"] for x in fit["non_torch"] if x["tp"] > 1 and x["gpu"] in plan_module.NVLINK_GPUS]
    pcie = [x["gib"] for x in fit["non_torch"] if x["tp"] > 1 and x["gpu"] not in plan_module.NVLINK_GPUS]
    graphs = [x["gib"] for x in fit["cudagraph"]]
    big = [x["gib"] for x in fit["cudagraph"] if (x["largest_capture"] or 0) >= 512]
    small = [
        x["gib"] for x in fit["cudagraph"] if x["largest_capture"] is not None and x["largest_capture"] < 512
    ]
    # 140 / 563 MiB (the H100 measurements) print as 0.14 / 0.55 GiB: a printed step from the medians
    assert abs(plan_module.NON_TORCH_BYTES[1] / GIB - statistics.median(tp1)) <= 0.01
    assert abs(plan_module.NON_TORCH_BYTES[2] / GIB - statistics.median(nvlink)) <= 0.01
    assert round(statistics.median(pcie) * GIB) == plan_module.NON_TORCH_PCIE_BYTES
    assert plan_module.NON_TORCH_RANGE[1] == (round(min(tp1) * GIB), round(max(tp1) * GIB))
    assert plan_module.NON_TORCH_RANGE[2] == (round(min(pcie) * GIB), round(max(nvlink) * GIB))
    assert round(statistics.median(big) * GIB) == plan_module.CUDAGRAPH_BYTES  # largest capture ≥ 512
    assert round(statistics.median(small) * GIB) == plan_module.CUDAGRAPH_SMALL_BYTES
    assert (round(min(graphs) * GIB), round(max(graphs) * GIB)) == plan_module.CUDAGRAPH_RANGE
    per_logit = [x["gib"] * GIB / (x["max_num_seqs"] * x["vocab"]) for x in fit["activation_bytes_per_logit"]]
    assert round(statistics.median(per_logit)) == plan_module.SAMPLER_BYTES_PER_LOGIT


@pytest.mark.parametrize(("name", "logged"), [("gpt-oss-20b", 13.47), ("gpt-oss-120b", 64.38)])
def test_mxfp4_expert_padding_matches_published_weights(name: str, logged: float) -> None:
    """llm-d's H100 runs (v0.11.0) print 'Model loading took 13.47 / 64.38 GiB' for gpt-oss; the
    checkpoint's own bytes are 0.65 / 3.61 GiB less: vLLM pads every expert's hidden dimension to 256."""
    m = model(name)
    pl = plan(m, gpu="h100", max_model_len=16_000, vllm_version="0.11")
    padding = (
        24 * 32 * 3 * 2880 * 192 * 17 // 32 if name == "gpt-oss-20b" else 36 * 128 * 3 * 2880 * 192 * 17 // 32
    )
    assert pl.weights_bytes == weight_bytes(m, vocab_padding=64).total + padding  # 0.63 / 3.79 GiB
    assert abs(pl.weights_bytes / GIB - logged) < 0.2
    assert any("mxfp4 expert padding" in n for n in pl.notes)
