"""kvcalc's ``engine="transformers"`` bytes against caches transformers really builds (``-m transformers``).

Every real config (``configs/`` and every entry of ``model_configs.json``) is built on the
meta device by :mod:`kvcalc.measure.run`, run once per (seq_len, batch, dtype) with ``use_cache=True``,
and the bytes of every tensor in the returned cache must equal ``kv_cache_bytes(..., engine=
"transformers")`` exactly — at 1 token, a few hundred, and past every sliding window (5000 > gpt-oss's
128 and Mistral's 4096), in bf16 and fp32. Sliding configs are also checked one token either side of
``window - 1``.

The meta-device stand-ins (shape-only attention and masks, no-op MoE experts) are themselves checked
against a real CPU forward with eager attention on tiny configs of each architecture family.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import kvcalc
from kvcalc.core import config as config_mod
from kvcalc.measure import run as measure
from tests.shared_configs import REPO, hf_config, hf_ids

pytestmark = pytest.mark.transformers
if importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("needs the measure extra: pip install kvcalc[measure]", allow_module_level=True)

SETTINGS = [(1, 1, "bf16"), (300, 2, "bf16"), (5000, 1, "bf16"), (5000, 1, "fp32")]


def settings_for(config: dict) -> measure.Settings:
    """SETTINGS for every config (Mamba-1 scans are cheap on meta: the last-token scan stand-in)."""
    return SETTINGS


Measure = Callable[[dict, int, int, str], measure.CacheMeasurement]
MODEL_CONFIGS = REPO / "model_configs.json"


def _catalog() -> dict[str, dict]:
    """model_configs.json entries by id (empty when the file does not exist)."""
    if not MODEL_CONFIGS.exists():
        return {}
    data = json.loads(MODEL_CONFIGS.read_text())
    entries = data.get("models", data) if isinstance(data, dict) else data
    if isinstance(entries, dict):
        entries = [{"id": k, **v} for k, v in entries.items()]
    return {str(e.get("id") or e.get("name")): e.get("config") or e.get("hf_config") for e in entries}


CASES = {f"hf:{i}": ("hf", i) for i in hf_ids()} | {f"catalog:{i}": ("catalog", i) for i in _catalog()}


def _config(source: str, ident: str) -> dict:
    return hf_config(ident) if source == "hf" else _catalog()[ident]


class Prefetch:
    """Every selected real config measured at SETTINGS ahead of the tests by two worker processes.

    Results arrive in case order; anything not prefetched is measured in-process (memoised there).
    """

    def __init__(self, configs: list[dict]) -> None:
        unique = {json.dumps(c, sort_keys=True): c for c in configs}
        self._keys = list(unique)
        self._done: dict[str, dict[str, Any]] = {}
        self._pending = (
            measure.iter_measure_many(
                [(c, settings_for(c)) for c in unique.values()],
                timeout=600,
                processes=min(2, os.cpu_count() or 1),
            )
            if unique
            else iter(())
        )

    def get(self, config: dict, seq_len: int, batch: int, dtype: str) -> measure.CacheMeasurement:
        """The measurement of config at one setting (waits for the workers if it is on their list)."""
        key = json.dumps(config, sort_keys=True)
        if key in self._keys:
            while key not in self._done:
                self._done[self._keys[len(self._done)]] = next(self._pending)
            result = self._done[key].get(measure.setting_key(seq_len, batch, dtype))
            if isinstance(result, str):
                raise kvcalc.KVCalcError(result)
            if result is not None:
                return result
        return measure.measure_cache(config, seq_len, batch, dtype)

    def close(self) -> None:
        """Stop the workers."""
        close = getattr(self._pending, "close", None)
        if close:
            close()


@pytest.fixture(scope="module")
def prefetch(request: pytest.FixtureRequest) -> Iterator[Prefetch]:
    """Measure the real configs of the selected tests in the background (two workers)."""
    mine = [item for item in request.session.items if getattr(item, "module", None) is request.module]
    cases = sorted(
        {
            item.callspec.params["case"]
            for item in mine
            if hasattr(item, "callspec") and "case" in item.callspec.params
        }
    )
    p = Prefetch([_config(*CASES[c]) for c in cases])
    yield p
    p.close()


def mismatches(
    config: dict, settings: measure.Settings, measured: Measure = measure.measure_cache
) -> list[str]:
    """Human-readable differences between kvcalc and transformers (empty when all agree)."""
    model = kvcalc.load_model(config)
    out = []
    for seq_len, batch, dtype in settings:
        m = measured(config, seq_len, batch, dtype)
        kw: dict[str, Any] = {"batch_size": batch, "kv_dtype": dtype, "engine": "transformers"}
        ours = kvcalc.kv_cache_bytes(model, seq_len, **kw)
        if ours == m.total:
            continue
        line = f"L={seq_len} b={batch} {dtype}: kvcalc {ours:,} != transformers {m.total:,}"
        line += f" ({m.kinds_summary()})"
        per_layer = kvcalc.layer_bytes(model, seq_len, **kw)
        if len(per_layer) == len(m.layers):
            diffs = [
                f"layer {x.index} {x.kind}: kvcalc {mine:,} != {x.bytes:,} {[t[1:3] for t in x.tensors]}"
                for mine, x in zip(per_layer, m.layers, strict=True)
                if mine != x.bytes
            ]
            line += (
                "\n    "
                + "\n    ".join(diffs[:4])
                + (f"\n    ... {len(diffs) - 4} more" if len(diffs) > 4 else "")
            )
        else:
            line += f"\n    kvcalc has {len(per_layer)} layers, the cache {len(m.layers)}"
        out.append(line)
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_real_config_matches_transformers(case: str, prefetch: Prefetch) -> None:
    """kv_cache_bytes(engine="transformers") == bytes in the cache transformers returns, every setting."""
    config = _config(*CASES[case])
    problems = mismatches(config, settings_for(config), prefetch.get)
    assert not problems, f"{case}:\n  " + "\n  ".join(problems)


def _window(config: dict) -> int | None:
    """The sliding window / attention chunk of the text config, if any."""
    text = config.get("text_config") or config
    if text.get("use_sliding_window") is False:  # Qwen2/3 ship a window they do not use
        return None
    for key in ("sliding_window", "attention_chunk_size"):
        if isinstance(text.get(key), int):
            return text[key]
    return None


SLIDING = sorted(c for c in CASES if c.startswith("hf:") and _window(_config(*CASES[c])))


@pytest.mark.parametrize("case", SLIDING)
def test_sliding_window_edges(case: str) -> None:
    """One token either side of the ``window - 1`` tokens a DynamicSlidingWindowLayer keeps."""
    config = _config(*CASES[case])
    w = _window(config)
    assert w
    problems = mismatches(
        config, [(w - 2, 1, "bf16"), (w - 1, 1, "bf16"), (w, 1, "bf16"), (w + 1, 3, "fp16")]
    )
    assert not problems, f"{case} (window {w}):\n  " + "\n  ".join(problems)


def test_known_figures_from_the_rules(prefetch: Prefetch) -> None:
    """Spot values written in TRANSFORMERS_CACHE_RULES.md: bytes per token of MLA and DSA models."""
    measured = prefetch.get
    ds = measured(hf_config("deepseek-ai/DeepSeek-V3"), 1, 1, "bf16")
    assert ds.total == 70_272 and ds.kinds_summary() == "61× DynamicLayer"
    v32 = measured(hf_config("deepseek-ai/DeepSeek-V3.2"), 1, 1, "bf16")
    assert v32.total == 85_888 and v32.kinds_summary() == "61× DynamicIndexedLayer"
    glm5 = measured(hf_config("zai-org/GLM-5"), 1, 1, "bf16")
    assert glm5.total == 109_824
    gpt = measured(hf_config("openai/gpt-oss-20b"), 5000, 1, "bf16")
    sliding = [x for x in gpt.layers if x.kind == "DynamicSlidingWindowLayer"]
    assert {t.shape[2] for x in sliding for t in x.tensors if t.dtype == "bfloat16"} == {127}
    assert gpt.aux_bytes == 8 * len(sliding)  # one int64 `_sliding_window_tensor` per sliding layer


# --------------------------------------------------------------------------------------------
# the stand-ins against real CPU forwards with eager attention

_SMALL = {
    "vocab_size": 128,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
}
_MLA = {
    "first_k_dense_replace": 1,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "n_group": 1,
    "topk_group": 1,
    "moe_intermediate_size": 32,
    "kv_lora_rank": 32,
    "q_lora_rank": 48,
    "qk_rope_head_dim": 8,
    "qk_nope_head_dim": 16,
    "v_head_dim": 16,
    "num_key_value_heads": 4,  # MLA expands K/V to every query head
}
TINY: dict[str, dict[str, Any]] = {
    "full attention (llama)": {"model_type": "llama", "num_hidden_layers": 2, **_SMALL},
    "sliding window (mistral)": {
        "model_type": "mistral",
        "num_hidden_layers": 2,
        "sliding_window": 8,
        **_SMALL,
    },
    "sliding + full + MoE experts (gpt_oss)": {
        "model_type": "gpt_oss",
        "num_hidden_layers": 2,
        "sliding_window": 8,
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
        "head_dim": 16,
        **_SMALL,
    },
    "MLA + MoE (deepseek_v3)": {"model_type": "deepseek_v3", "num_hidden_layers": 2, **_SMALL, **_MLA},
    "MLA + DSA indexer (deepseek_v32)": {
        "model_type": "deepseek_v32",
        "num_hidden_layers": 2,
        "index_head_dim": 16,
        "index_n_heads": 2,
        "index_topk": 4,
        **_SMALL,
        **_MLA,
    },
    "Mamba2 hybrid (nemotron_h)": {
        "model_type": "nemotron_h",
        "num_hidden_layers": 4,
        "hybrid_override_pattern": "M-*M",
        "mamba_num_heads": 4,
        "mamba_head_dim": 16,
        "ssm_state_size": 8,
        "n_groups": 2,
        "head_dim": 16,
        **_SMALL,
    },
    "Gated DeltaNet + MoE (qwen3_next)": {
        "model_type": "qwen3_next",
        "num_hidden_layers": 4,
        "head_dim": 16,
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 4,
        "linear_key_head_dim": 8,
        "linear_value_head_dim": 8,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": 32,
        "shared_expert_intermediate_size": 32,
        **_SMALL,
    },
    "lightning attention side cache (minimax)": {
        "model_type": "minimax",
        "num_hidden_layers": 2,
        "layer_types": ["linear_attention", "full_attention"],
        "num_local_experts": 4,
        "num_experts_per_tok": 2,
        "head_dim": 16,
        **_SMALL,
    },
    "Mamba1 hybrid (jamba)": {
        "model_type": "jamba",
        "num_hidden_layers": 2,
        "attn_layer_period": 2,
        "attn_layer_offset": 1,
        "expert_layer_period": 2,
        "expert_layer_offset": 1,
        "num_experts": 4,
        "mamba_d_state": 8,
        "mamba_dt_rank": 8,
        "use_mamba_kernels": False,
        **_SMALL,
    },
    "Mamba1 (mamba)": {
        "model_type": "mamba",
        "vocab_size": 128,
        "hidden_size": 64,
        "state_size": 8,
        "num_hidden_layers": 2,
        "expand": 2,
        "conv_kernel": 4,
        "use_mambapy": False,
    },
    "Falcon new_decoder_architecture (own attention dispatch)": {
        "model_type": "falcon",
        "num_hidden_layers": 2,
        "new_decoder_architecture": True,
        "num_kv_heads": 2,
        **_SMALL,
    },
    "encoder-decoder cross attention (whisper)": {
        "model_type": "whisper",
        "vocab_size": 128,
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "decoder_start_token_id": 1,
        "d_model": 64,
        "encoder_layers": 1,
        "decoder_layers": 2,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "encoder_ffn_dim": 64,
        "decoder_ffn_dim": 64,
        "num_mel_bins": 8,
        "max_source_positions": 16,
        "max_target_positions": 64,
    },
}


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize(("seq_len", "batch", "dtype"), [(1, 1, "bf16"), (20, 2, "bf16"), (13, 1, "fp32")])
def test_standins_equal_an_exact_cpu_run(name: str, seq_len: int, batch: int, dtype: str) -> None:
    """Meta + stand-ins leave exactly the tensors (name, shape, dtype) a real eager CPU forward leaves."""
    config = TINY[name]
    fast = measure.measure_cache(config, seq_len, batch, dtype, method="meta")
    exact = measure.measure_cache(config, seq_len, batch, dtype, method="exact")
    assert (fast.method, exact.method) == ("meta", "exact")
    assert [x.tensors for x in fast.layers] == [x.tensors for x in exact.layers]
    assert [x.kind for x in fast.layers] == [x.kind for x in exact.layers]
    assert (fast.total, fast.aux_bytes, fast.cache_class) == (exact.total, exact.aux_bytes, exact.cache_class)
    assert fast.total > 0


def test_walker_sees_special_caches() -> None:
    """MiniMax's linear_cache and Whisper's EncoderDecoderCache are walked, not missed."""
    mini = measure.measure_cache(
        TINY["lightning attention side cache (minimax)"], 9, 2, "bf16", method="meta"
    )
    assert mini.cache_class == "MiniMaxCache"
    assert mini.layer_kinds == ["linear_cache", "DynamicLayer"]
    assert mini.layers[0].bytes == 2 * 4 * 16 * 16 * 2  # [b, heads, head_dim, head_dim] in the model dtype
    whisper = measure.measure_cache(
        TINY["encoder-decoder cross attention (whisper)"], 5, 1, "fp32", method="meta"
    )
    assert whisper.cache_class == "EncoderDecoderCache" and whisper.encoder_len == 16
    assert whisper.layer_kinds == ["self:DynamicLayer+cross:DynamicLayer"] * 2
    assert (
        whisper.total == 2 * 2 * (5 + 16) * 64 * 4
    )  # layers × (K, V) × (self + cross tokens) × d_model × fp32


def test_importing_measure_stays_stdlib_only() -> None:
    """``import kvcalc.measure.run`` imports no torch/transformers; without them it says what to install."""
    code = (
        "import sys; import kvcalc.measure.run as m\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules\n"
        "sys.modules['torch'] = None\n"
        "try:\n    m.measure_cache({'model_type': 'llama'}, 1)\n"
        "except m.KVCalcError as e:\n    assert 'pip install kvcalc[measure]' in str(e), e\n"
        "else:\n    raise SystemExit('no error')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_bad_arguments_raise_kvcalc_error() -> None:
    """Unknown dtype / method / model type are KVCalcErrors naming the problem."""
    llama = TINY["full attention (llama)"]
    with pytest.raises(kvcalc.KVCalcError, match="dtype"):
        measure.measure_cache(llama, 4, dtype="int3")
    with pytest.raises(kvcalc.KVCalcError, match="method"):
        measure.measure_cache(llama, 4, method="guess")
    with pytest.raises(kvcalc.KVCalcError, match="no_such_model"):
        measure.measure_cache({"model_type": "no_such_model"}, 4)


@pytest.mark.parametrize("name", sorted(TINY))
def test_decode_step_standins_equal_an_exact_cpu_run(name: str) -> None:
    """One decode step after a 7-token prefill (what docs/validation.md's "+ 1 decode" columns measure):
    meta + stand-ins leave exactly the tensors a real eager CPU decode leaves, and kvcalc's bytes at
    7 + 1 tokens equal them (sliding layers of window 8 stay at 7 tokens, states keep their size)."""
    config = TINY[name]
    fast = measure.measure_cache(config, 7, 2, "fp32", method="meta", decode_steps=1)
    exact = measure.measure_cache(config, 7, 2, "fp32", method="exact", decode_steps=1)
    assert (fast.decode_steps, fast.tokens, fast.seq_len) == (1, 8, 7)
    assert [x.tensors for x in fast.layers] == [x.tensors for x in exact.layers]
    assert (fast.total, fast.aux_bytes, fast.cache_class) == (exact.total, exact.aux_bytes, exact.cache_class)
    kw: dict[str, Any] = {"batch_size": 2, "kv_dtype": "fp32", "engine": "transformers"}
    model = kvcalc.load_model(config)
    assert kvcalc.kv_cache_bytes(model, 8, encoder_seq_len=fast.encoder_len, **kw) == fast.total
    prefill = measure.measure_cache(config, 7, 2, "fp32", method="meta")  # measured by the same run
    assert kvcalc.kv_cache_bytes(model, 7, encoder_seq_len=prefill.encoder_len, **kw) == prefill.total


def test_decode_step_grows_full_layers_only() -> None:
    """After a decode step full layers hold L + 1 tokens, sliding layers min(L + 1, window − 1), the
    encoder-decoder cross-attention keeps its encoder length (rules §2, §12)."""
    def seq_lens(m: measure.CacheMeasurement) -> list[set[int]]:
        return [{t.shape[2] for t in x.tensors if t.dtype == "float32"} for x in m.layers]

    llama = TINY["full attention (llama)"]
    assert seq_lens(measure.measure_cache(llama, 7, 1, "fp32", method="meta")) == [{7}, {7}]
    assert seq_lens(measure.measure_cache(llama, 7, 1, "fp32", method="meta", decode_steps=1)) == [{8}, {8}]
    mistral = TINY["sliding window (mistral)"]  # window 8: keeps 7
    assert seq_lens(measure.measure_cache(mistral, 6, 1, "fp32", method="meta", decode_steps=1)) == [{7}, {7}]
    assert seq_lens(measure.measure_cache(mistral, 7, 1, "fp32", method="meta", decode_steps=1)) == [{7}, {7}]
    whisper = TINY["encoder-decoder cross attention (whisper)"]  # 16 encoder positions
    decoded = measure.measure_cache(whisper, 5, 1, "fp32", method="meta", decode_steps=1)
    assert seq_lens(decoded) == [{6, 16}] * 2
    with pytest.raises(kvcalc.KVCalcError, match="decode_steps"):
        measure.measure_cache(llama, 4, decode_steps=-1)


_PATTERN_TYPES = sorted(set(config_mod.CLASS_DEFAULT_FULL_LAYERS) | set(config_mod.CLASS_DEFAULT_PERIOD_KEYS))


@pytest.mark.parametrize("model_type", _PATTERN_TYPES)
def test_missing_layer_types_follow_the_config_class(model_type: str) -> None:
    """A config.json without ``layer_types`` (older checkpoints, e.g. Gemma-2's) gets the pattern the
    transformers config class fills in: kvcalc's sliding/full layer per layer == ``config.layer_types``
    (KV-shared layers, which cache nothing, are skipped)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        pytest.skip(f"{model_type} is not in this transformers")
    config = measure.default_config_dict(model_type)
    config.pop("layer_types", None)
    config["sliding_window"] = config.get("sliding_window") or 64
    expected = measure.config_object(config).layer_types
    kinds = [type(x).__name__ for x in kvcalc.load_model(config).layers]
    assert len(kinds) == len(expected)
    pairs = [(k, t) for k, t in zip(kinds, expected, strict=True) if k != "SharedKV"]
    assert len({t for _, t in pairs}) == 2  # the pattern mixes sliding and full layers
    assert [("sliding_attention" if k == "SlidingWindow" else "full_attention", t) for k, t in pairs] == [
        (t, t) for _, t in pairs
    ]
