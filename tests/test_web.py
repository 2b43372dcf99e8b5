"""kvcalc.web.compute: JSON round trips, the error shape, per-model errors, hostile input stays data."""

from __future__ import annotations

import json
from typing import Any

import pytest

import kvcalc
from kvcalc import web
from tests.shared_configs import hf_config, hf_ids

LLAMA = "meta-llama/Llama-3.1-8B"
MISTRAL = "mistralai/Mistral-7B-v0.1"
DEEPSEEK = "deepseek-ai/DeepSeek-V3"
QWEN_NEXT = "Qwen/Qwen3-Next-80B-A3B-Thinking"


def call(req: Any) -> dict[str, Any]:
    out = web.compute(req if isinstance(req, str) else json.dumps(req))
    assert isinstance(out, str)
    return json.loads(out)


def entry(hf_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": hf_id, "name": hf_id.split("/")[1], "config": hf_config(hf_id), **extra}


def compare(models: list[Any], **controls: Any) -> dict[str, Any]:
    return call({**web.DEFAULT_REQUEST, "models": models, **controls})


def test_version_round_trip() -> None:
    assert call({"op": "version"}) == {"ok": True, "version": kvcalc.__version__}


def test_catalog_lists_controls() -> None:
    cat = call({"op": "catalog"})
    from kvcalc.engines import ENGINES

    assert cat["ok"] and "fp8" in cat["dtypes"] and cat["engines"] == list(ENGINES)
    assert {"ideal", "transformers", "vllm"} <= set(cat["engines"])
    assert list(cat["engine_labels"]) == cat["engines"]
    assert cat["engine_labels"]["vllm"] == "vLLM (paged blocks)"
    assert cat["default_request"]["kv_dtypes"] == ["bf16", "fp8"]


@pytest.mark.parametrize(
    ("raw", "start"),
    [
        ("{not json", "request: not valid JSON"),
        ("[1, 2]", "request: must be a JSON object"),
        ('"compare"', "request: must be a JSON object"),
        ('{"op": "explode"}', "op: unknown operation"),
        ('{"op": "compare", "seq_len": -1}', "seq_len: must be ≥ 1"),
        ('{"op": "compare", "seq_len": "128k"}', "seq_len: expected an integer"),
        ('{"op": "compare", "seq_len": 20000000}', "seq_len: 20000000 is implausibly large"),
        ('{"op": "compare", "batch_size": 0}', "batch_size: must be ≥ 1"),
        ('{"op": "compare", "kv_dtypes": ["fp7"]}', "kv_dtypes: unknown dtype 'fp7'"),
        ('{"op": "compare", "kv_dtypes": []}', "kv_dtypes: expected a list"),
        ('{"op": "compare", "engine": "tgi"}', "engine: unknown engine 'tgi'"),
        ('{"op": "compare", "tensor_parallel_size": 1.5}', "tensor_parallel_size: expected an integer"),
        ('{"op": "compare", "models": {}}', "models: expected a list"),
        ("[" * 100_000 + "]" * 100_000, "request: "),
    ],
)
def test_errors_have_one_shape_and_name_the_field(raw: str, start: str) -> None:
    out = call(raw)
    assert out["ok"] is False and set(out) == {"ok", "error"}
    assert out["error"].startswith(start), out["error"]
    assert "Traceback" not in out["error"]


def test_non_string_input_is_an_error_not_a_traceback() -> None:
    out = json.loads(web.compute(None))  # type: ignore[arg-type]
    assert out["ok"] is False and "Traceback" not in out["error"]


def test_compare_numbers_are_core_numbers() -> None:
    out = compare(
        [entry(LLAMA), entry(DEEPSEEK), entry(QWEN_NEXT)], seq_len=32768, batch_size=2, engine="vllm"
    )
    assert out["ok"] and out["errors"] == []
    for row in out["models"]:
        model = kvcalc.load_model(hf_config(row["id"]))
        for d in ("bf16", "fp8"):
            want = kvcalc.kv_cache_bytes(model, 32768, batch_size=2, kv_dtype=d, engine="vllm")
            assert row["cache"][d] == want
            assert sum(row["breakdown"][d].values()) == want
            line = row["lines"][d]
            i = len(line["x"]) // 2
            assert line["y"][i] == kvcalc.kv_cache_bytes(
                model, line["x"][i], batch_size=2, kv_dtype=d, engine="vllm"
            )
        assert row["token_bytes"]["bf16"] == kvcalc.kv_bytes_per_token(model, "bf16") or row["sliding_window"]


def test_table_facts() -> None:
    out = compare([entry(LLAMA), entry(DEEPSEEK), entry(QWEN_NEXT), entry(MISTRAL)])
    rows = {r["id"]: r for r in out["models"]}
    assert (
        rows[LLAMA]["attention"] == "GQA" and rows[LLAMA]["kv_heads"] == 8 and rows[LLAMA]["head_dim"] == 128
    )
    assert rows[DEEPSEEK]["attention"] == "MLA" and rows[DEEPSEEK]["head_dim_label"] == "576 (512+64)"
    assert rows[QWEN_NEXT]["attention"] == "hybrid (Gated DeltaNet + GQA)"
    assert rows[MISTRAL]["attention"] == "SWA" and rows[MISTRAL]["sliding_window"] == 4096
    assert rows[DEEPSEEK]["cache"]["bf16"] == 61 * 576 * 2 * 131072  # the well-known 8.58 GiB


def test_per_model_errors_come_back_beside_good_results() -> None:
    broken = {"id": "custom:1", "name": "Broken", "config": {"model_type": "llama", "hidden_size": 64}}
    not_json = {"id": "custom:2", "name": "Pasted", "config_text": '{"model_type": '}
    out = compare([entry(LLAMA), broken, not_json, "junk", {"id": "never-loaded-xyz"}])
    assert out["ok"] and [r["id"] for r in out["models"]] == [LLAMA]
    errors = {e["id"]: e for e in out["errors"]}
    assert errors["custom:1"]["error"].startswith("num_hidden_layers: required field missing")
    assert errors["custom:1"]["name"] == "Broken"
    assert errors["custom:2"]["error"].startswith("config: not valid JSON")
    assert errors["models[3]"]["error"].startswith("models[3]: expected an object")
    assert errors["never-loaded-xyz"]["error"].startswith("id: model 'never-loaded-xyz' is not loaded")


def test_uncountable_weights_leave_cache_numbers_alone() -> None:
    cfg = {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "num_hidden_layers": 32}
    row = compare([{"id": "custom:no-mlp", "config": cfg}])["models"][0]  # no intermediate_size, no vocab
    assert row["cache"]["bf16"] == 32 * 2 * 32 * 128 * 2 * 131072
    assert row["params"] is None and row["weights"] is None and row["total"]["bf16"] is None
    assert row["fits"]["bf16"] is None


def test_weights_and_fit_follow_kvcalc_params() -> None:
    from kvcalc.core import params

    row = compare([entry(LLAMA)], tensor_parallel_size=2)["models"][0]
    model = kvcalc.load_model(hf_config(LLAMA))
    per_rank = params.weight_bytes(model, tensor_parallel_size=2).total
    assert row["weights"] == params.weight_bytes(model).total
    assert row["total"]["bf16"] == per_rank + row["cache"]["bf16"]
    assert row["params"]["total"] == params.count_params(model).total
    assert row["fits"]["bf16"] is True  # ~7.5 GiB weights + 8 GiB cache on one of two H100s


def test_tensor_parallel_error_is_per_model() -> None:
    out = compare([entry(LLAMA), entry(QWEN_NEXT)], tensor_parallel_size=3, engine="vllm")
    assert out["models"] == []
    errors = {e["id"]: e for e in out["errors"]}
    # Llama: 8 KV heads; Qwen3-Next: 2 KV heads replicate, but 16 attention heads do not split by 3
    assert errors[LLAMA]["error"].startswith("tensor_parallel_size: 3 does not divide")
    assert errors[QWEN_NEXT]["error"] == (
        "tensor_parallel_size: 3 does not divide num_attention_heads 16; vLLM refuses it"
    )
    assert errors[LLAMA]["refused"] and errors[QWEN_NEXT]["refused"]


@pytest.mark.parametrize(
    ("model_id", "engine", "tp", "heads"),
    [
        ("Qwen/Qwen2.5-7B-Instruct", "vllm", 8, 28),  # 4 KV heads replicate; 28 query heads do not split
        ("Qwen/Qwen2.5-7B-Instruct", "ideal", 8, 28),
        (LLAMA, "vllm", 64, 32),
        (LLAMA, "vllm", 8, None),  # 32 heads, 8 KV heads: fine
        (QWEN_NEXT, "vllm", 16, None),  # 16 heads; 2 KV heads replicated over 16 ranks
    ],
)
def test_attention_heads_must_split_over_tp(model_id: str, engine: str, tp: int, heads: int | None) -> None:
    out = compare([entry(model_id)], tensor_parallel_size=tp, engine=engine)
    if heads is None:
        assert out["errors"] == [] and len(out["models"]) == 1
    else:
        assert out["models"] == [] and out["errors"][0]["refused"]
        want = f"tensor_parallel_size: {tp} does not divide num_attention_heads {heads}"
        assert want in out["errors"][0]["error"]


def test_room_and_fits_follow_kvcalc_plan() -> None:
    """vLLM: the room is plan()'s KV budget and "fits" is plan().fits; ideal: GPU memory − weights."""
    from kvcalc.deploy.plan import plan

    model = kvcalc.load_model(hf_config(LLAMA))
    for seq, batch in ((131072, 1), (131072, 8), (1048576, 1)):
        row = compare([entry(LLAMA)], engine="vllm", seq_len=seq, batch_size=batch, gpu="h100")["models"][0]
        pl = plan(model, gpu="h100", max_model_len=seq, batch_size=batch, kv_dtype="fp8")
        assert row["room"]["bytes"] == pl.kv_budget_bytes
        assert row["fits"]["fp8"] is pl.fits
    out = compare([entry(LLAMA)], engine="ideal", gpu="h100")
    row = out["models"][0]
    assert row["room"]["bytes"] == out["gpu"]["bytes"] - row["weights_per_gpu"]
    assert row["fits"]["bf16"] is (row["cache"]["bf16"] <= row["room"]["bytes"])
    assert out["room_rule"].startswith("ideal: NVIDIA H100")
    assert "gpu_memory_utilization 0.92" in compare([entry(LLAMA)], engine="vllm")["room_rule"]


def test_coinciding_lines_are_named() -> None:
    mixtral = "mistralai/Mixtral-8x7B-v0.1"
    out = compare([entry(LLAMA), entry(mixtral), entry(MISTRAL)])
    rows = {r["id"]: r for r in out["models"]}
    assert rows[LLAMA]["same_as"]["bf16"] == [rows[mixtral]["name"]]
    assert rows[mixtral]["same_as"]["fp8"] == [rows[LLAMA]["name"]]
    assert rows[MISTRAL]["same_as"]["bf16"] == []  # same per-token bytes, but its window caps it


def test_transformers_engine_drops_fp8_with_a_notice() -> None:
    out = compare([entry(LLAMA)], engine="transformers")
    assert out["settings"]["kv_dtypes"] == ["bf16"] and "fp8" in out["notices"][0]


def test_ids_alone_reuse_the_parsed_model() -> None:
    compare([entry(LLAMA)])
    out = compare([{"id": LLAMA}], seq_len=4096)
    assert out["models"][0]["cache"]["bf16"] == 32 * 2 * 8 * 128 * 2 * 4096


def test_changed_config_under_same_id_is_reparsed() -> None:
    compare([{"id": "custom:x", "config": hf_config(LLAMA)}])
    smaller = {**hf_config(LLAMA), "num_hidden_layers": 16}
    out = compare([{"id": "custom:x", "config": smaller}])
    assert out["models"][0]["layers"] == 16


def test_hostile_name_stays_a_plain_string() -> None:
    name = "<img src=x onerror=alert(1)>"
    out = compare([{"id": "custom:evil", "name": name, "config": hf_config(LLAMA)}])
    assert out["models"][0]["name"] == name
    bad = compare([{"id": "custom:evil2", "name": name, "config": {"model_type": "llama"}}])
    assert bad["errors"][0]["name"] == name
    loaded = call(
        {"op": "load", "models": [{"id": "c", "config": {**hf_config(LLAMA), "_name_or_path": name}}]}
    )
    assert loaded["models"][0]["name"] == name


PHI2 = "microsoft/phi-2"
QWEN7 = "Qwen/Qwen2.5-7B-Instruct"


def _named(hf_id: str, taken: list[str], name: str | None = None, **changes: Any) -> dict[str, Any]:
    """``load`` with the page's taken names: how the page names one added model."""
    config = {**hf_config(hf_id), **changes}
    item = {"id": f"custom-{hf_id}", "config_text": json.dumps(config), **({"name": name} if name else {})}
    return call({"op": "load", "models": [item], "taken": taken})


@pytest.mark.parametrize(
    ("hf_id", "typed", "taken", "changes", "want"),
    [
        # no name anywhere: numbered, then the architecture (the first N no taken name uses)
        (LLAMA, None, [], {}, "Custom 1 (LlamaForCausalLM)"),
        (QWEN7, None, ["Custom 1 (LlamaForCausalLM)"], {}, "Custom 2 (Qwen2ForCausalLM)"),
        (LLAMA, None, ["custom 1 (x)", "Custom 3 (y)"], {}, "Custom 2 (LlamaForCausalLM)"),
        # the config's own _name_or_path: a Hub id whole, a local path's last component
        (PHI2, None, [], {}, "microsoft/phi-2"),
        (PHI2, None, ["Microsoft/Phi-2"], {}, "microsoft/phi-2 (2)"),
        (LLAMA, None, [], {"_name_or_path": "/home/me/ckpt/llama-8b-ft/"}, "llama-8b-ft"),
        (LLAMA, None, [], {"_name_or_path": "C:\\models\\my-llama"}, "my-llama"),
        (LLAMA, None, [], {"_name_or_path": " / "}, "Custom 1 (LlamaForCausalLM)"),
        # a typed name stays as typed (trimmed), made unique
        (PHI2, "  My phi  ", [], {}, "My phi"),
        (MISTRAL, "Llama-3.1-8B", ["Llama-3.1-8B", "Llama-3.1-8B (2)"], {}, "Llama-3.1-8B (3)"),
        (LLAMA, "x" * 300, ["x" * 200], {}, "x" * 196 + " (2)"),
    ],
)
def test_added_models_get_useful_unique_names(
    hf_id: str, typed: str | None, taken: list[str], changes: dict[str, Any], want: str
) -> None:
    out = _named(hf_id, taken, typed, **changes)
    assert out["ok"] and out["errors"] == [] and out["models"][0]["name"] == want
    assert len(want) <= web.MAX_NAME


def test_names_are_unique_within_one_load_and_errors_keep_the_typed_name() -> None:
    out = call(
        {
            "op": "load",
            "models": [
                {"id": "a", "config": hf_config(LLAMA)},
                {"id": "b", "config": hf_config(QWEN7)},
                {"id": "c", "name": "Broken", "config_text": "{"},
            ],
            "taken": [],
        }
    )
    names = [m["name"] for m in out["models"]]
    assert names == ["Custom 1 (LlamaForCausalLM)", "Custom 2 (Qwen2ForCausalLM)"]
    assert out["errors"][0]["name"] == "Broken" and out["errors"][0]["error"].startswith("config: not valid")
    assert call({"op": "load", "models": [], "taken": "x"})["error"].startswith("taken: expected a list")
    # without "taken" (the CLI-like default), the name is the one the config gives itself, as before
    plain = call({"op": "load", "models": [{"id": "d", "config": hf_config(LLAMA)}]})
    assert plain["models"][0]["name"] == "LlamaForCausalLM"


def test_load_reports_facts_and_errors() -> None:
    out = call({"op": "load", "models": [entry(MISTRAL), {"id": "bad", "config_text": "[]"}]})
    assert out["models"][0]["attention"] == "SWA"
    assert out["errors"][0]["error"].startswith("config: expected a JSON object")


def test_insights_are_computed_from_the_selection() -> None:
    out = compare([entry(LLAMA), entry(DEEPSEEK), entry(MISTRAL), entry(QWEN_NEXT)])
    text = " ".join(i["text"] for i in out["insights"])
    assert "DeepSeek-V3 (MLA) stores 8.58 GiB" in text
    assert "Mistral-7B-v0.1 stops growing at 4,096 tokens" in text
    assert "Qwen3-Next-80B-A3B-Thinking keeps a fixed" in text
    alone = compare([entry(LLAMA)])
    assert "MLA" not in " ".join(i["text"] for i in alone["insights"])


def test_lines_can_be_left_out() -> None:
    full = compare([entry(MISTRAL)])
    bare = compare([{"id": MISTRAL}], lines=False)
    assert "lines" in full["models"][0] and "lines" not in bare["models"][0]
    assert bare["insights"] == full["insights"]  # insights still see the lines
    assert compare([{"id": MISTRAL}], lines="no")["error"].startswith("lines: expected true or false")


def test_default_request_is_valid() -> None:
    out = compare([entry(LLAMA)])
    assert out["ok"] and out["settings"]["seq_len"] == 131072


def test_a_model_past_its_max_context_is_never_the_smallest() -> None:
    """Mistral-7B-v0.1 (max 32K, 4K window) holds the least at 128K, but does not reach 128K."""
    out = compare([entry(LLAMA), entry(MISTRAL), entry(DEEPSEEK), entry(QWEN_NEXT)], seq_len=131072)
    # the spread sentence, or the efficiency one it is merged into when both name the same two models
    spread = [
        i["text"] for i in out["insights"] if i["kind"] in ("spread", "efficiency") and "largest" in i["text"]
    ]
    assert spread and "Mistral" not in spread[0]
    assert "the smallest, Qwen3-Next-80B-A3B-Thinking's" in spread[0]
    # without Qwen3-Next, DeepSeek-V3 is the smallest that reaches 128K: the MLA sentence says it
    three = compare([entry(LLAMA), entry(MISTRAL), entry(DEEPSEEK)], seq_len=131072)["insights"]
    assert not [
        i for i in three if "smallest" in i["text"] or "Most efficient per token: Mistral" in i["text"]
    ]
    assert [i["text"] for i in three if i["kind"] == "mla"][0].startswith("DeepSeek-V3 (MLA) stores")


def test_a_cache_dtype_the_engine_refuses_is_dropped_with_a_notice() -> None:
    """llama.cpp has no fp8 cache (-ctk/-ctv) and runs one device here: the page's default bf16 + fp8 at
    tp 8 answers bf16 at tp 1, saying so, instead of an fp8 error on every model."""
    out = compare([entry(LLAMA), entry(MISTRAL)], engine="llama.cpp", tensor_parallel_size=8)
    assert out["settings"]["kv_dtypes"] == ["bf16"] and out["settings"]["tensor_parallel_size"] == 1
    assert [r["id"] for r in out["models"]] == [LLAMA, MISTRAL] and out["errors"] == []
    fp8 = "Not shown: kv_dtype: 'fp8' is not a llama.cpp cache type"
    assert any(n.startswith(fp8) for n in out["notices"])
    assert any("tensor parallel set to 1" in n for n in out["notices"])
    assert compare([entry(LLAMA)], engine="vllm")["settings"]["kv_dtypes"] == ["bf16", "fp8"]


# A page session: the memoised answers (layouts, budgets, lines, coinciding lines) of each control
# change equal the same request answered from scratch (every cache emptied first).
SESSION_MODELS = [LLAMA, MISTRAL, DEEPSEEK, QWEN_NEXT, "mistralai/Mixtral-8x7B-v0.1", "openai/gpt-oss-20b"]
SESSION = [
    {},
    {"seq_len": 32768, "lines": False},
    {"seq_len": 1048576, "lines": False},
    {"seq_len": 1048576, "kv_dtypes": ["bf16", "fp8", "fp8_e5m2"]},
    {"seq_len": 1048576, "gpu": "a100-40gb", "lines": False},
    {"engine": "vllm"},
    {"engine": "vllm", "seq_len": 32768, "lines": False},
    {"engine": "vllm", "seq_len": 32768, "gpu": "a100-40gb", "lines": False},
    {"engine": "vllm", "seq_len": 20000, "batch_size": 64, "lines": False},
    {"engine": "vllm", "tensor_parallel_size": 2},
]


def _fresh(models: list[dict[str, Any]], controls: dict[str, Any]) -> dict[str, Any]:
    from kvcalc.engines import vllm

    web._cache.clear()
    vllm._LAYOUTS.clear()
    return compare(models, **controls)


def test_memoised_session_equals_fresh_answers() -> None:
    ids = [m for m in SESSION_MODELS if m in set(hf_ids())]
    assert len(ids) >= 5
    full = [entry(m) for m in ids]
    web._cache.clear()
    warm = [compare(full if not i else [{"id": m} for m in ids], **c) for i, c in enumerate(SESSION)]
    for controls, got in zip(SESSION, warm, strict=True):
        assert got["ok"] and not got["errors"], controls
        assert got == _fresh(full, controls), controls


def test_vllm_layout_memo_is_the_computed_layout() -> None:
    from kvcalc.engines import make_request, vllm

    for hf_id in (LLAMA, QWEN_NEXT, DEEPSEEK):
        model = kvcalc.load_model(hf_config(hf_id))
        for dtype, tp in (("bf16", 1), ("fp8", 2)):
            req = make_request(model, 4096, engine="vllm", kv_dtype=dtype, tensor_parallel_size=tp)
            first = vllm.layout(model, req)
            assert vllm.layout(model, req) is first  # memoised
            assert first == vllm._layout(model, req)  # and equal to a fresh computation
            other = make_request(
                model, 4096, engine="vllm", kv_dtype=dtype, tensor_parallel_size=tp, block_size=32
            )
            assert vllm.layout(model, other) is not first  # another key: its own entry
            assert vllm.layout(model, other) == vllm._layout(model, other)


def test_vllm_sliding_window_number_is_explained() -> None:
    """Mistral-7B-v0.1 under vLLM: 4,096 − 1 + 2 × 8,192 = 20,479 tokens per sliding layer (window plus
    the tokens of two scheduled batches), the page count constant from there on."""
    from kvcalc.core.units import fmt_gib
    from kvcalc.web.insights import vllm_window_tokens

    out = compare([entry(MISTRAL), entry(LLAMA)], engine="vllm", seq_len=32768)
    text = " ".join(i["text"] for i in out["insights"] if i["kind"] == "sliding")
    assert vllm_window_tokens(4096) == 20479
    assert "past 20,479 tokens" in text and "20,479 = 4,096 − 1 + 2 × 8,192 tokens" in text
    model = kvcalc.load_model(hf_config(MISTRAL))
    at = [kvcalc.kv_cache_bytes(model, n, engine="vllm") for n in (20478, 20479, 20480, 32768)]
    assert at[0] <= at[1] == at[2] == at[3]
    assert f"Mistral-7B-v0.1's cache stays at {fmt_gib(at[3])} past 20,479 tokens" in text


def test_insights_most_important_first_and_same_extremes_merged() -> None:
    """A caveat on the numbers first (past max context), then what fits, then the spread; when the
    largest cache and the least efficient per token are the same model (and likewise the smallest),
    one sentence says both."""
    out = compare(
        [entry(LLAMA), entry(MISTRAL), entry(DEEPSEEK), entry(QWEN_NEXT)], seq_len=131072, gpu="h100"
    )
    kinds = [i["kind"] for i in out["insights"]]
    assert kinds[:2] == ["context", "fit"] and kinds[2] in ("spread", "efficiency")  # merged: one of them
    qwen = "Qwen/Qwen2.5-7B-Instruct"
    both = compare([entry(LLAMA), entry(qwen)], seq_len=32768)["insights"]
    merged = [i for i in both if i["kind"] == "efficiency"]
    assert not [i for i in both if i["kind"] == "spread"]
    assert merged[0]["text"].startswith("Most efficient per token: Qwen2.5-7B-Instruct")
    assert "the largest BF16 cache is Llama-3.1-8B's (4.00 GiB)" in merged[0]["text"]


# ------------------------------------------------------------------ insights: nothing said twice

LLAMA70 = "meta-llama/Llama-3.1-70B"
GLM5 = "zai-org/GLM-5"
JAMBA = "ai21labs/Jamba-v0.1"
MIXTRAL = "mistralai/Mixtral-8x7B-v0.1"


def _insights(ids: list[str], **controls: Any) -> list[dict[str, str]]:
    out = compare([entry(i) for i in ids], **controls)
    assert out["ok"], out
    return out["insights"]


@pytest.mark.parametrize(
    ("ids", "controls", "kinds", "said_once", "not_said"),
    [
        # one MLA model and its GQA reference: the MLA sentence says the spread, the per-token
        # extremes and the average (before: four sentences with the same two numbers)
        ([DEEPSEEK, LLAMA], {}, ["fit", "mla", "fp8"], ["70,272", "Llama-3.1-8B (GQA"], ["on average"]),
        ([DEEPSEEK, LLAMA70], {}, ["fit", "mla", "fp8"], ["327,680"], ["Most efficient", "largest"]),
        # two MLA models against one reference: the reference named once (before: two sentences and an
        # average over that one model)
        (
            [DEEPSEEK, GLM5, LLAMA],
            {},
            ["fit", "mla", "fp8"],
            ["Llama-3.1-8B (GQA, 16.00 GiB, 131,072 bytes per token)", "DeepSeek-V3 8.58 GiB, 1.9× less"],
            ["on average", "Most efficient"],
        ),
        # as on the default page, DeepSeek-V3/Kimi-K2 and GLM-5 share Qwen3-235B-A22B as reference
        (
            [DEEPSEEK, "moonshotai/Kimi-K2-Instruct", GLM5, "Qwen/Qwen3-235B-A22B", LLAMA],
            {},
            ["context", "fit", "spread", "mla", "mla", "fp8"],
            ["Qwen3-235B-A22B (GQA", "GLM-5 13.41 GiB, 1.8× less", "on average"],
            ["Most efficient"],  # DeepSeek-V3 against Qwen3-235B-A22B per token: the MLA sentence
        ),
        # one MLA and one sliding-window model: the efficiency sentence already says both per-token
        # sizes; the MLA average over that one model is left out
        (
            [DEEPSEEK, MISTRAL],
            {"seq_len": 32768},
            ["fit", "spread", "efficiency", "sliding", "fp8"],
            [],
            ["average"],
        ),
        # equal caches: one fact, not "the largest is X's, 1.0× the smallest, X's"
        (
            [MIXTRAL, LLAMA],
            {"seq_len": 32768},
            ["fit", "spread", "fp8"],
            ["At 32K tokens, Mixtral-8x7B-v0.1 and Llama-3.1-8B hold the same BF16 cache: 4.00 GiB each."],
            ["1.0×", "largest"],
        ),
        # FP8 in one sentence, and never "saves 50%, not 50%" (Jamba saves 49.6%)
        (
            [QWEN_NEXT, JAMBA],
            {},
            ["fit", "efficiency", "state", "state", "fp8"],
            ["FP8 saves 49% on Qwen3-Next-80B-A3B-Thinking and 49.6% on Jamba-v0.1, not half"],
            ["50%"],
        ),
        # nothing fits and the cache alone outgrows the GPU: one "At 1M tokens × batch 8" sentence
        (
            [LLAMA, LLAMA70, "Qwen/Qwen2.5-7B-Instruct"],
            {"seq_len": 1048576, "batch_size": 8},
            ["context", "fit", "efficiency", "fp8"],
            ["At 1M tokens × batch 8", "with weights and BF16 cache; the BF16 cache alone of Llama-3.1-8B,"],
            [],
        ),
    ],
)
def test_insights_say_nothing_twice(
    ids: list[str], controls: dict[str, Any], kinds: list[str], said_once: list[str], not_said: list[str]
) -> None:
    found = _insights(ids, **controls)
    text = " ".join(i["text"] for i in found)
    assert [i["kind"] for i in found] == kinds
    for phrase in said_once:
        assert text.count(phrase) == 1, phrase
    for phrase in not_said:
        assert phrase not in text, phrase


def test_mla_sentence_alone_says_the_pair_exactly() -> None:
    """DeepSeek-V3 against Llama-3.1-8B at 128K: the one MLA sentence, its numbers from kvcalc itself."""
    from kvcalc.core.units import fmt_gib

    ds, llama = (kvcalc.load_model(hf_config(i)) for i in (DEEPSEEK, LLAMA))
    a, b = (kvcalc.kv_cache_bytes(m, 131072) for m in (ds, llama))
    ta, tb = (kvcalc.kv_cache_bytes(m, 1) for m in (ds, llama))
    mla = [i["text"] for i in _insights([DEEPSEEK, LLAMA]) if i["kind"] == "mla"]
    assert mla == [
        f"DeepSeek-V3 (MLA) stores {fmt_gib(a)} at 128K tokens in BF16 — {b / a:,.1f}× less than "
        f"Llama-3.1-8B (GQA, {fmt_gib(b)}), the nearest full-attention model by parameter count: "
        f"{ta:,} vs {tb:,} bytes per token."
    ]


def test_fp8_savings_are_one_sentence_with_each_share() -> None:
    """Under vLLM the default page has two partial savers (GLM-5, Qwen3-Next): one sentence, each share
    from the answer's own bytes."""
    from kvcalc.web.insights import _share

    out = compare([entry(i) for i in (DEEPSEEK, GLM5, QWEN_NEXT, LLAMA)], engine="vllm")
    fp8 = [i["text"] for i in out["insights"] if i["kind"] == "fp8"]
    share = {m["name"]: _share(1 - m["cache"]["fp8"] / m["cache"]["bf16"]) for m in out["models"]}
    assert share["DeepSeek-V3"] == share["Llama-3.1-8B"] == "50%"
    assert fp8 == [
        "FP8 exactly halves the cache of DeepSeek-V3 and Llama-3.1-8B; it saves "
        f"{share['GLM-5']} on GLM-5 and {share[QWEN_NEXT.split('/')[1]]} on Qwen3-Next-80B-A3B-Thinking, "
        "not half: part of their cache (state or scales) keeps its own precision."
    ]


@pytest.mark.parametrize(
    ("fraction", "text"),
    [(0.5, "50%"), (0.49, "49%"), (0.496, "49.6%"), (0.4996, "49.96%"), (0.5004, "50.04%"), (0.39, "39%")],
)
def test_share_never_reads_half_when_it_is_not(fraction: float, text: str) -> None:
    from kvcalc.web.insights import _share

    assert _share(fraction) == text
