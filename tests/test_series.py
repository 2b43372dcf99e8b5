"""Chart series are kvcalc.kv_cache_bytes, byte for byte: bars, lines, breakdowns, plateaus."""

from __future__ import annotations

import pytest

import kvcalc
from kvcalc.core.units import fmt_gib, fmt_tokens, gib_decimals
from kvcalc.web.series import MAX_CONTEXT, MIN_CONTEXT, Engine, Prepared, context_points, max_context
from tests.shared_configs import hf_config, hf_ids

ENGINES = [Engine("ideal"), Engine("vllm"), Engine("transformers"), Engine("vllm", tensor_parallel_size=2)]


@pytest.fixture(scope="module")
def prepared() -> dict[str, Prepared]:
    return {i: Prepared(kvcalc.load_model(hf_config(i), name=i)) for i in hf_ids()}


def _kw(eng: Engine) -> dict[str, object]:
    return eng.kwargs()


@pytest.mark.parametrize("eng", ENGINES, ids=lambda e: f"{e.engine}-tp{e.tensor_parallel_size}")
def test_totals_and_breakdowns_match_core(prepared: dict[str, Prepared], eng: Engine) -> None:
    dtypes = ["bf16"] if eng.engine == "transformers" else ["bf16", "fp8", "nvfp4"]
    for hf_id, prep in prepared.items():
        for d in dtypes:
            for L in (1, 1000, 4097, 131072, 1_000_003):
                for b in (1, 3):
                    try:
                        want = kvcalc.kv_cache_bytes(prep.model, L, batch_size=b, kv_dtype=d, **_kw(eng))
                    except kvcalc.KVCalcError:
                        continue  # tp 2 does not divide this model's heads
                    assert prep.total(L, b, d, eng) == want, (hf_id, d, L, b)
                    kinds = kvcalc.breakdown(prep.model, L, batch_size=b, kv_dtype=d, **_kw(eng))
                    got = prep.by_kind(L, b, d, eng)
                    assert got == {k: v for k, v in kinds.items() if k in got}, (hf_id, d, L)
                    assert sum(got.values()) == want


@pytest.mark.parametrize("eng", ENGINES, ids=lambda e: f"{e.engine}-tp{e.tensor_parallel_size}")
def test_lines_match_core_at_every_point(prepared: dict[str, Prepared], eng: Engine) -> None:
    dtypes = ["bf16"] if eng.engine == "transformers" else ["bf16", "nvfp4"]
    for hf_id, prep in prepared.items():
        for d in dtypes:
            try:
                line = prep.line(d, eng).scaled(4)
            except kvcalc.KVCalcError:
                continue  # tp 2 does not divide this model's heads
            for i, (x, y) in enumerate(zip(line["x"], line["y"], strict=True)):
                kinds = kvcalc.breakdown(prep.model, x, batch_size=4, kv_dtype=d, **_kw(eng))
                assert y == sum(kinds.values()), (hf_id, d, x)
                assert {k: v[i] for k, v in line["parts"].items()} == {k: kinds[k] for k in line["parts"]}


def test_points_span_1k_to_max_context_log_spaced(prepared: dict[str, Prepared]) -> None:
    for prep in prepared.values():
        xs = context_points(prep.model, Engine())
        hi = max_context(prep.model)  # short-context models (T5 512) start at 1/32 of it
        assert xs[0] == (MIN_CONTEXT if hi > MIN_CONTEXT else max(1, hi // 32)) and xs[-1] == hi
        assert 95 <= len(xs) <= 125
        assert list(xs) == sorted(set(xs))
        assert {1 << p for p in range(30) if xs[0] <= 1 << p <= hi} <= set(xs)  # the data table's rows


def test_max_context_capped_at_10m() -> None:
    cfg = {**hf_config("meta-llama/Llama-3.1-8B"), "max_position_embeddings": 50_000_000}
    assert max_context(kvcalc.load_model(cfg)) == MAX_CONTEXT
    del cfg["max_position_embeddings"]
    assert max_context(kvcalc.load_model(cfg)) == 131072


def test_mistral_plateau_past_4096(prepared: dict[str, Prepared]) -> None:
    prep = prepared["mistralai/Mistral-7B-v0.1"]
    line = prep.line("bf16", Engine())
    at = dict(zip(line.x, line.y, strict=True))
    assert 4096 in at and 4095 in at
    assert at[4095] < at[4096]
    assert {y for x, y in at.items() if x >= 4096} == {at[4096]} == {32 * 2 * 8 * 128 * 2 * 4096}
    assert prep.token_bytes("bf16") == 131072 and prep.long_token_bytes("bf16") == 0


def test_fp8_exactly_halves_full_attention(prepared: dict[str, Prepared]) -> None:
    full = [p for p in prepared.values() if set(p.model.kinds()) == {"full"}]
    assert len(full) > 10
    for prep in full:
        for eng in (Engine("ideal"), Engine("vllm")):
            for L in (1024, 131072):
                assert prep.total(L, 1, "fp8", eng) * 2 == prep.total(L, 1, "bf16", eng)
            assert [2 * y for y in prep.line("fp8", eng).y] == list(prep.line("bf16", eng).y)


def test_hybrid_state_floor_visible(prepared: dict[str, Prepared]) -> None:
    prep = prepared["Qwen/Qwen3-Next-80B-A3B-Thinking"]
    line = prep.line("bf16", Engine())
    state = line.parts["gated_deltanet"]
    assert len(set(state)) == 1 and state[0] > 0
    assert line.parts["full"][0] < line.parts["full"][-1]


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0.00 GiB"),
        (1 << 27, "0.13 GiB"),  # 0.125: half-up like JS, not half-even
        (int(8.58 * (1 << 30)), "8.58 GiB"),
        ((1 << 40) - 1, "1,024.00 GiB"),  # just under 1 TiB: still GiB
        (1 << 40, "1.00 TiB"),
        (1234 * (1 << 30) + (1 << 29), "1.21 TiB"),  # 1,234.5 GiB
        (3 * (1 << 38), "768.00 GiB"),
        ((1 << 40) + (1 << 37), "1.13 TiB"),  # 1.125 TiB: half-up, not half-even
        (5 * (1 << 50) + (1 << 49), "5.50 PiB"),
        (12345 * (1 << 50), "12,345.00 PiB"),
        (int(0.00234 * (1 << 30)), "0.00234 GiB"),
    ],
)
def test_fmt_gib(n: int, text: str) -> None:
    assert fmt_gib(n) == text
    assert gib_decimals(n) >= 2


def test_fmt_tokens() -> None:
    assert [fmt_tokens(n) for n in (131072, 1 << 20, 5000, 4096)] == ["128K", "1M", "5,000", "4K"]
    assert [fmt_tokens(n) for n in (128000, 1024000, 256000, 0)] == ["128,000", "1,024,000", "256,000", "0"]


@pytest.mark.parametrize("eng", ENGINES, ids=lambda e: f"{e.engine}-tp{e.tensor_parallel_size}")
def test_totals_at_another_models_points_match_core(prepared: dict[str, Prepared], eng: Engine) -> None:
    """Prepared.totals (used to compare two lines) at points that are not the model's own — another
    model's line points, odd contexts around windows — equals kv_cache_bytes at each of them."""
    ids = sorted(prepared)
    checked = 0
    for n, hf_id in enumerate(ids):
        prep, other = prepared[hf_id], prepared[ids[(n + 1) % len(ids)]]
        try:
            xs = sorted({*other.line("bf16", eng).x, 1023, 4095, 4097, 8191, 8193, 32767, 32769})
            got = prep.totals([x for x in xs if x <= max_context(prep.model)], "bf16", eng)
        except kvcalc.KVCalcError:
            continue  # tp 2 does not divide one of the models' heads
        for x, y in got.items():
            assert y == kvcalc.kv_cache_bytes(prep.model, x, kv_dtype="bf16", **_kw(eng)), (hf_id, x)
        checked += len(got)
    assert checked > 1000
