"""config.json → per-layer cache specs (aliases, nested text configs, layer patterns per architecture)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kvcalc.core.fields import LIMITS, Fields, check_int
from kvcalc.core.layers import (
    MLA,
    ChunkedAttention,
    CrossAttention,
    FullAttention,
    GatedDeltaNet,
    KimiDeltaAttention,
    LayerSpec,
    LinearAttention,
    Mamba1,
    Mamba2,
    NoCache,
    Parallel,
    RWKVState,
    SharedKV,
    ShortConv,
    SlidingWindow,
    XLSTMState,
)
from kvcalc.errors import KVCalcError

TEXT_CONFIG_KEYS = ("text_config", "llm_config", "language_config")
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
HEAD_KEYS = ("num_attention_heads", "n_head", "num_heads", "n_heads", "attention_heads")
KV_HEAD_KEYS = ("num_key_value_heads", "num_kv_heads", "n_head_kv", "multi_query_group_num")
HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model", "embed_dim")
#: Encoder-decoder decoders (BART family, ProphetNet, T5, Whisper).
DECODER_LAYER_KEYS = ("decoder_layers", "num_decoder_layers")
DECODER_HEAD_KEYS = ("decoder_attention_heads", "num_decoder_attention_heads", "num_heads")

#: head_dim used when config.json omits it, per transformers config class default (None → hidden//heads).
CLASS_HEAD_DIM = {
    "qwen3": 128,
    "gemma2": 256,
    "gemma3": 256,
    "gemma3_text": 256,
    "qwen3_next": 256,
    "qwen3_5": 256,
    "qwen3_5_text": 256,
    "qwen3_5_moe": 256,
    "qwen3_5_moe_text": 256,
    "gpt_oss": 64,
    "llama4": 128,
    "llama4_text": 128,
    "minimax_m2": 128,
}

#: Architectures whose head_dim is hidden // heads even when that does not divide evenly.
FLOOR_HEAD_DIM = {"glm4_moe"}

#: Multi-head latent attention families (cache the compressed latent).
MLA_TYPES = {"deepseek_v2", "deepseek_v3", "kimi_k2", "kimi_k25", "deepseek_v32", "glm_moe_dsa"}
#: MLA with the DSA sparse-attention indexer cache.
DSA_TYPES = {"deepseek_v32", "glm_moe_dsa"}
#: Where vLLM keeps the ssm state in fp32 (GUIDE §4).
VLLM_FP32_SSM_TYPES = {"nemotron_h"}

ATTENTION_KINDS = {"full_attention", "sliding_attention", "chunked_attention"}
#: Qwen families whose sliding layers come from use_sliding_window + max_window_layers.
QWEN_WINDOW_RULES = {"qwen2", "qwen2_moe", "qwen3", "qwen3_moe"}


def _every(period: int, *, full_first: bool = False, last_full: bool = False) -> Callable[[int, int], bool]:
    """Layer i of n is full attention every ``period``-th layer: ``(i + 1) % period == 0`` (or
    ``i % period == 0`` with full_first); optionally the last layer too."""
    return lambda i, n: (i % period if full_first else (i + 1) % period) == 0 or (last_full and i == n - 1)


#: transformers config classes that fill a missing ``layer_types`` with a fixed pattern in their
#: ``__post_init__`` (``configuration_<type>.py``, transformers 5.23): model_type -> "layer i of n is
#: full attention" (the others slide). A config.json without ``layer_types`` gets exactly this pattern.
CLASS_DEFAULT_FULL_LAYERS: dict[str, Callable[[int, int], bool]] = {
    "gemma2": _every(2),  # Gemma2Config: sliding if (i + 1) % 2
    "vaultgemma": _every(2),  # VaultGemmaConfig
    "gpt_oss": _every(2),  # GptOssConfig
    "olmo3": _every(4),  # Olmo3Config: sliding if (i + 1) % 4 != 0
    "gemma3n_text": _every(5),  # Gemma3nTextConfig: full if (i + 1) % 5 == 0
    "kolibri1": _every(5),  # Kolibri1Config
    "gemma4_text": _every(6),  # Gemma4TextConfig: sliding_window_pattern = 6
    "gemma4_unified_text": _every(6),
    "beam": _every(6, last_full=True),  # BeamConfig: every sixth layer and the last one
    "cwm": _every(4, full_first=True),  # CwmConfig: full if i % 4 == 0
    "granite_swa": _every(4, full_first=True),  # GraniteSwaConfig
    "granitemoe_swa": _every(4, full_first=True),  # GraniteMoeSwaConfig
    "flint": lambda i, n: i < 2 or i % 4 == 1 or i == n - 1,  # FlintConfig
    "muse_glimmer_text": lambda i, n: (n - 1 - i) % 4 == 0,  # MuseGlimmerTextConfig: from the last layer
    "muse_spark_text": lambda i, n: (n - 1 - i) % 4 == 0,  # MuseSparkTextConfig
}
#: Config classes whose default pattern reads a key: model_type -> (key, its class default, full_first).
CLASS_DEFAULT_PERIOD_KEYS: dict[str, tuple[str, int, bool]] = {
    "cohere2": ("sliding_window_pattern", 4, False),  # Cohere2Config: kwargs.pop("sliding_window_pattern", 4)
    # ModernBertDecoderConfig: layer i slides if i % global_attn_every_n_layers != 0
    "modernbert-decoder": ("global_attn_every_n_layers", 3, True),
}

ENCODER_DECODER_TYPES = {
    "bart", "mbart", "marian", "pegasus", "plbart", "mvp", "blenderbot", "blenderbot-small",
    "bigbird_pegasus", "prophetnet", "whisper", "t5", "mt5", "umt5",
}  # fmt: skip
#: T5 family: decoder self- and cross-attention of heads × d_kv (T5Attention.inner_dim).
T5_TYPES = {"t5", "mt5", "umt5"}

#: Encoders (and embedding / contrastive models): they generate nothing and keep no KV cache. BERT-like
#: types cache only as decoders (``is_decoder: true``: BertLMHeadModel); measured: with their defaults
#: transformers returns no cache at all (notes/transformers_defaults_measured.json).
ENCODER_ONLY_TYPES = {
    "bert", "roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "electra", "ernie", "data2vec-text",
    "roc_bert", "bert-generation", "roberta-prelayernorm", "big_bird", "megatron-bert", "rembert", "roformer",
    "xmod", "deberta", "deberta-v2", "distilbert", "albert", "mpnet", "nomic_bert", "modernbert", "clip",
    "clip_text_model", "siglip", "siglip_text_model", "siglip2", "chinese_clip", "altclip", "e5", "jina_bert",
    "new", "nomic-bert", "xlm", "flaubert", "funnel", "squeezebert", "layoutlm", "canine", "luke", "mra",
    "nystromformer", "yoso", "ibert", "qdqbert", "esm", "mobilebert", "convbert",
}  # fmt: skip

#: Architectures measured in transformers whose caches kvcalc cannot size yet: refuse, never guess.
UNSUPPORTED = {
    "dots3_note": "per-layer MLA/indexer geometry",
    "dots3_note_text": "per-layer MLA/indexer geometry",
    "cpmant": "prompt tokens are prepended to the cache",
    "deepseek_v4": "compressed sparse attention caches",
    "zaya": "hybrid layers",
    "inkling_text": "hybrid sliding layers",
    "inkling2_text": "hybrid sliding layers",
    "qwen4_exp_text": "its state layers are not modelled",
    "recurrent_gemma": "its recurrent state is not returned as a cache",
    "rwkv5": "RWKV v5 (remote code): its state is not modelled",
    "rwkv6": "RWKV v6 (remote code): its state is not modelled",
    "rwkv7": "RWKV v7 (remote code): its state is not modelled",
    "florence2": "the vision encoder's tokens join the decoder's cross-attention",
}


@dataclass(frozen=True)
class Parsed:
    """What the parser learned: layers plus display facts."""

    layers: tuple[LayerSpec, ...]
    model_type: str
    verified: bool
    notes: tuple[str, ...]


def text_config(cfg: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """The language-model part of a (possibly multimodal) config, and its key prefix for messages."""
    for key in TEXT_CONFIG_KEYS:
        sub = cfg.get(key)
        if isinstance(sub, Mapping) and any(k in sub for k in LAYER_KEYS + HIDDEN_KEYS):
            return sub, f"{key}."
    return cfg, ""


class _Arch:
    """Reads one text config: attention geometry and per-layer kinds."""

    def __init__(self, cfg: Mapping[str, Any], prefix: str, model_type: str) -> None:
        self.f = Fields(cfg, prefix)
        self.cfg = cfg
        self.model_type = model_type
        self.notes: list[str] = []
        block_types = self.f.list("layers_block_type")
        if model_type in T5_TYPES:  # T5Config: num_decoder_layers defaults to num_layers
            self.n_layers = self.f.int("num_decoder_layers", "num_layers", limit="layers")
        elif model_type in ENCODER_DECODER_TYPES:
            self.n_layers = self.f.int(*DECODER_LAYER_KEYS, limit="layers")
        elif model_type == "kosmos_2_5_text_model":
            self.n_layers = self.f.int("layers", limit="layers")
        elif self.f.has(*LAYER_KEYS) or not (block_types or self.f.has("hybrid_override_pattern")):
            self.n_layers = self.f.int(*LAYER_KEYS, limit="layers")
        else:
            self.n_layers = len(block_types or self.f.str("hybrid_override_pattern"))

    # -- attention geometry -------------------------------------------------------------------
    def heads(self) -> int:
        return self.f.int(*HEAD_KEYS, limit="heads")

    def hidden(self) -> int:
        return self.f.int(*HIDDEN_KEYS)

    def kv_heads(self) -> int:
        heads = self.heads()
        if (
            self.model_type in ("falcon", "gpt_bigcode")
            and self.f.bool("multi_query")
            and not self.f.bool("new_decoder_architecture")
        ):
            return 1
        kv = self.f.int(*KV_HEAD_KEYS, default=heads, limit="heads")
        if kv > heads or heads % kv:
            key = self.f.first(*KV_HEAD_KEYS)[0]
            raise KVCalcError(
                f"{self.f.where}{key}: {kv} key/value heads must divide num_attention_heads ({heads})"
            )
        return kv

    def head_dim(self) -> int:
        if self.f.has("head_dim"):
            return self.f.int("head_dim")
        if self.model_type in CLASS_HEAD_DIM:
            return CLASS_HEAD_DIM[self.model_type]
        hidden, heads = self.hidden(), self.heads()
        if hidden % heads and self.model_type not in FLOOR_HEAD_DIM:
            raise KVCalcError(
                f"{self.f.where}head_dim: missing, and hidden_size {hidden} is not divisible by "
                f"num_attention_heads {heads}; add head_dim"
            )
        return max(1, hidden // heads)

    def attention(self, kind: str) -> LayerSpec:
        """One attention layer of the given layer_types kind."""
        kv, hd = self.kv_heads(), self.head_dim()
        hf_kv = self.heads() if self.model_type == "falcon" and self.f.bool("new_decoder_architecture") else 0
        if kind == "sliding_attention":
            return SlidingWindow(kv, hd, hf_kv_heads=hf_kv, window=self.window())
        if kind == "chunked_attention":
            chunk = self.f.int("attention_chunk_size", default=0, minimum=2, limit="tokens")
            return ChunkedAttention(kv, hd, hf_kv_heads=hf_kv, chunk=chunk or self.window())
        return FullAttention(kv, hd, hf_kv_heads=hf_kv)

    def window(self) -> int:
        return self.f.int("sliding_window", minimum=2, limit="tokens")

    def _qwen_window(self, mt: str) -> list[str]:
        """Qwen2/Qwen3 (dense: layers ≥ max_window_layers slide), Qwen2-MoE (odd layers below
        max_window_layers slide), Qwen3-MoE (no layer_types: DynamicCache slides every layer).

        transformers ``Qwen2Config`` / ``Qwen2MoeConfig.__post_init__`` and ``DynamicCache.__init__``.
        """
        n = self.n_layers
        if not (self.f.bool("use_sliding_window") and self.f.has("sliding_window")):
            return ["full_attention"] * n
        first = self.f.int("max_window_layers", default=28, minimum=0, limit="layers")  # class default
        if mt == "qwen3_moe":
            return ["sliding_attention"] * n
        if mt == "qwen2_moe":
            return ["sliding_attention" if (i + 1) % 2 and i < first else "full_attention" for i in range(n)]
        return ["sliding_attention" if i >= first else "full_attention" for i in range(n)]

    def mla(self) -> MLA:
        index = 0
        if self.model_type in DSA_TYPES or self.f.has("index_topk"):
            index = self.f.int("index_head_dim", default=128)
        return MLA(
            kv_lora_rank=self.f.int("kv_lora_rank"),
            qk_rope_head_dim=self.f.int("qk_rope_head_dim"),
            index_head_dim=index,
        )

    # -- layer pattern ------------------------------------------------------------------------
    def layer_types(self) -> list[str]:
        """Per-layer kind names, from ``layer_types`` or the architecture's own keys."""
        given = self.f.list("layer_types")
        if given is not None:
            if len(given) < self.n_layers:
                raise KVCalcError(
                    f"{self.f.where}layer_types: has {len(given)} entries for {self.n_layers} layers"
                )
            bad = [t for t in given if not isinstance(t, str)]
            if bad:
                raise KVCalcError(f"{self.f.where}layer_types: entries must be strings, got {bad[0]!r}")
            return list(given[: self.n_layers])
        n = self.n_layers
        mt = self.model_type
        if self.f.has("use_sliding_window") and not self.f.bool("use_sliding_window"):
            # Qwen2/Qwen3 (and derived) configs: sliding_window = None unless use_sliding_window.
            return ["full_attention"] * n
        if mt in QWEN_WINDOW_RULES:
            return self._qwen_window(mt)
        if mt == "smollm3":  # SmolLM3Config: with use_sliding_window, the NoPE layers slide
            if not (self.f.bool("use_sliding_window") and self.f.has("sliding_window")):
                return ["full_attention"] * n
            interval = self.f.int("no_rope_layer_interval", default=4, limit="layers")
            flags = self.f.list("no_rope_layers")
            if flags is None:
                flags = [int((i + 1) % interval != 0) for i in range(n)]
            rope = _int_list(self.f, "no_rope_layers", flags, n)
            return ["full_attention" if rope[i] else "sliding_attention" for i in range(n)]
        if mt in CLASS_DEFAULT_PERIOD_KEYS and self.f.has("sliding_window"):
            key, default, full_first = CLASS_DEFAULT_PERIOD_KEYS[mt]
            period = self.f.int(key, default=default, minimum=1, limit="layers")
            full = _every(period, full_first=full_first)
            return ["full_attention" if full(i, n) else "sliding_attention" for i in range(n)]
        if mt in CLASS_DEFAULT_FULL_LAYERS and self.f.has("sliding_window"):
            full = CLASS_DEFAULT_FULL_LAYERS[mt]
            return ["full_attention" if full(i, n) else "sliding_attention" for i in range(n)]
        if self.f.has("sliding_window_pattern") and self.f.has("sliding_window"):
            period = self.f.int("sliding_window_pattern", limit="layers")
            return ["sliding_attention" if (i + 1) % period else "full_attention" for i in range(n)]
        if mt in ("llama4", "llama4_text") and self.f.has("attention_chunk_size"):
            # Llama4TextConfig: ``no_rope_layers if no_rope_layers else default`` (an empty list too).
            no_rope = self.f.list("no_rope_layers")
            if not no_rope:
                interval = self.f.int("no_rope_layer_interval", default=4, limit="layers")
                no_rope = [int((i + 1) % interval != 0) for i in range(n)]
            flags = _int_list(self.f, "no_rope_layers", no_rope, n)
            return ["chunked_attention" if flags[i] else "full_attention" for i in range(n)]
        if self.f.has("sliding_window"):
            return ["sliding_attention"] * n
        if self.f.has("attention_chunk_size"):
            return ["chunked_attention"] * n
        return ["full_attention"] * n


Builder = Callable[[_Arch], list[LayerSpec]]


def _int_list(f: Fields, key: str, values: Any, min_len: int) -> list[int]:
    """A list of small non-negative integers (flags or layer indices), at least ``min_len`` long."""
    if not isinstance(values, list) or len(values) < min_len:
        raise KVCalcError(f"{f.where}{key}: expected a list of at least {min_len} integers")
    return [
        check_int(v, f"{f.where}{key}[{i}]", minimum=0, maximum=LIMITS["layers"])
        for i, v in enumerate(values)
    ]


def _plain(a: _Arch) -> list[LayerSpec]:
    """Attention-only models: full / sliding / chunked per layer_types."""
    return _by_kind(a, a.layer_types(), {})


def _mla(a: _Arch) -> list[LayerSpec]:
    spec = a.mla()
    return [spec] * a.n_layers


def _mamba1(a: _Arch) -> list[LayerSpec]:
    hidden = a.hidden()
    expand = a.f.int("expand", default=2)
    d_inner = a.f.int("intermediate_size", default=expand * hidden)
    spec = Mamba1(
        d_inner=d_inner,
        d_conv=a.f.int("conv_kernel", "d_conv", default=4),
        d_state=a.f.int("state_size", "d_state", default=16),
    )
    return [spec] * a.n_layers


def _fp32_ssm(a: _Arch) -> bool:
    """Whether the checkpoint asks for fp32 recurrent state (vLLM honours it)."""
    keys = ("mamba_ssm_dtype", "mamba_ssm_cache_dtype")
    return any(str(a.cfg.get(k, "")).lower() in ("float32", "fp32") for k in keys)


def _mamba2_spec(a: _Arch, prefix: str = "") -> Mamba2:
    """A Mamba-2 mixer from ``mamba_*`` (or plain) keys."""
    f = a.f
    p = prefix
    n_heads = f.int("mamba_num_heads", "mamba_n_heads", "n_mamba_heads", f"{p}num_heads", f"{p}n_heads")
    head_dim = f.int("mamba_head_dim", "mamba_d_head", "mamba_headdim", f"{p}head_dim")
    return Mamba2(
        n_heads=n_heads,
        head_dim=head_dim,
        n_groups=f.int("mamba_n_groups", "mamba_ngroups", f"{p}n_groups", default=1),
        d_state=f.int("mamba_d_state", "ssm_state_size", f"{p}d_state", "state_size"),
        d_conv=f.int("mamba_d_conv", "conv_kernel", f"{p}d_conv", default=4),
        d_inner=f.int("mamba_d_ssm", default=n_heads * head_dim),
        vllm_ssm_fp32=a.model_type in VLLM_FP32_SSM_TYPES or _fp32_ssm(a),
    )


def _mamba2(a: _Arch) -> list[LayerSpec]:
    return [_mamba2_spec(a)] * a.n_layers


def _nemotron_h(a: _Arch) -> list[LayerSpec]:
    """Nemotron-H: ``layers_block_type`` names, or the checkpoint's ``hybrid_override_pattern`` codes."""
    mamba = _mamba2_spec(a)
    attn_hd = a.f.int("attention_head_dim", "head_dim", default=a.hidden() // a.heads())
    attn = FullAttention(a.kv_heads(), attn_hd)
    by_name = {"mamba": mamba, "linear_attention": mamba, "attention": attn, "full_attention": attn}
    names = a.f.list("layers_block_type")
    if names is not None:
        return _by_kind(a, list(names), by_name)
    pattern = a.f.str("hybrid_override_pattern")
    if len(pattern) < a.n_layers:
        raise KVCalcError(
            f"{a.f.where}hybrid_override_pattern: has {len(pattern)} characters for {a.n_layers} layers"
        )
    codes = {"M": "mamba", "*": "attention", "-": "mlp", "E": "moe"}
    for i, ch in enumerate(pattern[: a.n_layers]):
        if ch not in codes:
            raise KVCalcError(f"{a.f.where}hybrid_override_pattern[{i}]: unknown layer code {ch!r}")
    return _by_kind(a, [codes[ch] for ch in pattern[: a.n_layers]], by_name)


def _gdn_spec(a: _Arch) -> GatedDeltaNet:
    f = a.f
    return GatedDeltaNet(
        num_k_heads=f.int("linear_num_key_heads"),
        k_head_dim=f.int("linear_key_head_dim"),
        num_v_heads=f.int("linear_num_value_heads"),
        v_head_dim=f.int("linear_value_head_dim"),
        conv_kernel=f.int("linear_conv_kernel_dim", default=4),
        vllm_ssm_fp32=_fp32_ssm(a),
    )


def _qwen3_next(a: _Arch) -> list[LayerSpec]:
    types = a.f.list("layer_types")
    if types is None:
        interval = a.f.int("full_attention_interval", default=4, limit="layers")
        types = ["linear_attention" if (i + 1) % interval else "full_attention" for i in range(a.n_layers)]
    gdn = _gdn_spec(a)
    return _by_kind(a, types, {"linear_attention": gdn})


def _by_kind(a: _Arch, types: list[Any] | Any, extra: Mapping[str, LayerSpec]) -> list[LayerSpec]:
    """Map per-layer kind names to specs: attention kinds plus ``extra``."""
    if len(types) < a.n_layers:
        raise KVCalcError(f"{a.f.where}layer_types: has {len(types)} entries for {a.n_layers} layers")
    out: list[LayerSpec] = []
    for i, kind in enumerate(types[: a.n_layers]):
        if not isinstance(kind, str):
            raise KVCalcError(f"{a.f.where}layer_types[{i}]: expected a layer type name, got {kind!r}")
        if kind in extra:
            out.append(extra[kind])
        elif kind in ATTENTION_KINDS or kind == "attention":
            out.append(a.attention("full_attention" if kind == "attention" else kind))
        elif kind in ("mlp", "moe"):
            out.append(NoCache())
        else:
            raise KVCalcError(
                f"{a.f.where}layer_types[{i}]: layer type {kind!r} is not supported for "
                f"model_type {a.model_type!r}"
            )
    return out


def _minimax(a: _Arch) -> list[LayerSpec]:
    types = a.f.list("layer_types")
    if types is None:
        codes = a.f.list("attn_type_list")
        flags = [1] * a.n_layers if codes is None else _int_list(a.f, "attn_type_list", codes, a.n_layers)
        types = ["full_attention" if c else "linear_attention" for c in flags]
    lin = LinearAttention(n_heads=a.heads(), head_dim=a.head_dim())
    return _by_kind(a, list(types), {"linear_attention": lin})


def _lfm2(a: _Arch) -> list[LayerSpec]:
    """LFM2/LFM3: gated short-conv layers plus attention layers (LFM3 adds sliding ones)."""
    types = a.f.list("layer_types")
    if types is None and a.model_type == "lfm3":
        types = [
            "full_attention" if i % 4 == 2 else "sliding_attention" if i % 4 == 0 and i > 0 else "conv"
            for i in range(a.n_layers)
        ]
    if types is None:
        idxs = a.f.list("full_attn_idxs")
        full = set(range(a.n_layers)) if idxs is None else set(_int_list(a.f, "full_attn_idxs", idxs, 0))
        types = ["full_attention" if i in full else "conv" for i in range(a.n_layers)]
    conv = ShortConv(channels=a.hidden(), l_cache=a.f.int("conv_L_cache", default=3))
    return _by_kind(a, list(types), {"conv": conv})


def _jamba(a: _Arch) -> list[LayerSpec]:
    period = a.f.int("attn_layer_period", default=8, limit="layers")
    offset = a.f.int("attn_layer_offset", default=4, minimum=0, limit="layers")
    mamba = Mamba1(
        d_inner=a.f.int("mamba_expand", default=2) * a.hidden(),
        d_conv=a.f.int("mamba_d_conv", default=4),
        d_state=a.f.int("mamba_d_state", default=16),
    )
    types = ["full_attention" if i % period == offset else "mamba" for i in range(a.n_layers)]
    return _by_kind(a, types, {"mamba": mamba})


def _hybrid_mamba2(a: _Arch) -> list[LayerSpec]:
    """Bamba / GraniteMoeHybrid: ``layer_types`` / ``layers_block_type`` (mamba | linear_attention for the
    Mamba-2 mixer, attention | full_attention), else ``attn_layer_indices`` (transformers: absent →
    every layer Mamba; ``GraniteMoeHybridConfig`` default ``["linear_attention"] * n``)."""
    types = a.f.list("layer_types")
    if types is None:
        types = a.f.list("layers_block_type")
    if types is None:
        idx = set(_int_list(a.f, "attn_layer_indices", a.f.list("attn_layer_indices") or [], 0))
        types = ["attention" if i in idx else "mamba" for i in range(a.n_layers)]
    mamba = _mamba2_spec(a)
    return _by_kind(a, list(types), {"mamba": mamba, "linear_attention": mamba})


def _falcon_h1(a: _Arch) -> list[LayerSpec]:
    both = Parallel(parts=(_mamba2_spec(a), a.attention("full_attention")))
    return [both] * a.n_layers


def _shared_kv(a: _Arch, layers: list[LayerSpec]) -> list[LayerSpec]:
    """Gemma 3n / 4: the last ``num_kv_shared_layers`` layers reuse earlier K/V (0 bytes)."""
    shared = a.f.int("num_kv_shared_layers", default=0, minimum=0, limit="layers")
    if shared > len(layers):
        raise KVCalcError(f"{a.f.where}num_kv_shared_layers: {shared} exceeds {len(layers)} layers")
    first = len(layers) - shared
    return layers[:first] + [SharedKV(source_layer=first - 1)] * shared


def _gemma(a: _Arch) -> list[LayerSpec]:
    """Gemma 3n / 4: KV sharing; Gemma 4's full ("global") layers use their own head_dim (default 512)."""
    layers = _plain(a)
    if a.model_type.startswith("gemma4"):
        kv = a.kv_heads()
        if a.f.bool("attention_k_eq_v"):
            kv = a.f.int("num_global_key_value_heads", default=kv, limit="heads")
        hd = a.f.int("global_head_dim", default=512)
        layers = [FullAttention(kv, hd) if isinstance(x, FullAttention) else x for x in layers]
    return _shared_kv(a, layers)


def _encoder_decoder(a: _Arch) -> list[LayerSpec]:
    """Decoder of an encoder-decoder model: self-attention plus cross-attention over the encoder output.

    The encoder length is the input length (``seq_len``) unless fixed by the config (Whisper).
    """
    f = a.f
    heads = f.int(*DECODER_HEAD_KEYS, limit="heads")
    hidden = a.hidden()
    head_dim = f.int("d_kv", default=0) or hidden // heads
    enc = f.int("max_source_positions", default=0) if a.model_type == "whisper" else 0
    spec = Parallel(parts=(FullAttention(heads, head_dim), CrossAttention(heads, head_dim, encoder_len=enc)))
    a.notes.append(
        f"encoder-decoder: cross-attention cached over {enc:,} encoder positions (Whisper pads every input "
        "to 30 s)"
        if enc
        else "encoder-decoder: cross-attention cached over as many encoder positions as the context "
        "(seq_len) unless encoder_seq_len says otherwise"
    )
    return [spec] * a.n_layers


def _indexer_types(a: _Arch) -> list[Any]:
    """Per-layer indexer mode ("full" | "shared"), with each config class's default when absent.

    transformers ``HyV4Config`` (layer 0 and every 4th from 1 full) and ``MistralLarge4TextConfig``
    (``index_topk_pattern`` "F"/"S", else ``index_topk_freq`` / ``index_skip_topk_offset``).
    """
    n, f = a.n_layers, a.f
    given = f.list("indexer_types")
    if given is not None:
        return list(given)
    if a.model_type == "hy_v4":
        return ["full" if i == 0 or (i - 1) % 4 == 0 else "shared" for i in range(n)]
    if a.model_type.startswith("mistral_large4"):
        pattern = a.cfg.get("index_topk_pattern")
        if isinstance(pattern, str):
            codes = {"F": "full", "S": "shared"}
            bad = [c for c in pattern if c not in codes]
            if bad:
                raise KVCalcError(f"{f.where}index_topk_pattern: unknown code {bad[0]!r} (expected F or S)")
            return [codes[c] for c in pattern]
        if pattern is not None:
            return list(f.list("index_topk_pattern") or [])
        freq = max(f.int("index_topk_freq", default=1, minimum=0, limit="layers"), 1)
        offset = f.int("index_skip_topk_offset", default=2, minimum=0, limit="layers")
        return ["full" if max(i - offset + 1, 0) % freq == 0 else "shared" for i in range(n)]
    return ["full"] * n


def _indexed_mla(a: _Arch) -> list[LayerSpec]:
    """MLA with a DSA indexer per layer: ``indexer_types`` "shared" layers keep no indexer keys and
    ``no_rope_layers`` 0 (NoPE) layers keep no rope part of the latent.

    Defaults as the config classes fill them (an empty list is kept as given, as transformers does,
    and then refused for being too short); Mistral Large 4 ``kv_source_layers`` other than "every layer
    its own" (KV sharing) is refused.
    """
    n = a.n_layers
    types = a.f.list("layer_types")
    if types is None:
        types = ["indexed_attention"] * n
    shared = _indexer_types(a)
    no_rope = a.f.list("no_rope_layers")
    if no_rope is None:
        interval = a.f.int("no_rope_layer_interval", default=4, limit="layers")
        no_rope = (
            [int((i + 1) % interval != 0) for i in range(n)]
            if a.model_type.startswith("mistral_large4")
            else [1] * n
        )
    rope_flags = _int_list(a.f, "no_rope_layers", no_rope, n)
    sources = a.f.list("kv_source_layers")
    if sources is not None and list(sources) != list(range(n)):
        raise KVCalcError(
            f"{a.f.where}kv_source_layers: layers sharing another layer's latent KV are not supported yet"
        )
    if len(types) < n:
        raise KVCalcError(f"{a.f.where}layer_types: has {len(types)} entries for {n} layers")
    if len(shared) < n:
        raise KVCalcError(f"{a.f.where}indexer_types: has {len(shared)} entries for {n} layers")
    base = a.mla()
    index = a.f.int("index_head_dim", default=128)
    out: list[LayerSpec] = []
    for i, kind in enumerate(types[:n]):
        if kind not in ("indexed_attention", "full_attention"):
            raise KVCalcError(
                f"{a.f.where}layer_types[{i}]: layer type {kind!r} is not supported for {a.model_type!r}"
            )
        out.append(
            MLA(
                kv_lora_rank=base.kv_lora_rank,
                qk_rope_head_dim=base.qk_rope_head_dim if rope_flags[i] else 0,
                index_head_dim=index if kind == "indexed_attention" and shared[i] != "shared" else 0,
            )
        )
    return out


#: block_configs attention fields that would change the cache if set (sink tokens, per-layer windows).
_NAS_UNREAD_ATTENTION = ("window_length", "num_sink_tokens", "sparsify")


def nas_blocks(f: Fields, n_layers: int) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """``block_configs`` of Nemotron-NAS / DeciLM as (attention, ffn) dicts, one per layer, validated."""
    blocks = f.list("block_configs")
    if blocks is None or len(blocks) < n_layers:
        got = 0 if blocks is None else len(blocks)
        raise KVCalcError(f"{f.where}block_configs: has {got} entries for {n_layers} layers")
    out = []
    for i, block in enumerate(blocks[:n_layers]):
        where = f"{f.where}block_configs[{i}]"
        if not isinstance(block, Mapping):
            raise KVCalcError(f"{where}: expected an object")
        parts = []
        for name in ("attention", "ffn"):
            part = block.get(name) or {}
            if not isinstance(part, Mapping):
                raise KVCalcError(f"{where}.{name}: expected an object")
            parts.append(part)
        for key in _NAS_UNREAD_ATTENTION:
            if parts[0].get(key) not in (None, False):
                raise KVCalcError(f"{where}.attention.{key}: not supported yet (refused rather than guessed)")
        out.append((parts[0], parts[1]))
    return out


def _nemotron_nas(a: _Arch) -> list[LayerSpec]:
    """Nemotron-NAS / DeciLM ``block_configs``: per layer, attention ``no_op`` or ``replace_with_linear``
    (no cache), else full attention with num_attention_heads // n_heads_in_group KV heads.

    vLLM ``model_executor/models/nemotron_nas.py`` (DeciLMDecoderLayer: ``num_kv_heads =
    config.num_attention_heads // block_config.attention.n_heads_in_group``; no_op layers get no
    attention and no cache, HasNoOps); the checkpoints' remote code (modeling_decilm.py) does the same.
    """
    heads, hd = a.heads(), a.head_dim()
    out: list[LayerSpec] = []
    for i, (attn, _) in enumerate(nas_blocks(a.f, a.n_layers)):
        if attn.get("no_op") or attn.get("replace_with_linear"):
            out.append(NoCache())
            continue
        where = f"{a.f.where}block_configs[{i}].attention.n_heads_in_group"
        group = check_int(attn.get("n_heads_in_group"), where, maximum=LIMITS["heads"])
        if heads % group:
            raise KVCalcError(f"{where}: {group} does not divide num_attention_heads ({heads})")
        out.append(FullAttention(heads // group, hd))
    return out


def _mimo_v2(a: _Arch) -> list[LayerSpec]:
    """MiMo-V2-Flash: V head_dim differs from K; sliding layers carry twice the KV heads."""
    n = a.n_layers
    types = a.f.list("layer_types") or [
        "full_attention" if i == 0 or not (i + 1) % 6 else "sliding_attention" for i in range(n)
    ]
    kv, hd = a.kv_heads(), a.head_dim()
    vd = a.f.int("v_head_dim", default=hd)
    window = (
        a.f.int("sliding_window_size", default=0, limit="tokens") + 1 if a.f.has("sliding_window_size") else 0
    )
    full = FullAttention(kv, hd, v_head_dim=vd)
    swa = SlidingWindow(2 * kv, hd, v_head_dim=vd, window=window or a.window())
    return _by_kind(a, list(types), {"full_attention": full, "sliding_attention": swa})


def _zamba2(a: _Arch) -> list[LayerSpec]:
    """Zamba2: Mamba-2 layers; "hybrid" layers add the shared attention block's K/V.

    The shared block sees concat(hidden, embeddings), so its head_dim is 2·hidden/heads.
    """
    mamba = _mamba2_spec(a)
    hd = a.f.int("attention_head_dim", default=2 * a.hidden() // a.heads())
    hybrid = Parallel(parts=(mamba, FullAttention(a.kv_heads(), hd)))
    names = a.f.list("layers_block_type") or []
    return _by_kind(a, list(names), {"mamba": mamba, "linear_attention": mamba, "hybrid": hybrid})


def _rwkv(a: _Arch) -> list[LayerSpec]:
    """RWKV (v4): five hidden-size state vectors per layer (:class:`RWKVState`)."""
    return [RWKVState(hidden=a.hidden())] * a.n_layers


def _xlstm(a: _Arch) -> list[LayerSpec]:
    """xLSTM (mLSTM blocks, transformers ``xLSTMConfig``): qk_dim / v_dim = hidden · qk_dim_factor (0.5)
    / v_dim_factor (1.0) rounded up to a multiple of 64, split over num_heads (:class:`XLSTMState`)."""
    heads, hidden = a.heads(), a.hidden()
    dims = []
    for key, default in (("qk_dim_factor", 0.5), ("v_dim_factor", 1.0)):
        factor = a.cfg.get(key, default)
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 0:
            raise KVCalcError(f"{a.f.where}{key}: expected a positive number, got {factor!r}")
        dims.append(cdiv_int(int(hidden * factor), 64) * 64 // heads)
    return [XLSTMState(n_heads=heads, qk_head_dim=dims[0], v_head_dim=dims[1])] * a.n_layers


def _zamba(a: _Arch) -> list[LayerSpec]:
    """Zamba (v1): Mamba-1 layers; "hybrid" layers add the shared attention block's own K/V cache.

    transformers ``ZambaConfig`` (layer pattern: linear, linear, hybrid, then hybrid where
    ``i % attn_layer_period == attn_layer_offset``; attention_head_dim 2·hidden/heads over the concat of
    hidden and embeddings) and ``ZambaHybridDynamicCache`` (conv d_inner × d_conv, ssm d_inner × d_state
    in fp32, K/V per hybrid layer). Measured: 63 Mamba + 13 hybrid layers at the class defaults.
    """
    d_inner = a.f.int("mamba_expand", default=2) * a.hidden()
    mamba = Mamba1(
        d_inner=d_inner,
        d_conv=a.f.int("mamba_d_conv", default=4),
        d_state=a.f.int("mamba_d_state", default=16),
    )
    hd = a.f.int("attention_head_dim", default=2 * a.hidden() // a.heads())
    hybrid = Parallel(parts=(mamba, FullAttention(a.kv_heads(), hd)))
    names = a.f.list("layers_block_type")
    if names is None:
        period = a.f.int("attn_layer_period", default=6, limit="layers")
        offset = a.f.int("attn_layer_offset", default=4, minimum=0, limit="layers")
        names = ["mamba", "mamba", "hybrid"] + [
            "hybrid" if i % period == offset else "mamba" for i in range(a.n_layers - 3)
        ]
    return _by_kind(a, list(names), {"mamba": mamba, "linear_attention": mamba, "hybrid": hybrid})


def _mllama(a: _Arch) -> list[LayerSpec]:
    """Llama 3.2 Vision text model: cross-attention layers hold image K/V only when images are given."""
    idx = set(_int_list(a.f, "cross_attention_layers", a.f.list("cross_attention_layers") or [], 0))
    attn = a.attention("full_attention")
    a.notes.append("image cross-attention layers counted as 0 bytes (text-only prompt)")
    return [NoCache() if i in idx else attn for i in range(a.n_layers)]


def _kda_hybrid(a: _Arch) -> list[LayerSpec]:
    """Kimi-Linear: Kimi Delta Attention layers plus MLA full-attention layers."""
    kda = KimiDeltaAttention(
        n_heads=a.f.int("linear_num_heads", default=a.heads(), limit="heads"),
        head_dim=a.f.int("linear_head_dim", default=a.head_dim()),
        conv_kernel=a.f.int("linear_conv_kernel_dim", "short_conv_kernel_size", default=4),
    )
    types = a.f.list("layer_types") or []
    return _by_kind(a, list(types), {"linear_attention": kda, "full_attention": a.mla()})


BUILDERS: dict[str, Builder] = {
    **{t: _mla for t in MLA_TYPES},
    "mamba": _mamba1,
    "falcon_mamba": _mamba1,
    "mamba2": _mamba2,
    "nemotron_h": _nemotron_h,
    "qwen3_next": _qwen3_next,
    "qwen3_5": _qwen3_next,
    "qwen3_5_text": _qwen3_next,
    "qwen3_5_moe": _qwen3_next,
    "qwen3_5_moe_text": _qwen3_next,
    "olmo_hybrid": _qwen3_next,
    "minimax": _minimax,
    "lfm2": _lfm2,
    "lfm2_moe": _lfm2,
    "lfm3": _lfm2,
    "jamba": _jamba,
    "bamba": _hybrid_mamba2,
    "granitemoehybrid": _hybrid_mamba2,
    "falcon_h1": _falcon_h1,
    "gemma3n": _gemma,
    "gemma3n_text": _gemma,
    "gemma4": _gemma,
    "gemma4_text": _gemma,
    "gemma4_unified": _gemma,
    "gemma4_unified_text": _gemma,
    "mllama": _mllama,
    "mimo_v2_flash": _mimo_v2,
    "hy_v4": _indexed_mla,
    "mistral_large4": _indexed_mla,
    "mistral_large4_text": _indexed_mla,
    "mllama_text_model": _mllama,
    "kimi_linear": _kda_hybrid,
    "bailing_hybrid": _kda_hybrid,
    "zamba2": _zamba2,
    "nemotron-nas": _nemotron_nas,
    "zamba": _zamba,
    "rwkv": _rwkv,
    "xlstm": _xlstm,
    **{t: _encoder_decoder for t in ENCODER_DECODER_TYPES},
}

#: Architectures (outside BUILDERS) whose transformers caches kvcalc matched exactly, measured from
#: their config-class defaults (tests/test_architecture_coverage.py re-checks this every run).
VERIFIED_PLAIN = {
    "afmoe", "apertus", "arcee", "aria_text", "axk1", "axk2", "beam", "biogpt", "bitnet", "bloom",
    "codegen", "cohere", "cohere2", "cohere2_moe", "cosmos3_edge_text", "ctrl", "cwm", "diffllama", "doge",
    "ernie4_5", "ernie4_5_moe", "ernie4_5_vl_moe_text", "exaone4", "exaone_moe", "falcon", "flex_olmo",
    "flint", "gemma", "gemma2", "gemma3_text", "git", "glm", "glm4", "glm4_moe", "glm4_moe_lite",
    "glm_ocr_text", "gpt2", "gpt_bigcode", "gpt_neo", "gpt_neox", "gpt_neox_japanese", "gpt_oss", "gptj",
    "granite", "granite_docling_text", "granite_swa", "granitemoe", "granitemoe_swa", "granitemoeshared",
    "helium", "hrm_text", "hy_v3", "hyperclovax", "internlm3", "iquestcoder", "jais2", "kolibri1",
    "kosmos_2_5_text_model", "laguna", "llama", "llama4_text", "mellum", "minicpm3", "minimax_m2",
    "minimax_m3_vl_text", "ministral3", "mistral", "mistral4", "mixtral", "modernbert-decoder",
    "molmo2_text", "mpt", "muse_glimmer_text", "muse_spark_text", "nanochat", "olmo", "olmo2", "olmo3",
    "olmoe", "opt", "paddleocr_vl_text", "persimmon", "phi", "phi3", "phi4_multimodal", "phimoe", "qwen2",
    "qwen2_5_omni_text", "qwen2_5_vl_text", "qwen2_moe", "qwen2_vl_text", "qwen3", "qwen3_moe",
    "qwen3_vl_moe_text", "qwen3_vl_text", "seed_oss", "smollm3", "solar_open", "stablelm", "starcoder2",
    "vaultgemma", "xglm", "youtu",
}  # fmt: skip

#: Structure keys present in a verified type's config that its transformers cache does not depend on
#: (measured exact with them: tests/test_architecture_coverage.py): GPT-Neo's local layers and IDEFICS's
#: gated cross-attention layers keep a full self-attention cache; rope scaling and MTP layers cache
#: nothing of their own; MiniMax-M2's attn_type_list is a leftover of MiniMax-01.
STRUCTURE_IGNORED: dict[str, frozenset[str]] = {
    "gpt_neo": frozenset({"attention_types", "attention_layers"}),
    "idefics": frozenset({"cross_layer_interval"}),
    "molmo2_text": frozenset({"rope_scaling_layers"}),
    "nemotron_h": frozenset({"mtp_layers_block_type"}),
    "minimax_m2": frozenset({"attn_type_list"}),  # MiniMaxM2 has no linear attention: never read
}
#: Keys transformers turns into ``layer_types`` only when layer_types is not given.
_DERIVES_LAYER_TYPES = frozenset(
    {
        "sliding_window_pattern", "_sliding_window_pattern", "global_attn_every_n_layers", "no_rope_layers",
        "no_rope_layer_interval", "max_window_layers", "full_attention_interval", "attn_type_list",
        "full_attn_idxs", "attn_layer_indices", "layers_block_type", "attn_layer_period", "attn_layer_offset",
    }
)  # fmt: skip

#: Keys that betray a cache kind kvcalc cannot size for an unknown architecture.
_STATE_KEYS = ("ssm_state_size", "state_size", "mamba_d_state", "linear_num_key_heads", "conv_L_cache")


#: Per-layer structure keys: a name about layers / blocks / attention ending like a pattern, list or period.
_STRUCTURE_KEY = re.compile(
    r"^(?=.*(layer|block|attn|attention|window|rope|hybrid))"
    r".*(_pattern|_period|_offset|_types?|_idxs?|_indices|_ids|_list|_configs?|_interval|_layers)$"
)
#: Counts and feed-forward structure (parameters only), never a cache pattern.
_NOT_STRUCTURE = re.compile(
    r"^(num|n)_|_num_|^max_position|mlp|moe|expert|dense|mtp|nextn|^(encoder|decoder)_layers$"
)
#: Structure keys each builder reads (besides :data:`PLAIN_READS`, which every path honours).
PLAIN_READS = frozenset({"layer_types", "sliding_window_pattern"})
BUILDER_READS: dict[str, frozenset[str]] = {
    "nemotron_h": frozenset({"layers_block_type", "hybrid_override_pattern"}),
    "qwen3_next": frozenset({"full_attention_interval"}),
    "olmo_hybrid": frozenset({"full_attention_interval"}),
    "minimax": frozenset({"attn_type_list"}),
    "lfm2": frozenset({"full_attn_idxs"}),
    "lfm2_moe": frozenset({"full_attn_idxs"}),
    "jamba": frozenset({"attn_layer_period", "attn_layer_offset"}),
    "bamba": frozenset({"layers_block_type", "attn_layer_indices"}),
    "granitemoehybrid": frozenset({"layers_block_type", "attn_layer_indices"}),
    "mllama": frozenset({"cross_attention_layers"}),
    "mllama_text_model": frozenset({"cross_attention_layers"}),
    "zamba2": frozenset({"layers_block_type", "hybrid_layer_ids"}),
    "nemotron-nas": frozenset({"block_configs"}),
    "zamba": frozenset({"layers_block_type", "attn_layer_period", "attn_layer_offset"}),
    "llama4": frozenset({"no_rope_layers", "no_rope_layer_interval"}),
    "llama4_text": frozenset({"no_rope_layers", "no_rope_layer_interval"}),
    "smollm3": frozenset({"no_rope_layers", "no_rope_layer_interval"}),
    **{
        t: frozenset({"no_rope_layers", "indexer_types", "kv_source_layers", "index_topk_pattern"})
        for t in ("hy_v4", "mistral_large4", "mistral_large4_text")
    },
    **{t: frozenset({"num_kv_shared_layers"}) for t in ("gemma3n", "gemma3n_text")},
    **{
        t: frozenset({"num_kv_shared_layers", "per_layer_config"})
        for t in ("gemma4", "gemma4_text", "gemma4_unified", "gemma4_unified_text")
    },
}


def structure_keys(text: Mapping[str, Any]) -> list[str]:
    """Keys of ``text`` that describe per-layer structure: a list, or an integer (period, offset,
    interval), or a ``*_pattern`` string; flags, dicts and global strings ("block_sparse") are not."""
    out = []
    for k, v in text.items():
        if not (isinstance(k, str) and _STRUCTURE_KEY.match(k)) or _NOT_STRUCTURE.search(k):
            continue
        if isinstance(v, bool | Mapping) or v in (None, [], ""):
            continue
        if isinstance(v, str) and not k.endswith("_pattern"):
            continue
        out.append(k)
    return out


def _refuse_unread_structure(text: Mapping[str, Any], prefix: str, model_type: str) -> None:
    """Refuse a config carrying per-layer structure the chosen builder does not read (never guess past it)."""
    reads = (
        PLAIN_READS
        | BUILDER_READS.get(model_type, frozenset())
        | STRUCTURE_IGNORED.get(model_type, frozenset())
    )
    fields = Fields(text)
    keys = structure_keys(text)
    if (model_type in BUILDERS or model_type in VERIFIED_PLAIN) and "layer_types" in keys:
        # transformers builds from layer_types when given; the keys it is derived from are superseded.
        reads = reads | _DERIVES_LAYER_TYPES
    for key in keys:
        if key in reads:
            continue
        if key == "max_window_layers" and (
            model_type in QWEN_WINDOW_RULES or not fields.bool("use_sliding_window", False)
        ):
            continue  # only read with use_sliding_window (Qwen rules); harmless without it
        shown = model_type or "(missing)"
        raise KVCalcError(
            f"{prefix}{key}: per-layer structure kvcalc does not read for model_type {shown!r}; "
            "refused rather than guessed"
        )


def _refuse_early(text: Mapping[str, Any], cfg: Mapping[str, Any], prefix: str, model_type: str) -> None:
    """Architectures kvcalc knows it cannot size: a clear error instead of a guess."""
    if model_type in UNSUPPORTED or cfg.get("model_type") in UNSUPPORTED:
        which = model_type if model_type in UNSUPPORTED else cfg["model_type"]
        raise KVCalcError(f"{prefix}model_type: {which!r} is not supported yet ({UNSUPPORTED[which]})")
    if model_type in ENCODER_ONLY_TYPES and text.get("is_decoder") is not True:
        raise KVCalcError(
            f"{prefix}model_type: {model_type!r} is an encoder (is_decoder is not true): no KV cache — it "
            "generates nothing, so there is no generation cache to size"
        )
    if text.get("per_layer_config") and not model_type.startswith("gemma4"):
        raise KVCalcError(
            f"{prefix}per_layer_config: per-layer overrides of {model_type!r} are not supported yet"
        )
    _refuse_unread_structure(text, prefix, model_type)
    fields = Fields(text)
    if model_type not in BUILDERS and not fields.has(*LAYER_KEYS) and fields.has(*DECODER_LAYER_KEYS):
        raise KVCalcError(f"{prefix}model_type: encoder-decoder {model_type!r} is not supported yet")
    if (
        model_type not in BUILDERS
        and model_type not in VERIFIED_PLAIN
        and any(k in text for k in _STATE_KEYS)
    ):
        raise KVCalcError(
            f"{prefix}model_type: {model_type or '(missing)'!r} has recurrent-state fields kvcalc "
            "does not know how to size; it is not supported yet"
        )


#: mamba_ssm ``ssm_cfg`` keys → transformers Mamba/Mamba2Config keys (shape-relevant ones only).
_SSM_KEYS = {
    "d_state": "state_size", "d_conv": "conv_kernel", "expand": "expand", "headdim": "head_dim",
    "ngroups": "n_groups", "bias": "use_bias", "conv_bias": "use_conv_bias", "chunk_size": "chunk_size",
    "dt_rank": "time_step_rank",
}  # fmt: skip
#: ssm_cfg keys that change nothing kvcalc or transformers counts (init and kernel choices).
_SSM_IGNORED = {"layer", "dt_min", "dt_max", "dt_init_floor", "dt_limit", "dt_scale", "dt_init",
                "A_init_range", "D_has_hdim", "learnable_init_states", "use_mem_eff_path",
                "activation", "norm_before_gate", "rmsnorm"}  # fmt: skip


#: The fields of mamba_ssm's ``MambaConfig`` dataclass (mamba_ssm/models/config_mamba.py).
_MAMBA_SSM_FIELDS = {
    "d_model", "d_intermediate", "n_layer", "vocab_size", "ssm_cfg", "attn_layer_idx", "attn_cfg",
    "rms_norm", "residual_in_fp32", "fused_add_norm", "pad_vocab_size_multiple", "tie_embeddings",
}  # fmt: skip


def is_mamba_ssm(cfg: Mapping[str, Any]) -> bool:
    """A checkpoint in mamba_ssm's own format (``MambaConfig`` dataclass: d_model, n_layer, ssm_cfg)."""
    return "model_type" not in cfg and "d_model" in cfg and "n_layer" in cfg and "ssm_cfg" in cfg


def from_mamba_ssm(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """mamba_ssm's config as the transformers Mamba2Config / MambaConfig it converts to.

    As transformers' ``convert_mamba2_ssm_checkpoint_to_pytorch.py`` (and MambaLMHeadModel) do:
    hidden_size = d_model, num_hidden_layers = n_layer, vocab padded up to ``pad_vocab_size_multiple``,
    ``tie_embeddings`` → tie_word_embeddings, num_heads = expand·d_model / headdim; ``ssm_cfg`` fills the
    mixer (mamba_ssm defaults: Mamba2 d_state 128, headdim 64, ngroups 1; Mamba1 d_state 16).
    Attention layers (``attn_layer_idx``) and MLPs (``d_intermediate``) are refused: the transformers
    classes have neither.
    """
    f = Fields(cfg)
    extra = sorted(k for k in cfg if k not in _MAMBA_SSM_FIELDS)
    if extra:
        raise KVCalcError(f"{extra[0]}: not a mamba_ssm MambaConfig field; refused rather than guessed")
    ssm = cfg.get("ssm_cfg") or {}
    if not isinstance(ssm, Mapping):
        raise KVCalcError("ssm_cfg: expected an object")
    layer = ssm.get("layer", "Mamba1")
    if layer not in ("Mamba1", "Mamba2"):
        raise KVCalcError(f"ssm_cfg.layer: {layer!r} is not supported (Mamba1 or Mamba2)")
    if cfg.get("attn_layer_idx"):
        raise KVCalcError("attn_layer_idx: mamba_ssm hybrids with attention layers are not supported yet")
    if f.int("d_intermediate", default=0, minimum=0):
        raise KVCalcError("d_intermediate: mamba_ssm blocks with an MLP are not supported yet")
    unknown = sorted(k for k in ssm if k not in _SSM_KEYS and k not in _SSM_IGNORED)
    if unknown:
        raise KVCalcError(f"ssm_cfg.{unknown[0]}: not read by kvcalc; refused rather than guessed")
    if ssm.get("rmsnorm") is False or cfg.get("rms_norm") is False:
        raise KVCalcError("rms_norm: mamba_ssm models with LayerNorm are not supported yet")
    hidden = f.int("d_model")
    vocab = f.int("vocab_size")
    pad = f.int("pad_vocab_size_multiple", default=1)
    out: dict[str, Any] = {
        "model_type": "mamba2" if layer == "Mamba2" else "mamba",
        "architectures": ["Mamba2ForCausalLM" if layer == "Mamba2" else "MambaForCausalLM"],
        "hidden_size": hidden,
        "num_hidden_layers": f.int("n_layer", limit="layers"),
        "vocab_size": cdiv_int(vocab, pad) * pad,
        "tie_word_embeddings": f.bool("tie_embeddings", True),
    }
    for key, name in _SSM_KEYS.items():
        if key in ssm:
            out[name] = ssm[key]
    if layer == "Mamba2":
        out.setdefault("state_size", 128)
        out.setdefault("head_dim", 64)
        out.setdefault("n_groups", 1)
        expand = Fields(out).int("expand", default=2)
        out["expand"] = expand
        out["num_heads"] = expand * hidden // Fields(out).int("head_dim")
    else:
        out.setdefault("state_size", 16)
        out["intermediate_size"] = Fields(out).int("expand", default=2) * hidden
    return out


def cdiv_int(a: int, b: int) -> int:
    """Ceiling division."""
    return -(-a // b)


def parse_layers(cfg: Mapping[str, Any]) -> Parsed:
    """Per-layer cache specs for a (text) config dict."""
    if is_mamba_ssm(cfg):
        cfg = from_mamba_ssm(cfg)
    text, prefix = text_config(cfg)
    for where, holder in ((prefix, text), ("", cfg)):
        value = holder.get("model_type")
        if value is not None and not isinstance(value, str):
            raise KVCalcError(f"{where}model_type: expected a string, got {value!r}")
    model_type = text.get("model_type") or cfg.get("model_type") or ""
    _refuse_early(text, cfg, prefix, model_type)
    verified = model_type in BUILDERS or model_type in VERIFIED_PLAIN
    builder = BUILDERS.get(model_type)
    if builder is None and Fields(text).has("kv_lora_rank"):
        builder = _indexed_mla if Fields(text).has("layer_types") else _mla
    try:
        arch = _Arch(text, prefix, model_type)
        layers = (builder or _plain)(arch)
    except KVCalcError as exc:
        if verified:
            raise
        shown = model_type or "(missing)"
        raise KVCalcError(f"{exc} (model_type {shown!r} is not a known architecture)") from None
    notes = (
        []
        if verified
        else [f"model_type {model_type or '(missing)'!r} is not verified: computed as plain attention"]
    )
    return Parsed(tuple(layers), model_type, verified, tuple(notes + arch.notes))
