"""count_params() against transformers' own count on the meta device (``-m transformers``).

Every model of model_configs.json is built with ``AutoModelForCausalLM.from_config`` under
``torch.device("meta")`` (no memory, milliseconds) and ``sum(p.numel() for p in model.parameters())``
— tied weights appear once — must equal ``count_params(model).total`` exactly. Multimodal wrappers are
also built whole (``AutoModelForImageTextToText``) to check the vision tower. Remote-code model types
(``kimi_k2``) are built as the transformers class their ``architectures`` names (DeepseekV3ForCausalLM).
Synthetic configs cover code paths the real set does not (biases, no q-LoRA, sparse-step MoE, Nemotron-H
MoE layers).
"""

from __future__ import annotations

import copy
import functools
import json
import warnings

import pytest

import kvcalc
from kvcalc.core.catalog import load_catalog
from kvcalc.core.config import is_mamba_ssm
from kvcalc.core.params import count_params

pytestmark = pytest.mark.transformers
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

CATALOG = load_catalog()
DROP = ("quantization_config", "auto_map")  # change weights' storage, never the parameter count


def _model_type(data: dict) -> str:
    """The transformers model_type: the config's, else the one whose class ``architectures`` names."""
    from transformers.models.auto import modeling_auto
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if data.get("model_type") in CONFIG_MAPPING:
        return data["model_type"]
    for model_type, cls in modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.items():
        if cls in (data.get("architectures") or ()):
            return model_type
    raise AssertionError(f"no transformers class for {data.get('model_type')!r}")


@functools.cache
def _count(config_json: str, auto: str) -> int:
    """Parameters transformers builds for a config (``auto``: the Auto class to build with)."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    data = {k: v for k, v in json.loads(config_json).items() if k not in DROP}
    if auto == "AutoModelForCausalLM" and (is_mamba_ssm(data) or data.get("is_encoder_decoder")):
        # mamba_ssm's own format, T5, Whisper: the class kvcalc.measure builds (conversion, seq2seq)
        from kvcalc.measure import run as measure

        return measure.count_parameters(data)
    data["model_type"] = _model_type(data)
    cfg = CONFIG_MAPPING[data["model_type"]].from_dict(copy.deepcopy(data))
    transformers.utils.logging.set_verbosity_error()
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        model = getattr(transformers, auto).from_config(cfg)
    return sum(p.numel() for p in model.parameters())


def _transformers_count(config: dict, auto: str = "AutoModelForCausalLM") -> int:
    return _count(json.dumps(config, sort_keys=True), auto)


@pytest.mark.parametrize("name", [e.name for e in CATALOG])
def test_total_equals_transformers(name: str) -> None:
    entry = CATALOG.get(name)
    assert count_params(entry.model()).total == _transformers_count(dict(entry.config))


@pytest.mark.parametrize("name", [e.name for e in CATALOG if "vision_config" in e.config])
def test_vision_tower_equals_transformers(name: str) -> None:
    entry = CATALOG.get(name)
    p = count_params(entry.model())
    assert p.vision > 0
    assert p.total_with_towers == _transformers_count(dict(entry.config), "AutoModelForImageTextToText")


SMALL = {"hidden_size": 64, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
         "intermediate_size": 96, "vocab_size": 1000}  # fmt: skip
MOE = {"num_experts_per_tok": 2, "moe_intermediate_size": 32}
SYNTHETIC = {
    "llama-biases-tied": {**SMALL, "model_type": "llama", "attention_bias": True, "mlp_bias": True,
                          "tie_word_embeddings": True},
    "qwen2_moe-shared-gate-sparse-step": {**SMALL, **MOE, "model_type": "qwen2_moe", "num_experts": 8,
                                          "shared_expert_intermediate_size": 48, "decoder_sparse_step": 2,
                                          "mlp_only_layers": [0]},
    "qwen3_moe-mlp-only-layers": {**SMALL, **MOE, "model_type": "qwen3_moe", "num_experts": 8, "head_dim": 16,
                                  "decoder_sparse_step": 2, "mlp_only_layers": [1]},
    "deepseek_v3-no-q-lora-biases": {**SMALL, **MOE, "model_type": "deepseek_v3", "q_lora_rank": None,
                                     "kv_lora_rank": 32, "qk_rope_head_dim": 8, "qk_nope_head_dim": 16,
                                     "v_head_dim": 16, "n_routed_experts": 8, "n_shared_experts": 2,
                                     "first_k_dense_replace": 1, "n_group": 2, "topk_group": 1,
                                     "attention_bias": True},
    "nemotron_h-moe-layers": {**SMALL, **MOE, "model_type": "nemotron_h", "num_hidden_layers": 6,
                              "head_dim": 16, "hybrid_override_pattern": "M-*EME", "mamba_num_heads": 8,
                              "mamba_head_dim": 16,
                              "n_groups": 2, "ssm_state_size": 16, "conv_kernel": 4, "n_routed_experts": 8,
                              "moe_shared_expert_intermediate_size": 48, "n_group": 1, "topk_group": 1},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_equals_transformers(name: str) -> None:
    config = SYNTHETIC[name]
    p = count_params(kvcalc.load_model(config))
    assert p.exact
    assert p.total == _transformers_count(config)
