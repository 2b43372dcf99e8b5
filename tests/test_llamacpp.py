"""llama.cpp engine: kvcalc against llama.cpp's own memory lines and byte counts.

docs/llamacpp_validation.json is written by scripts/validate_llamacpp.py, which builds llama.cpp
0c1e57098 (llama-cpp-python 0.3.36 sdist) and creates contexts for small models with the real KV
geometry of configs/; every row there must come out of kvcalc byte for byte (and the log line digit
for digit), and every refusal with llama.cpp's own reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvcalc.core.model import load_model
from kvcalc.engines import llamacpp as L
from kvcalc.errors import KVCalcError

ROOT = Path(__file__).resolve().parents[1]
DOC = json.loads((ROOT / "docs" / "llamacpp_validation.json").read_text())
MODELS = sorted(DOC["models"])


def _model(name: str) -> Any:
    return load_model(ROOT / "configs" / name / "config.json")


def test_validation_covers_the_issue_models() -> None:
    """Issue 15's list, each at >= 2 contexts, f16/q8_0/q4_0, -np 1 and 4."""
    for name in (
        "meta-llama/Llama-3.1-8B",
        "meta-llama/Llama-3.1-70B",
        "Qwen/Qwen2.5-7B-Instruct",
        "Qwen/Qwen3-8B",
        "Qwen/Qwen3-30B-A3B",
        "mistralai/Mistral-7B-v0.1",
        "openai/gpt-oss-20b",
        "deepseek-ai/DeepSeek-V2-Lite",
        "state-spaces/mamba-130m-hf",
    ):
        rows = [r for r in DOC["models"][name]["rows"] if r["ok"]]
        assert len({r["settings"]["n_ctx"] for r in rows}) >= 2, name
        assert {r["settings"]["type_k"] for r in rows} >= {"f16", "q8_0", "q4_0"}, name
        assert {r["settings"]["n_seq_max"] for r in rows} >= {1, 4}, name


@pytest.mark.parametrize("name", MODELS)
def test_every_measured_row(name: str) -> None:
    """Bytes (exact), cells, n_ctx and llama.cpp's log lines; refusals with llama.cpp's reason."""
    model = _model(name)
    entry = DOC["models"][name]
    assert entry.get("rows"), entry.get("error")
    for row in entry["rows"]:
        s = L.Settings.from_cparams(row["settings"])
        if not row["ok"]:
            reason = row["error"].rsplit("llama_init_from_model: ", 1)[-1]
            with pytest.raises(KVCalcError) as exc:
                L.memory(model, s)
            assert reason in str(exc.value), (row["settings"], str(exc.value))
            continue
        mem = L.memory(model, s)
        assert (mem.context.n_ctx, mem.context.n_ctx_seq) == (row["n_ctx"], row["n_ctx_seq"]), row["settings"]
        assert mem.bytes == row["context_bytes"], row["settings"]
        assert [c.log for c in mem.caches] == [c["log"] for c in row["caches"]], row["settings"]


def test_alloc_and_no_alloc_agree() -> None:
    """llama.cpp's dry-run (no_alloc) sizes equal its real allocations, where both were run."""
    compared = 0
    for name in MODELS:
        rows = DOC["models"][name].get("rows", [])
        real = {
            json.dumps(r["settings"], sort_keys=True): r for r in rows if r["mode"] == "alloc" and r["ok"]
        }
        dry = {
            json.dumps(r["settings"], sort_keys=True): r for r in rows if r["mode"] == "no_alloc" and r["ok"]
        }
        both = real.keys() & dry.keys()
        compared += len(both)
        for key in both:
            assert real[key]["context_bytes"] == dry[key]["context_bytes"], (name, key)
    assert compared >= 100  # every real allocation is also checked against kvcalc in test_every_measured_row


# --------------------------------------------------------------------- tables from llama.cpp's code


@pytest.mark.parametrize(
    ("type_name", "n", "row"),
    [
        ("f32", 1024, 4096),
        ("f16", 1024, 2048),
        ("bf16", 1024, 2048),
        ("q8_0", 1024, 1088),  # 32 blocks of 34 B
        ("q4_0", 1024, 576),  # 32 blocks of 18 B
        ("q4_1", 1024, 640),
        ("q5_0", 1024, 704),
        ("q5_1", 1024, 768),
        ("iq4_nl", 1024, 576),
        ("q8_0", 576, 612),  # DeepSeek MLA row: kv_lora_rank 512 + rope 64
    ],
)
def test_row_size(type_name: str, n: int, row: int) -> None:
    assert L.row_size(type_name, n) == row


@pytest.mark.parametrize(
    ("n_ctx", "n_seq", "unified", "cells", "streams", "n_ctx_out"),
    [
        (4096, 1, False, 4096, 1, 4096),
        (5000, 3, False, 1792, 3, 5376),  # pad(5120 / 3, 256) = 1792 per stream
        (5000, 3, True, 5120, 1, 5120),
        (1000, 1, False, 1024, 1, 1024),
        (100, 4, False, 256, 4, 1024),
    ],
)
def test_cells(n_ctx: int, n_seq: int, unified: bool, cells: int, streams: int, n_ctx_out: int) -> None:
    mem = L.memory(
        _model("meta-llama/Llama-3.1-8B"), L.Settings(n_ctx=n_ctx, n_parallel=n_seq, kv_unified=unified)
    )
    (cache,) = mem.caches
    assert (cache.cells, cache.n_stream, mem.context.n_ctx) == (cells, streams, n_ctx_out)


def test_known_sizes() -> None:
    """Llama-3.1-8B at its 131072-token training context: 16 GiB of f16 K+V (-c 0)."""
    mem = L.memory(_model("meta-llama/Llama-3.1-8B"), L.Settings(n_ctx=0))
    assert mem.bytes == 16 * 2**30
    assert mem.log() == [
        "llama_kv_cache: size = 16384.00 MiB (131072 cells,  32 layers,  1/1 seqs), "
        "K (f16): 8192.00 MiB, V (f16): 8192.00 MiB"
    ]


def test_gpt_oss_swa_cache_size() -> None:
    """n_swa 128: SWA cells pad(128 + 512, 256) = 768; unified with 4 slots pad(4·128 + 512) = 1024."""
    model = _model("openai/gpt-oss-20b")
    one = L.memory(model, L.Settings(n_ctx=32768))
    assert [(c.role, c.cells, c.layers) for c in one.caches] == [("non-swa", 32768, 12), ("swa", 768, 12)]
    uni = L.memory(model, L.Settings(n_ctx=32768, n_parallel=4, kv_unified=True))
    assert uni.caches[1].cells == 1024
    full = L.memory(model, L.Settings(n_ctx=32768, swa_full=True))
    assert full.caches[1].cells == 32768


def test_mistral_window_is_dropped() -> None:
    mem = L.memory(_model("mistralai/Mistral-7B-v0.1"), L.Settings(n_ctx=16384))
    assert [c.role for c in mem.caches] == ["kv"] and mem.caches[0].cells == 16384
    assert any("ignores the 4096-token window" in n for n in mem.notes)


def test_mla_is_k_only() -> None:
    mem = L.memory(_model("deepseek-ai/DeepSeek-V2-Lite"), L.Settings(n_ctx=4096))
    (cache,) = mem.caches
    assert cache.v_bytes == 0 and cache.k_bytes == 27 * 4096 * 576 * 2


def test_mamba_state() -> None:
    """mamba-130m: 24 layers of r = 3·1536 and s = 16·1536 f32 per sequence, whatever n_ctx."""
    model = _model("state-spaces/mamba-130m-hf")
    for n_ctx in (512, 65536):
        (cache,) = L.memory(model, L.Settings(n_ctx=n_ctx, n_parallel=2)).caches
        assert (cache.r_bytes, cache.s_bytes) == (24 * 2 * 4 * 3 * 1536, 24 * 2 * 4 * 16 * 1536)


@pytest.mark.parametrize(
    ("model", "kw", "message"),
    [
        (
            "meta-llama/Llama-3.1-8B",
            {"type_v": "q8_0", "flash_attn": "off"},
            "quantized V cache requires flash_attn to be enabled",
        ),
        (
            "deepseek-ai/DeepSeek-V2-Lite",
            {"type_k": "q8_0", "type_v": "f16"},
            "model does not support different K (q8_0) and V (f16) cache types",
        ),
        ("meta-llama/Llama-3.1-8B", {"type_k": "q6_k"}, "type_k: Unsupported cache type: q6_k"),
        ("meta-llama/Llama-3.1-8B", {"flash_attn": "maybe"}, "flash_attn: unknown value for --flash-attn"),
        ("meta-llama/Llama-3.1-8B", {"n_parallel": 257}, "n_seq_max must be <= 256"),
        (
            "meta-llama/Llama-3.1-8B",
            {"n_batch": 0, "n_ubatch": 0},
            "n_batch and n_ubatch cannot both be zero",
        ),
        ("deepseek-ai/DeepSeek-V3.2", {}, "(DSA) indexer cache"),
    ],
)
def test_refusals(model: str, kw: dict[str, Any], message: str) -> None:
    with pytest.raises(KVCalcError, match=message.replace("(", r"\(").replace(")", r"\)")):
        L.memory(_model(model), L.Settings(**kw))


def test_quantized_v_with_auto_turns_flash_attention_on() -> None:
    mem = L.memory(_model("meta-llama/Llama-3.1-8B"), L.Settings(type_v="q4_0", flash_attn="auto"))
    assert mem.context.flash_attn


# --------------------------------------------------------------------- properties

CTX = st.integers(min_value=1, max_value=300_000)
NP = st.integers(min_value=1, max_value=16)
TYPES = st.sampled_from(["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"])
SMALL = [
    "meta-llama/Llama-3.1-8B",
    "openai/gpt-oss-20b",
    "deepseek-ai/DeepSeek-V2-Lite",
    "Qwen/Qwen3-Next-80B-A3B-Thinking",
    "state-spaces/mamba-130m-hf",
]
LOADED = {name: _model(name) for name in SMALL}


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(SMALL), n_ctx=CTX, n_seq=NP, unified=st.booleans(), t=TYPES, swa_full=st.booleans()
)
def test_properties(name: str, n_ctx: int, n_seq: int, unified: bool, t: str, swa_full: bool) -> None:
    s = L.Settings(
        n_ctx=n_ctx,
        n_parallel=n_seq,
        kv_unified=unified,
        type_k=t,
        type_v=t,
        flash_attn="on",
        swa_full=swa_full,
    )
    mem = L.memory(LOADED[name], s)
    assert mem.bytes == sum(c.bytes for c in mem.caches)
    for c in mem.caches:
        if c.role != "recurrent":
            assert c.cells % 256 == 0 and c.cells <= mem.context.n_ctx_seq
            assert c.bytes == c.k_bytes + c.v_bytes  # whole 256-cell blocks: already aligned
    # more context never needs less memory
    bigger = L.memory(LOADED[name], L.Settings(**{**s.__dict__, "n_ctx": n_ctx + 256}))
    assert bigger.bytes >= mem.bytes
    # the recurrent state does not depend on the context or the cache types
    rec = [c for c in mem.caches if c.role == "recurrent"]
    other = L.memory(LOADED[name], L.Settings(n_ctx=512, n_parallel=n_seq))
    assert rec == [c for c in other.caches if c.role == "recurrent"]


@settings(max_examples=40, deadline=None)
@given(n_ctx=CTX, t=st.sampled_from(["q8_0", "q4_0", "q5_1"]))
def test_quantized_is_smaller(n_ctx: int, t: str) -> None:
    model = LOADED["meta-llama/Llama-3.1-8B"]
    f16 = L.memory(model, L.Settings(n_ctx=n_ctx)).bytes
    q = L.memory(model, L.Settings(n_ctx=n_ctx, type_k=t, type_v=t)).bytes
    blck, size = L.GGML_TYPES[t]
    assert q * 2 * blck == f16 * size


# --------------------------------------------------------------------- command line


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from kvcalc.cli.main import main

    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _cli(
        capsys,
        "kv",
        "gpt-oss-20b",
        "--engine",
        "llama.cpp",
        "-c",
        "32k",
        "-np",
        "4",
        "-kvu",
        "-ctk",
        "q8_0",
        "-ctv",
        "q8_0",
        "--json",
    )
    assert rc == 0
    d = json.loads(out)
    expected = L.memory(
        _model("openai/gpt-oss-20b"),
        L.Settings(n_ctx=32768, n_parallel=4, kv_unified=True, type_k="q8_0", type_v="q8_0"),
    )
    assert d["bytes"] == expected.bytes == sum(c["bytes"] for c in d["caches"])
    assert [(c["role"], c["cells"], c["layers"]) for c in d["caches"]] == [
        ("non-swa", 32768, 12),
        ("swa", 1024, 12),
    ]
    assert all(c["k_bytes"] + c["v_bytes"] + c["state_bytes"] == c["bytes"] for c in d["caches"])


def test_cli_ctx_zero_is_training_context(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _cli(capsys, "kv", "Llama-3.1-8B", "--engine", "llama.cpp", "-c", "0", "--json")
    assert rc == 0 and json.loads(out)["n_ctx"] == 131072


def test_cli_text_prints_llamacpp_lines(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _cli(
        capsys,
        "kv",
        "configs/state-spaces/mamba-130m-hf/config.json",
        "--engine",
        "llama.cpp",
        "-c",
        "4096",
        "-np",
        "4",
    )
    mem = L.memory(_model("state-spaces/mamba-130m-hf"), L.Settings(n_ctx=4096, n_parallel=4))
    assert rc == 0 and mem.log()[0].startswith("llama_memory_recurrent: size =   10.69 MiB (     4 cells,")
    assert mem.log()[0] in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-ctv", "q4_0", "-fa", "off"], "quantized V cache requires flash_attn to be enabled"),
        (["-ctk", "q3_k"], "Unsupported cache type: q3_k"),
        (["-fa", "sometimes"], "unknown value for --flash-attn"),
    ],
)
def test_cli_refusals_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    rc, _, err = _cli(capsys, "kv", "Llama-3.1-8B", "--engine", "llama.cpp", "-c", "8k", *argv)
    assert rc == 2 and message in err


# --------------------------------------------------------------------- engine interface


def test_engine_interface() -> None:
    """seq_len → -c, batch_size → -np, kv_dtype → -ctk/-ctv (fp16/auto → f16); per layer sums to the total."""
    from types import SimpleNamespace

    model = _model("openai/gpt-oss-20b")
    req = SimpleNamespace(
        seq_len=8192, batch_size=2, kv_dtype="q8_0", tensor_parallel_size=1, options={"kv_unified": True}
    )
    per_layer = L.layer_bytes(model, req)
    mem = L.memory(model, L.Settings(n_ctx=8192, n_parallel=2, kv_unified=True, type_k="q8_0", type_v="q8_0"))
    assert len(per_layer) == 24 and sum(per_layer) == mem.bytes
    assert per_layer[0] < per_layer[1]  # layer 0 slides (SWA cache), layer 1 is full
    auto = SimpleNamespace(seq_len=4096, batch_size=1, kv_dtype="auto", tensor_parallel_size=1, options={})
    assert sum(L.layer_bytes(model, auto)) == L.kv_cache_bytes(model, 4096)
    with pytest.raises(KVCalcError, match="tensor_parallel_size"):
        L.check(model, SimpleNamespace(**{**req.__dict__, "tensor_parallel_size": 2}))
    with pytest.raises(KVCalcError, match="flash_attn: unknown value for --flash-attn"):
        L.check_options({"flash_attn": "maybe", "block_size": 16})  # vLLM's block_size is not ours
    L.check_options({"block_size": 16})


def test_registered_engine() -> None:
    """kvcalc.kv_cache_bytes(model, n_ctx, engine="llama.cpp", ...): -c, -np, -ctk/-ctv and options."""
    import kvcalc

    model = _model("openai/gpt-oss-20b")
    got = kvcalc.kv_cache_bytes(
        model, 32768, engine="llama.cpp", kv_dtype="q8_0", batch_size=4, kv_unified=True
    )
    s = L.Settings(n_ctx=32768, n_parallel=4, kv_unified=True, type_k="q8_0", type_v="q8_0")
    assert got == L.memory(model, s).bytes
    assert kvcalc.breakdown(model, 32768, engine="llama.cpp", kv_dtype="fp16") == {
        "sliding": 12 * 768 * 2 * 8 * 64 * 2,
        "full": 12 * 32768 * 2 * 8 * 64 * 2,
    }
    with pytest.raises(KVCalcError, match="kv_dtype: 'fp8' is not a llama.cpp cache type"):
        kvcalc.kv_cache_bytes(model, 4096, engine="llama.cpp", kv_dtype="fp8")
    with pytest.raises(KVCalcError, match="quantized V cache requires flash_attn to be enabled"):
        kvcalc.kv_cache_bytes(model, 4096, engine="llama.cpp", kv_dtype="q4_0", flash_attn="off")


# --------------------------------------------------------------------- the converted GGUFs' headers

HEADERS = sorted((ROOT / "tests" / "data" / "llamacpp_gguf").glob("*.gguf"))


@pytest.mark.parametrize("path", HEADERS, ids=lambda p: p.stem)
def test_gguf_header_alone_gives_the_same_answer(path: Path) -> None:
    """The header llama.cpp's converter wrote (tensor data dropped) → the same bytes for every row,
    and its tensors' bytes → llama.cpp's own model buffer (each tensor padded to 32 bytes)."""
    from kvcalc.core import gguf

    name = path.stem.replace("--", "/")
    header = gguf.read_file(path)
    rows = DOC["models"][name]["rows"]
    model_bytes = {r["model_bytes"] for r in rows if r.get("model_bytes") and r["mode"] == "no_alloc"}
    assert model_bytes == {sum(-(-t.nbytes // 32) * 32 for t in header.tensors)}
    for row in rows:
        if row["ok"]:
            mem = L.memory(header, L.Settings.from_cparams(row["settings"]))
            assert mem.bytes == row["context_bytes"], row["settings"]
            assert [c.log for c in mem.caches] == [c["log"] for c in row["caches"]], row["settings"]


@pytest.mark.parametrize("path", sorted((ROOT / "configs").rglob("config.json")), ids=lambda p: p.parent.name)
def test_every_config_answers_or_refuses(path: Path) -> None:
    """Every real config: llama.cpp's bytes, or a KVCalcError naming the field — never a traceback."""
    try:
        model = load_model(path)
        mem = L.memory(model, L.Settings(n_ctx=8192, n_parallel=2, type_k="q8_0", type_v="q8_0"))
    except KVCalcError as exc:
        assert ": " in str(exc)
        return
    assert mem.bytes == sum(mem.layer_bytes()) > 0


def test_cli_reads_a_gguf(capsys: pytest.CaptureFixture[str]) -> None:
    """``kvcalc kv FILE.gguf --engine llama.cpp``: the header alone, weights by tensor type beside the KV."""
    path = ROOT / "tests" / "data" / "llamacpp_gguf" / "openai--gpt-oss-20b.gguf"
    rc, out, _ = _cli(
        capsys, "kv", str(path), "--engine", "llama.cpp", "-c", "32k", "-np", "4", "-kvu", "--json"
    )
    d = json.loads(out)
    s = L.Settings(n_ctx=32768, n_parallel=4, kv_unified=True)
    assert rc == 0 and d["bytes"] == L.memory(_model("openai/gpt-oss-20b"), s).bytes
    assert d["weights"]["architecture"] == "gpt-oss" and d["weights"]["weight_bytes"] > 0
    rc, _, err = _cli(capsys, "kv", str(path), "--seq-len", "1k")
    assert rc == 2 and "a GGUF file is read with --engine llama.cpp" in err


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"n_ctx": -1}, "n_ctx: must be ≥ 0"),
        ({"n_ctx": "abc"}, "n_ctx: expected an integer"),
        ({"n_parallel": 0}, "n_parallel: must be ≥ 1"),
        ({"n_batch": -5}, "n_batch: must be ≥ 0"),
        ({"n_ubatch": 1.5}, "n_ubatch: expected an integer"),
        ({"type_v": "q3_k"}, "type_v: Unsupported cache type: q3_k"),
    ],
)
def test_bad_settings_name_the_flag(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(KVCalcError, match=message):
        L.memory(_model("meta-llama/Llama-3.1-8B"), L.Settings(**kw))


def test_cli_np_auto_is_llama_server_default(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _cli(
        capsys, "kv", "gpt-oss-20b", "--engine", "llama.cpp", "-c", "32k", "-np", "auto", "--json"
    )
    d = json.loads(out)
    assert rc == 0 and (d["n_seq_max"], d["n_stream"]) == (4, 1) and d["caches"][1]["cells"] == 1024
