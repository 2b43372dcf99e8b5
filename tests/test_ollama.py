"""Ollama v0.32.15 on llama-server (kvcalc.deploy.ollama): launch flags, Ollama's estimates, ``ollama ps``.

Cases marked "Go test" are copied from Ollama's own tests at v0.32.15 (file + test name given); the
others write out the arithmetic of the Go function named in each docstring.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kvcalc.core.model import load_model
from kvcalc.deploy import llamacpp_plan as P
from kvcalc.deploy import ollama as O
from kvcalc.errors import KVCalcError

ROOT = Path(__file__).resolve().parents[1]
GIB, MIB = 1 << 30, 1 << 20


def _model(name: str):  # type: ignore[no-untyped-def]
    return load_model(ROOT / "configs" / name / "config.json")


# ------------------------------------------------------------------------- Go tests, copied


@pytest.mark.parametrize(
    ("b", "text"),
    [(0, "0 B"), (1, "1 B"), (999, "999 B"), (1000, "1 KB"), (1500, "1.5 KB"), (999999, "999 KB"),
     (1000000, "1 MB"), (1500000, "1.5 MB"), (999999999, "999 MB"), (1000000000, "1 GB"),
     (1500000000, "1.5 GB"), (999999999999, "999 GB"), (1000000000000, "1 TB"), (1500000000000, "1.5 TB"),
     (1999999999999, "2.0 TB"), (1234, "1.2 KB"), (1234567, "1.2 MB"), (1234567890, "1.2 GB")],
)  # fmt: skip
def test_human_bytes_go_test(b: int, text: str) -> None:
    """Go test: format/bytes_test.go TestHumanBytes (what ``ollama ps`` prints in SIZE)."""
    assert O.human_bytes(b) == text


@pytest.mark.parametrize(
    ("ctx", "predicted", "available", "fa", "cuda", "gpu", "want"),
    [
        (4096, 0, 0, "auto", False, 0, 512),  # small context keeps default
        (32768, 0, 0, "auto", False, 0, 1024),  # medium context uses 1024 with unknown memory
        (131072, 8 * GIB, 14 * GIB, "auto", False, 0, 2048),  # large context uses 2048 with headroom
        (131072, 9 * GIB, 14 * GIB, "auto", False, 0, 1024),  # steps down without 2048 headroom
        (131072, 8 * GIB, 11 * GIB, "auto", False, 0, 1024),  # steps down to 1024 for headroom
        (32768, 8500 * MIB, 11 * GIB, "auto", False, 0, 512),  # medium steps down to 512
        (131072, 8 * GIB, 14 * GIB, "off", True, 14 * GIB, 512),  # flash attention off: no promotion
        (131072, 3 * GIB, 6 * GIB, "off", True, 6 * GIB, 256),  # constrained CUDA without flash attention
    ],
)
def test_automatic_batch_go_test(
    ctx: int, predicted: int, available: int, fa: str, cuda: bool, gpu: int, want: int
) -> None:
    """Go test: server/sched_test.go TestAutomaticGenerationBatch (every case)."""
    assert O.automatic_batch(ctx, predicted, available, fa, cuda, gpu) == want


# ------------------------------------------------------------------------- Ollama's arithmetic, written out


@pytest.mark.parametrize(
    ("gpus", "overhead", "want"),
    [
        ((24 * GIB,), 0, 32768),
        ((23 * GIB,), 0, 32768),
        ((23 * GIB - 1,), 0, 4096),
        ((24 * GIB,), 2 * GIB, 4096),  # 24 − 2 = 22 GiB < 23
        ((16 * GIB,), 0, 4096),
        ((48 * GIB,), 0, 262144),
        ((24 * GIB, 24 * GIB), 0, 262144),  # 48 ≥ 47
        ((24 * GIB, 24 * GIB), 1 * GIB, 32768),  # 46 < 47
        ((), 0, 4096),  # CPU only
    ],
)
def test_default_num_ctx_vram_tiers(gpus: tuple[int, ...], overhead: int, want: int) -> None:
    """server/routes.go Serve: Σ(TotalMemory − OLLAMA_GPU_OVERHEAD) ≥ 47 GiB → 256K, ≥ 23 GiB → 32K."""
    assert O.default_num_ctx(gpus, overhead) == want


@pytest.mark.parametrize(
    ("name", "num_ctx", "want"),
    [
        # Llama-3.1-8B: 2·32 layers·8 kv heads·(4096/32 = 128)·ctx·2 bytes = 131072·ctx
        ("meta-llama/Llama-3.1-8B", 32768, 5_000_000_000 + 131072 * 32768),
        # gpt-oss-20b: head_dim is 64 but Ollama takes 2880 // 64 heads = 45: 2·24·8·45·ctx·2 = 34560·ctx
        ("openai/gpt-oss-20b", 32768, 5_000_000_000 + 34560 * 32768),
        # Qwen3-0.6B: head_dim 128 but 1024 // 16 = 64: 2·28·8·64·ctx·2 = 57344·ctx
        ("Qwen/Qwen3-0.6B", 4096, 5_000_000_000 + 57344 * 4096),
    ],
)
def test_predict_server_vram(name: str, num_ctx: int, want: int) -> None:
    """llm/llama_server.go PredictServerVRAM: file size + 2·block_count·head_count_kv_min·
    (embedding_length / head_count_max)·ctx·2 — f16 whatever OLLAMA_KV_CACHE_TYPE says."""
    f = O.facts_of_config(_model(name))
    got = O.predict_server_vram(5_000_000_000, f.block_count, f.head_count_kv_min, f.embedding_length,
                                f.head_count_max, num_ctx)  # fmt: skip
    assert got == want


@pytest.mark.parametrize(
    ("size", "vram", "text"),
    [
        (10, 0, "100% CPU"),
        (10, 10, "100% GPU"),
        (10, 11, "Unknown"),
        (10, 4, "60%/40% CPU/GPU"),
        (100, 52, "48%/52% CPU/GPU"),
        (8, 4, "50%/50% CPU/GPU"),
        (200, 199, "1%/99% CPU/GPU"),  # 0.5 % rounds away from zero (Go math.Round), not to even
        (1000, 995, "1%/99% CPU/GPU"),  # 0.5 %
        (1000, 996, "0%/100% CPU/GPU"),  # 0.4 %
    ],
)
def test_ps_processor(size: int, vram: int, text: str) -> None:
    """cmd/cmd.go ListRunningHandler: cpu = math.Round((Size − SizeVRAM) / Size · 100)."""
    assert O.processor(size, vram) == text


# ------------------------------------------------------------------------- launch and KV


def _facts(**kw):  # type: ignore[no-untyped-def]
    base = dict(family="llama", context_length=131072, block_count=32, head_count_kv_min=8,
                head_count_max=32, embedding_length=4096)  # fmt: skip
    return O.ModelFacts(**(base | kw))


def test_launch_flags_and_clips() -> None:
    """startLlamaServer: -c num_ctx·num_parallel -np num_parallel; num_ctx cut to context_length."""
    la = O.launch(_facts(), O.Settings(num_ctx=8192, num_parallel=4, kv_cache_type="Q8_0"), (24 * GIB,),
                  file_bytes=0)  # fmt: skip
    assert la.argv() == ["-c", "32768", "-np", "4", "--cache-type-k", "q8_0", "--cache-type-v", "q8_0",
                         "--flash-attn", "auto", "-b", "1024", "-ub", "1024"]  # fmt: skip
    big = O.launch(_facts(), O.Settings(num_ctx=10**6), (24 * GIB,), file_bytes=0)
    assert big.num_ctx == 131072 and "cut to the model's context_length" in big.notes[0]
    assert O.launch(_facts(), O.Settings(num_ctx=1), (), file_bytes=0).num_ctx == 4  # getRunner minimum
    assert O.launch(_facts(vision=True), O.Settings(num_ctx=512), (), file_bytes=0).num_ctx == 2048
    env = O.launch(_facts(), O.Settings(context_length=8192), (48 * GIB,), file_bytes=0)
    assert env.num_ctx == 8192 and env.num_ctx_source == "OLLAMA_CONTEXT_LENGTH"
    off = O.launch(_facts(), O.Settings(flash_attention=False), (8 * GIB,), file_bytes=0)
    assert off.flash_attn == "off" and off.num_batch == 512
    with pytest.raises(KVCalcError, match="OLLAMA_KV_CACHE_TYPE"):
        O.launch(_facts(), O.Settings(kv_cache_type="q3_k"), (), file_bytes=0)


def test_no_parallel_families_and_mtp() -> None:
    """sched.go load forces num_parallel 1 for qwen3next & co; MTP drafts are refused by name."""
    nxt = O.facts_of_config(_model("Qwen/Qwen3-Next-80B-A3B-Thinking"))
    assert nxt.family == "qwen3next"
    la = O.launch(nxt, O.Settings(num_ctx=4096, num_parallel=4), (24 * GIB,), file_bytes=0)
    assert la.num_parallel == 1 and la.n_ctx == 4096
    for name in ("deepseek-ai/DeepSeek-V3", "Qwen/Qwen3.5-27B"):
        with pytest.raises(KVCalcError, match="MTP draft"):
            O.launch(O.facts_of_config(_model(name)), O.Settings(), (24 * GIB,), file_bytes=0)


def _answer(name: str, gpu: str = "4090", **kw):  # type: ignore[no-untyped-def]
    return O.answer(_model(name), P.gpu_machine(gpu), O.Settings(**kw), quant="Q4_K_M")


@pytest.mark.parametrize(
    ("kw", "n_ctx", "kv_bytes"),
    [
        # 4090 (23.64 GiB ≥ 23) → num_ctx 32768: 2·32 layers·32768 cells·1024 (8·128)·2 B = 4 GiB
        ({}, 32768, 2 * 32 * 32768 * 1024 * 2),
        # 4 slots of 8192: -c 32768 -np 4, one stream each of pad(32768/4, 256) = 8192 cells
        ({"num_ctx": 8192, "num_parallel": 4}, 32768, 2 * 32 * 4 * 8192 * 1024 * 2),
        # -c 3000 -np 3: n_ctx pad(3000,256) = 3072, n_ctx_seq pad(1024,256) = 1024 → 3072 cells
        ({"num_ctx": 1000, "num_parallel": 3}, 3000, 2 * 32 * 3072 * 1024 * 2),
        # q8_0 (34 B / 32 values: 1024 values → 1088 B per row), flash attention auto
        ({"num_ctx": 4096, "kv_cache_type": "q8_0"}, 4096, 2 * 32 * 4096 * 1088),
        # q4_0 (18 B / 32: 576 B per row), flash attention forced on
        ({"num_ctx": 4096, "kv_cache_type": "q4_0", "flash_attention": True}, 4096, 2 * 32 * 4096 * 576),
    ],
)
def test_llama_kv_under_ollama(kw: dict, n_ctx: int, kv_bytes: int) -> None:
    """Llama-3.1-8B: KV = llama.cpp's arithmetic for the flags Ollama passes."""
    a = _answer("meta-llama/Llama-3.1-8B", **kw)
    assert a.launch.n_ctx == n_ctx and a.memory.bytes == kv_bytes


def test_gpt_oss_swa_cache_follows_ollamas_batch() -> None:
    """gpt-oss-20b, num_ctx 32768 on a 4090: Ollama's automatic num_batch 1024 (32768 > 4096) reaches
    llama.cpp as -ub 1024, so the SWA cache is pad(128 + 1024, 256) = 1280 cells (768 with num_batch 512).
    12 full + 12 SWA layers · 8 kv heads · 64 · 2 B · (K + V)."""
    auto = _answer("openai/gpt-oss-20b", num_ctx=32768)
    assert auto.launch.num_batch == 1024
    row = 8 * 64 * 2 * 2
    assert auto.memory.bytes == 12 * row * 32768 + 12 * row * 1280
    fixed = _answer("openai/gpt-oss-20b", num_ctx=32768, num_batch=512)
    assert fixed.memory.bytes == 12 * row * 32768 + 12 * row * 768


def test_quantized_v_without_flash_attention_is_refused() -> None:
    """OLLAMA_KV_CACHE_TYPE=q8_0 with OLLAMA_FLASH_ATTENTION=0: llama-server refuses (quantized V)."""
    with pytest.raises(KVCalcError, match="OLLAMA_KV_CACHE_TYPE: llama-server would refuse"):
        _answer("meta-llama/Llama-3.1-8B", num_ctx=4096, kv_cache_type="q8_0", flash_attention=False)


def test_ps_full_offload_and_partial() -> None:
    """Full offload: MemorySize reports total = vram → "100% GPU"; SIZE ≥ the GPU's model + KV buffers."""
    ps = _answer("meta-llama/Llama-3.1-8B").ps()
    assert ps["processor"] == "100% GPU" and ps["context"] == 32768 and ps["size_exact"] is False
    big = O.answer(_model("meta-llama/Llama-3.1-70B"), P.gpu_machine("4090"), O.Settings(num_ctx=8192),
                   quant="Q4_K_M").ps()  # fmt: skip
    assert big["processor"] == "not modelled"
    # without compute buffers: CPU share = CPU bytes / (CPU + GPU bytes), as ListRunningHandler rounds it
    assert big["processor_without_compute"] == O.processor(
        big["size_at_least_bytes"], big["gpu_at_least_bytes"]
    )
    assert big["processor_without_compute"].endswith("CPU/GPU")


# ------------------------------------------------------------------------- properties


@given(st.integers(1, 10**12), st.integers(0, 10**12))
def test_processor_percentages_sum_to_100(size: int, vram: int) -> None:
    text = O.processor(size, vram)
    if "CPU/GPU" in text:
        cpu, gpu = (int(x) for x in text.split()[0].replace("%", "").split("/"))
        assert cpu + gpu == 100 and 0 <= cpu <= 100


@given(st.integers(1, 1 << 20), st.integers(1, 16))
def test_llama_server_context_is_num_ctx_times_parallel(num_ctx: int, parallel: int) -> None:
    la = O.launch(_facts(context_length=0), O.Settings(num_ctx=num_ctx, num_parallel=parallel), (),
                  file_bytes=0)  # fmt: skip
    assert la.n_ctx == max(num_ctx, 4) * parallel
    assert la.argv()[:4] == ["-c", str(la.n_ctx), "-np", str(parallel)]


# ------------------------------------------------------------------------- CLI


def test_cli_plan_engine_ollama() -> None:
    from kvcalc.cli.main import main

    out = io.StringIO()
    with redirect_stdout(out):
        rc = main(["plan", "meta-llama/Llama-3.1-8B", "--engine", "ollama", "--gpu", "4090",
                   "--quant", "Q4_K_M", "--num-parallel", "2", "--kv-cache-type", "q8_0"])  # fmt: skip
    text = out.getvalue()
    assert rc == 0
    assert "llama-server -c 65536 -np 2 --cache-type-k q8_0 --cache-type-v q8_0 --flash-attn auto" in text
    assert "OLLAMA_NUM_PARALLEL=2" in text and "100% GPU" in text and O.RELEASE in text


def test_from_a_gguf_header(tmp_path: Path) -> None:
    """A GGUF alone: Ollama's facts from its metadata, its file size in PredictServerVRAM, llama.cpp's KV."""
    from tests.test_gguf import LLAMA_META, TENSORS, write_gguf

    path = tmp_path / "synthetic.gguf"
    write_gguf(path, LLAMA_META, TENSORS)
    from kvcalc.core import gguf

    g = gguf.read_file(path)
    f = O.facts_of_gguf(g)
    assert (f.family, f.block_count, f.head_count_kv_min, f.head_count_max, f.context_length) == (
        "llama", 2, 8, 32, 8192)  # fmt: skip
    size = path.stat().st_size
    a = O.answer(None, P.gpu_machine("4090"), O.Settings(num_ctx=4096), gguf=g, file_bytes=size)
    # PredictServerVRAM: file + 2·2 blocks·8·(4096/32)·4096·2
    assert a.launch.predicted_vram == size + 2 * 2 * 8 * 128 * 4096 * 2
    assert a.memory.bytes == 2 * 2 * 4096 * 1024 * 2
    # 32K default on a 4090 is cut to the GGUF's context_length 8192
    assert O.answer(None, P.gpu_machine("4090"), O.Settings(), gguf=g).launch.num_ctx == 8192


_CUDA = O.Device("CUDA", 8, 9, 12)


@pytest.mark.parametrize(
    ("devices", "want"),
    [
        ([O.Device("CUDA", 5, 0, 12)], False),  # cuda compute 5.0 unsupported
        ([O.Device("CUDA", 6, 0, 12)], True),
        ([O.Device("CUDA", 6, 1, 12)], True),
        ([O.Device("CUDA", 6, 2, 12)], True),
        ([O.Device("CUDA", 7, 2, 12)], False),  # cuda compute 7.2 unsupported
        ([O.Device("CUDA", 7, 0, 12)], True),
        ([O.Device("CUDA", 7, 5, 12)], True),
        ([O.Device("CUDA", 8, 9, 0)], True),  # unknown driver supported by compute
        ([O.Device("CUDA", -1, -1, 12)], False),  # unknown compute unsupported
        ([_CUDA, O.Device("CUDA", 5, 0, 12)], False),  # mixed cuda unsupported
        ([O.Device("Metal")], True),
    ],
)
def test_flash_attention_supported_go_test(devices: list, want: bool) -> None:
    """Go test: ml/device_test.go TestFlashAttentionSupported (every case)."""
    assert O.flash_attention_supported(devices) is want


_OLD = [O.Device("CUDA", 8, 9, 12), O.Device("CUDA", 5, 0, 12)]


@pytest.mark.parametrize(
    ("env", "devices", "flag"),
    [
        (None, [O.Device("CUDA", 8, 9, 13)], "auto"),  # unset uses llama-server auto mode
        ("", [O.Device("CUDA", 8, 9, 13)], "auto"),  # empty uses auto
        ("0", [O.Device("CUDA", 8, 9, 13)], "off"),
        ("false", [O.Device("CUDA", 8, 9, 13)], "off"),
        ("1", [O.Device("CUDA", 8, 9, 13)], "on"),
        ("true", [O.Device("CUDA", 8, 9, 13)], "on"),
        ("random", [O.Device("CUDA", 8, 9, 13)], "on"),  # invalid enables flash attention
        (None, _OLD, "off"),  # old cuda disables flash attention by default
        ("1", _OLD, "on"),  # explicit enable overrides old cuda default
    ],
)
def test_flash_attn_flag_go_test(env: str | None, devices: list, flag: str) -> None:
    """Go test: llm/llama_server_test.go TestAppendFlashAttentionArgs (every case)."""
    assert O.flash_attn_flag(env, O.flash_attention_supported(devices)) == flag


def test_effective_context_is_stored_go_test() -> None:
    """Go test: server/sched_test.go TestSchedLoadStoresEffectiveContextLength: num_ctx 262144 on a
    model whose context is 131072 → the runner (and ``ollama ps`` CONTEXT) keeps 131072."""
    la = O.launch(_facts(context_length=131072), O.Settings(num_ctx=262144), (), file_bytes=0)
    assert la.num_ctx == 131072


def test_embedding_gguf_is_refused_and_overhead_only_moves_the_tier(tmp_path: Path) -> None:
    """A GGUF with ``{arch}.pooling_type`` is an embedding model (NewLlamaServerRunner): refused by name.
    OLLAMA_GPU_OVERHEAD lowers the num_ctx tier (routes.go) but not the batch's free memory (sched.go)."""
    from kvcalc.core import gguf
    from tests.test_gguf import LLAMA_META, TENSORS, write_gguf

    path = tmp_path / "embed.gguf"
    write_gguf(path, LLAMA_META | {"llama.pooling_type": 1}, TENSORS)
    with pytest.raises(KVCalcError, match="embedding model"):
        O.answer(None, P.gpu_machine("4090"), O.Settings(), gguf=gguf.read_file(path))
    # 24 GiB − 2 GiB overhead = 22 GiB → 4096 tokens; predicted 14 GiB of 24 free: 2048 needs ≤ 60 % =
    # 14.4 GiB (with the overhead subtracted it would be 13.2 GiB and the batch 1024)
    la = O.launch(_facts(context_length=0), O.Settings(num_ctx=65536, gpu_overhead=2 * GIB), (24 * GIB,),
                  file_bytes=14 * GIB - 2 * 32 * 8 * 128 * 65536 * 2)  # fmt: skip
    assert la.predicted_vram == 14 * GIB and la.num_batch == 2048  # 14 ≤ 14.4 and 2 GiB ≤ 19.2 − 14
    assert O.launch(_facts(), O.Settings(gpu_overhead=2 * GIB), (24 * GIB,), file_bytes=0).num_ctx == 4096


def test_kvcalc_plan_engine_ollama() -> None:
    """``kvcalc.plan(model, engine="ollama", …)`` reaches the same answer as the CLI."""
    import kvcalc

    got = kvcalc.plan(_model("meta-llama/Llama-3.1-8B"), engine="ollama", gpu="4090", quant="Q4_K_M",
                      num_ctx=8192, num_parallel=2, kv_cache_type="q8_0")  # fmt: skip
    d = got.as_dict()
    assert d["llama_server_args"][:4] == ["-c", "16384", "-np", "2"]
    assert d["kv_bytes"] == 2 * 32 * 2 * 8192 * 1088 and d["ps"]["context"] == 8192
    with pytest.raises(KVCalcError, match="gpu: give gpu="):
        kvcalc.plan(_model("meta-llama/Llama-3.1-8B"), engine="ollama", quant="Q4_K_M")


def test_converter_facts_for_mla_and_hybrids() -> None:
    """llama.cpp's converter writes head_count_kv = 1 for MLA (conversion/deepseek.py); hybrids get
    per-layer head counts a config cannot give, so the estimate is flagged."""
    kimi = O.facts_of_config(_model("moonshotai/Kimi-K2-Instruct"))
    assert kimi.head_count_kv_min == 1 and kimi.estimate_exact
    nem = O.facts_of_config(_model("nvidia/Nemotron-H-56B-Base-8K"))
    assert not nem.estimate_exact
    la = O.launch(nem, O.Settings(num_ctx=4096), (24 * GIB,), file_bytes=0)
    assert la.num_parallel == 1 and any("hybrid model" in n for n in la.notes)
    assert O.facts_of_config(_model("openai/gpt-oss-20b")).estimate_exact
