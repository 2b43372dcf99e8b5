"""llama.cpp's memory module: the K/V cells and recurrent states a ``llama_context`` allocates.

Modelled build: ggml-org/llama.cpp ``0c1e57098`` (``vendor/llama.cpp`` of the llama-cpp-python 0.3.36
sdist). Read top to bottom it follows what llama.cpp does when a context is created:

1. ``src/llama-context.cpp`` ``llama_init_from_model``: refusals (quantized V without flash attention,
   MLA with different K/V types, K/V types whose block does not divide the head size, > 256 sequences);
2. ``llama_context::llama_context``: ``n_ctx`` (0 = training context), ``n_batch = min(n_ctx, n_batch)``,
   ``n_ubatch = min(n_batch, n_ubatch)``, then ``n_ctx`` padded to 256 and ``n_ctx_seq`` (unified: all of
   it; else ``pad(n_ctx / n_seq_max, 256)`` per stream);
3. ``src/llama-model.cpp`` ``create_memory``: a plain ``llama_kv_cache``, an interleaved-SWA pair
   (``llama-kv-cache-iswa.cpp``: SWA cells ``pad(min(n_ctx_seq, n_swa·(unified ? n_seq : 1) + n_ubatch),
   256)``, or ``n_ctx_seq`` with ``--swa-full``), a ``llama_memory_recurrent`` (``max(1, n_seq_max)`` cells of
   f32 r/s state per layer), or a hybrid of an attention cache and a recurrent one;
4. ``src/llama-kv-cache.cpp`` ``llama_kv_cache::llama_kv_cache``: per layer K =
   ``ggml_row_size(type_k, n_embd_k_gqa)·cells·streams`` and V likewise, V widened to the widest layer
   when flash attention is off (``v_trans``), no V at all for MLA; each tensor padded to the buffer
   alignment (32 bytes on the CPU, ``TENSOR_ALIGNMENT``); then the ``size = … MiB`` log line.

Model geometry comes from kvcalc's layer specs (pure geometry), translated to the hparams llama.cpp's
converter (``convert_hf_to_gguf.py``) and loader produce; architectures whose translation was not read
in that build are refused, never guessed.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kvcalc.core.fields import LIMITS, check_int
from kvcalc.core.gguf import GGUF
from kvcalc.core.layers import (
    MLA,
    ChunkedAttention,
    FullAttention,
    GatedDeltaNet,
    LayerSpec,
    Mamba1,
    Mamba2,
    NoCache,
    SlidingWindow,
)
from kvcalc.core.model import Model
from kvcalc.errors import KVCalcError

BUILD = "llama.cpp 0c1e57098 (llama-cpp-python 0.3.36)"

#: ggml type name → (elements per block, bytes per block): ``ggml/src/ggml-common.h`` block structs.
GGML_TYPES: dict[str, tuple[int, int]] = {
    "f32": (1, 4),
    "f16": (1, 2),
    "bf16": (1, 2),
    "q8_0": (32, 34),
    "q4_0": (32, 18),
    "q4_1": (32, 20),
    "iq4_nl": (32, 18),
    "q5_0": (32, 22),
    "q5_1": (32, 24),
}
#: ``common/arg.cpp`` ``kv_cache_types``: what ``-ctk``/``-ctv`` accept, in llama.cpp's order.
CACHE_TYPES = tuple(GGML_TYPES)
#: ``cparams.n_ctx = GGML_PAD(n_ctx, 256)`` (llama-context.cpp); the SWA cache uses the same pad.
CTX_PAD = 256
#: ``LLAMA_MAX_SEQ`` (llama-cparams.h).
MAX_SEQ = 256
#: CPU buffer alignment (``TENSOR_ALIGNMENT``, ggml-impl.h); every tensor's size is padded to it.
CPU_ALIGNMENT = 32
#: llama.cpp tools' defaults (common/common.h): ``-b 2048 -ub 512``.
N_BATCH, N_UBATCH = 2048, 512
FLASH_ATTN = ("on", "off", "auto")
MIB = 1024 * 1024

#: HF ``model_type`` whose llama.cpp architecture keeps sliding / chunked layers in a separate SWA cache
#: (``src/models/<arch>.cpp`` sets ``swa_type``): name → fixed ``n_swa`` (0: the config's window).
SWA_ARCHS: dict[str, int] = {
    "gpt_oss": 0,  # openai-moe.cpp: LLM_KV_ATTENTION_SLIDING_WINDOW, pattern 2
    "gemma2": 0,  # gemma2.cpp
    "gemma3": 0,  # gemma3.cpp
    "gemma3_text": 0,
    "cohere2": 0,  # cohere2.cpp
    "llama4": 8192,  # llama4.cpp: LLAMA_SWA_TYPE_CHUNKED, n_swa = 8192 whatever the config says
}
#: HF ``model_type`` whose window llama.cpp ignores: full attention in every layer (Mistral-7B-v0.1's
#: converter drops ``sliding_window``; llama.cpp, qwen2.cpp, qwen3.cpp, phi3.cpp build no SWA cache).
NO_SWA_ARCHS = frozenset({"mistral", "llama", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "phi3"})
#: ``context_length`` the converter writes whatever the config says (conversion/mamba.py: 2**20, "arbitrary
#: value; for those who use the default"; conversion/falcon.py: 2048, "not in config.json").
CONVERTER_CTX = {"mamba": 2**20, "mamba2": 2**20, "falcon_mamba": 2**20, "falcon": 2048}
#: HF ``model_type`` that llama.cpp runs as a pure recurrent model (``llm_arch_is_recurrent``).
RECURRENT_ARCHS = frozenset({"mamba", "mamba2", "falcon_mamba"})
#: HF ``model_type`` that llama.cpp runs as attention + recurrent (``llm_arch_is_hybrid``).
HYBRID_ARCHS = frozenset(
    {"jamba", "nemotron_h", "qwen3_next", "qwen3_5", "qwen3_5_moe", "qwen3_5_text", "qwen3_5_moe_text",
     "granitemoehybrid"}
)  # fmt: skip


def _f32(x: float) -> float:
    """Round to single precision, as llama.cpp's ``(float)`` casts in its log lines do."""
    return float(struct.unpack("f", struct.pack("f", x))[0])


def mib(n: int) -> str:
    """``%7.2f`` of ``(float) n / (1024.0f * 1024.0f)``: llama.cpp's MiB figures, to the digit."""
    return f"{_f32(n) / MIB:7.2f}"


def _pad(x: int, n: int) -> int:
    """``GGML_PAD(x, n)``."""
    return -(-x // n) * n


def cache_type(name: str, field_name: str = "type_k") -> str:
    """A ``-ctk``/``-ctv`` value, checked against llama.cpp's list (``Unsupported cache type``)."""
    key = str(name).strip().lower()
    if key not in GGML_TYPES:
        raise KVCalcError(
            f"{field_name}: Unsupported cache type: {name} (llama.cpp accepts {', '.join(CACHE_TYPES)})"
        )
    return key


def is_quantized(type_name: str) -> bool:
    """``ggml_is_quantized``: block formats (not f32/f16/bf16)."""
    return GGML_TYPES[type_name][0] > 1


def row_size(type_name: str, n: int) -> int:
    """``ggml_row_size(type, n)`` = type size · n / block size (n must be whole blocks)."""
    blck, size = GGML_TYPES[type_name]
    if n % blck:
        raise KVCalcError(f"{type_name}: a row of {n} values is not a whole number of {blck}-value blocks")
    return size * n // blck


# ------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Settings:
    """A llama.cpp context request in its own vocabulary (``-c -np -kvu -ctk -ctv -fa --swa-full -b -ub``)."""

    n_ctx: int = 4096
    n_parallel: int = 1
    kv_unified: bool = False
    type_k: str = "f16"
    type_v: str = "f16"
    flash_attn: str = "auto"
    swa_full: bool = False
    n_batch: int = N_BATCH
    n_ubatch: int = N_UBATCH

    @classmethod
    def from_cparams(cls, c: Mapping[str, Any]) -> Settings:
        """From llama.cpp's own context-parameter names (``n_seq_max`` is ``-np``), as
        scripts/validate_llamacpp.py records each measured context."""
        return cls(
            n_ctx=c["n_ctx"],
            n_parallel=c["n_seq_max"],
            kv_unified=c["kv_unified"],
            type_k=c["type_k"],
            type_v=c["type_v"],
            flash_attn=c["flash_attn"],
            swa_full=c["swa_full"],
            n_batch=c["n_batch"],
            n_ubatch=c["n_ubatch"],
        )

    def checked(self) -> Settings:
        """Validated copy (names the bad flag)."""
        fa = str(self.flash_attn).strip().lower()
        if fa not in FLASH_ATTN:
            raise KVCalcError(
                f"flash_attn: unknown value for --flash-attn: '{self.flash_attn}' (on, off or auto)"
            )
        return Settings(
            n_ctx=check_int(self.n_ctx, "n_ctx", minimum=0, maximum=LIMITS["tokens"]),
            n_parallel=check_int(self.n_parallel, "n_parallel", minimum=1, maximum=1 << 16),
            kv_unified=bool(self.kv_unified),
            type_k=cache_type(self.type_k, "type_k"),
            type_v=cache_type(self.type_v, "type_v"),
            flash_attn=fa,
            swa_full=bool(self.swa_full),
            n_batch=check_int(self.n_batch, "n_batch", minimum=0, maximum=1 << 24),
            n_ubatch=check_int(self.n_ubatch, "n_ubatch", minimum=0, maximum=1 << 24),
        )


# ------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class KVLayer:
    """One layer's K/V rows as llama.cpp's hparams give them (``n_embd_k_gqa(il)``, ``n_embd_v_gqa(il)``)."""

    il: int
    head_k: int
    head_v: int
    n_head_kv: int
    swa: bool = False

    @property
    def n_embd_k(self) -> int:
        return self.head_k * self.n_head_kv

    @property
    def n_embd_v(self) -> int:
        return self.head_v * self.n_head_kv


@dataclass(frozen=True)
class RecurrentLayer:
    """One recurrent layer's state rows (f32): ``n_embd_r`` (conv) and ``n_embd_s`` (ssm / delta state)."""

    il: int
    n_embd_r: int
    n_embd_s: int


@dataclass(frozen=True)
class Geometry:
    """What llama.cpp's memory module needs to know about a model (llama-hparams.h)."""

    n_layer: int
    n_ctx_train: int
    kv_layers: tuple[KVLayer, ...]
    recurrent_layers: tuple[RecurrentLayer, ...] = ()
    is_mla: bool = False
    n_swa: int = 0
    hybrid: bool = False
    notes: tuple[str, ...] = ()

    @property
    def iswa(self) -> bool:
        return any(x.swa for x in self.kv_layers)

    @property
    def n_embd_v_gqa_max(self) -> int:
        """``hparams.n_embd_v_gqa_max()`` over all layers (recurrent layers have no KV heads: 0)."""
        return max((x.n_embd_v for x in self.kv_layers), default=0)


def _kv_layer(il: int, leaf: LayerSpec, arch: str) -> tuple[KVLayer, int, str | None]:
    """An attention spec → (KV layer, n_swa, note)."""
    if isinstance(leaf, MLA):
        if leaf.index_head_dim:
            raise KVCalcError(
                f"model: llama.cpp's sparse-attention (DSA) indexer cache (llama-kv-cache-dsa.cpp) is not "
                f"modelled by kvcalc for {BUILD}"
            )
        # deepseek2: key_length = kv_lora_rank + rope, head_count_kv = 1, K-only cache.
        return KVLayer(il, leaf.kv_lora_rank + leaf.qk_rope_head_dim, leaf.kv_lora_rank, 1), 0, None
    assert isinstance(leaf, (FullAttention, SlidingWindow, ChunkedAttention))
    head_v = leaf.v_head_dim or leaf.head_dim
    if isinstance(leaf, FullAttention):
        return KVLayer(il, leaf.head_dim, head_v, leaf.kv_heads), 0, None
    window = leaf.window if isinstance(leaf, SlidingWindow) else leaf.chunk
    if arch in NO_SWA_ARCHS:
        note = (
            f"llama.cpp ignores the {window}-token window of model_type {arch!r}: "
            "every layer caches the full context"
        )
        return KVLayer(il, leaf.head_dim, head_v, leaf.kv_heads), 0, note
    if arch in SWA_ARCHS:
        n_swa = SWA_ARCHS[arch] or window
        return KVLayer(il, leaf.head_dim, head_v, leaf.kv_heads, swa=True), n_swa, None
    raise KVCalcError(
        f"model: how {BUILD} caches the sliding-window layers of model_type {arch!r} is not modelled "
        f"(known: {', '.join(sorted(SWA_ARCHS))}; windows ignored: {', '.join(sorted(NO_SWA_ARCHS))})"
    )


def _recurrent_layer(il: int, leaf: LayerSpec) -> RecurrentLayer:
    """f32 rows: n_embd_r = (d_conv − 1)·(d_inner + 2·n_group·d_state), n_embd_s = d_state·d_inner."""
    if isinstance(leaf, Mamba1):
        return RecurrentLayer(il, (leaf.d_conv - 1) * leaf.d_inner, leaf.d_state * leaf.d_inner)
    if isinstance(leaf, Mamba2):
        d_inner = leaf.d_inner or leaf.n_heads * leaf.head_dim
        r = (leaf.d_conv - 1) * (d_inner + 2 * leaf.n_groups * leaf.d_state)
        return RecurrentLayer(il, r, leaf.d_state * d_inner)
    if isinstance(leaf, GatedDeltaNet):
        # qwen3next converter: d_inner = nv·dv, d_state = dk, n_group = nk, d_conv = conv kernel.
        d_inner = leaf.num_v_heads * leaf.v_head_dim
        r = (leaf.conv_kernel - 1) * (d_inner + 2 * leaf.num_k_heads * leaf.k_head_dim)
        return RecurrentLayer(il, r, leaf.k_head_dim * d_inner)
    raise KVCalcError(
        f"model: llama.cpp's state for {leaf.kind!r} layers is not modelled by kvcalc for {BUILD}"
    )


def geometry(model: Model) -> Geometry:
    """kvcalc layer specs → llama.cpp hparams (per-layer K/V rows, SWA flags, recurrent rows)."""
    arch = model.model_type
    kv: list[KVLayer] = []
    rec: list[RecurrentLayer] = []
    notes: list[str] = []
    n_swa = 0
    no_cache = 0
    for il, layer in enumerate(model.layers):
        leaves = layer.leaves()
        if len(leaves) != 1:
            raise KVCalcError(
                f"model: layer {il} holds several caches ({layer.kind}); not modelled for {BUILD}"
            )
        leaf = leaves[0]
        if isinstance(leaf, NoCache):
            no_cache += 1
        elif isinstance(leaf, (FullAttention, SlidingWindow, ChunkedAttention, MLA)):
            layer_kv, w, note = _kv_layer(il, leaf, arch)
            kv.append(layer_kv)
            n_swa = max(n_swa, w)
            if note and note not in notes:
                notes.append(note)
        elif isinstance(leaf, (Mamba1, Mamba2, GatedDeltaNet)):
            rec.append(_recurrent_layer(il, leaf))
        else:
            raise KVCalcError(
                f"model: {leaf.kind!r} layers (layer {il}) are not modelled by kvcalc for {BUILD}"
            )
    hybrid = bool(kv and rec)
    if hybrid and arch not in HYBRID_ARCHS:
        raise KVCalcError(
            f"model: model_type {arch!r} mixes attention and recurrent layers; not modelled for {BUILD}"
        )
    if rec and not kv and arch not in RECURRENT_ARCHS:
        raise KVCalcError(f"model: recurrent model_type {arch!r} is not modelled for {BUILD}")
    if no_cache and not hybrid:
        raise KVCalcError(
            f"model: {no_cache} layers without a cache in model_type {arch!r}; not modelled for {BUILD}"
        )
    if not kv and not rec:
        raise KVCalcError("model: no layer holds a cache")
    if hybrid and n_swa:
        raise KVCalcError(
            f"model: llama_memory_hybrid_iswa (sliding layers in a hybrid) is not modelled for {BUILD}"
        )
    is_mla = any(isinstance(x.leaves()[0], MLA) for x in model.layers)
    return Geometry(
        n_layer=len(model.layers),
        n_ctx_train=CONVERTER_CTX.get(arch) or model.max_position_embeddings or 0,
        kv_layers=tuple(kv),
        recurrent_layers=tuple(rec),
        is_mla=is_mla,
        n_swa=n_swa,
        hybrid=hybrid,
        notes=tuple(notes),
    )


# ------------------------------------------------------------------------- geometry from a GGUF header

#: GGUF architectures whose SWA layers llama.cpp keeps in a separate cache: default pattern
#: (``set_swa_pattern(n)``: layer il slides when il % n < n − 1) and a fixed n_swa (0: from the file).
_SWA_GGUF = {"gpt-oss": (2, 0), "gemma2": (2, 0), "gemma3": (6, 0), "cohere2": (4, 0), "llama4": (4, 8192)}
_RECURRENT_GGUF = {"mamba", "mamba2"}
#: GGUF hybrids whose recurrent layers the metadata lists (qwen3next.cpp, qwen35.cpp, qwen35moe.cpp).
_HYBRID_GGUF = {"qwen3next", "qwen35", "qwen35moe"}


def _per_layer(value: Any, n_layer: int, key: str) -> list[int]:
    if isinstance(value, list):
        if len(value) < n_layer:
            raise KVCalcError(f"{key}: {len(value)} entries for {n_layer} layers")
        return [int(v) for v in value[:n_layer]]
    return [int(value)] * n_layer


def gguf_geometry(g: GGUF) -> Geometry:
    """llama.cpp hparams for its memory module, from the metadata alone (``llama_model::load_hparams``)."""
    arch = g.architecture
    n_layer_all = g.get("block_count")
    if not isinstance(n_layer_all, int) or n_layer_all <= 0:
        raise KVCalcError(f"{arch}.block_count: missing or not a positive integer")
    # NextN / MTP blocks are appended after the trunk; the main context caches only the trunk
    # (create_memory filters il < hparams.n_layer() when n_layer_nextn > 0)
    n_nextn = int(g.get("nextn_predict_layers", 0) or 0)
    n_layer = n_layer_all - n_nextn
    if n_layer <= 0:
        raise KVCalcError(f"{arch}.nextn_predict_layers: {n_nextn} leaves no trunk layers of {n_layer_all}")
    n_ctx_train = int(g.get("context_length", 0) or 0)
    d_conv, d_inner = int(g.get("ssm.conv_kernel", 0)), int(g.get("ssm.inner_size", 0))
    d_state, n_group = int(g.get("ssm.state_size", 0)), int(g.get("ssm.group_count", 0))
    r = (d_conv - 1 if d_conv else 0) * (d_inner + 2 * n_group * d_state)
    if arch in _RECURRENT_GGUF:
        rec = tuple(RecurrentLayer(il, r, d_state * d_inner) for il in range(n_layer))
        return Geometry(n_layer=n_layer, n_ctx_train=n_ctx_train, kv_layers=(), recurrent_layers=rec)
    recurrent = [False] * n_layer
    if arch in _HYBRID_GGUF:
        # qwen3next.cpp: attention.recurrent_layers, else every full_attention_interval-th layer attends
        given = g.get("attention.recurrent_layers")
        interval = int(g.get("full_attention_interval", 4) or 4)
        recurrent = (
            [bool(x) for x in given[:n_layer]]
            if isinstance(given, list)
            else [(il + 1) % interval != 0 for il in range(n_layer)]
        )
    elif g.get("ssm.inner_size") is not None:
        raise KVCalcError(
            f"general.architecture: hybrid {arch!r} GGUFs are not modelled yet; use its config.json"
        )
    n_head = _per_layer(g.get("attention.head_count", 0), n_layer, f"{arch}.attention.head_count")
    kv_raw = g.get("attention.head_count_kv")
    n_head_kv = _per_layer(
        kv_raw if kv_raw is not None else n_head, n_layer, f"{arch}.attention.head_count_kv"
    )
    n_embd = int(g.get("embedding_length", 0) or 0)
    default_head = n_embd // n_head[0] if n_head[0] else 0
    head_k = int(g.get("attention.key_length", default_head))
    head_v = int(g.get("attention.value_length", default_head))
    is_mla = g.get("attention.key_length_mla") is not None
    if g.get("attention.indexer.head_count") is not None:
        raise KVCalcError(f"{arch}: the sparse-attention indexer cache is not modelled")
    swa = [False] * n_layer
    n_swa = 0
    window = int(g.get("attention.sliding_window", 0) or 0)
    if arch in _SWA_GGUF and window:
        pattern, fixed = _SWA_GGUF[arch]
        given = g.get("attention.sliding_window_pattern")
        if isinstance(given, list):
            swa = [bool(x) for x in given[:n_layer]]
        else:
            n = int(given) if isinstance(given, int) else pattern
            swa = [n == 0 or il % n < n - 1 for il in range(n_layer)]
        n_swa = fixed or window
    kv = tuple(
        KVLayer(il, head_k, head_v, n_head_kv[il], swa=swa[il])
        for il in range(n_layer)
        if n_head_kv[il] and not recurrent[il]
    )
    rec = tuple(RecurrentLayer(il, r, d_state * d_inner) for il in range(n_layer) if recurrent[il])
    return Geometry(
        n_layer=n_layer, n_ctx_train=n_ctx_train, kv_layers=kv, recurrent_layers=rec, is_mla=is_mla,
        n_swa=n_swa, hybrid=bool(rec),
    )  # fmt: skip


# ------------------------------------------------------------------------- llama_init_from_model


def refusals(g: Geometry, s: Settings) -> bool:
    """The refusals of ``llama_init_from_model`` / ``llama_context``, in llama.cpp's words.

    Returns whether flash attention is on when the memory is created (``-fa auto`` is: quantized V
    turns it on, and the cache is laid out for it before the device check).
    """
    if s.n_batch == 0 and s.n_ubatch == 0:
        raise KVCalcError("n_batch: n_batch and n_ubatch cannot both be zero")
    if s.n_ctx == 0 and g.n_ctx_train == 0:
        raise KVCalcError("n_ctx: n_ctx and model->hparams.n_ctx_train cannot both be zero")
    if s.n_parallel > MAX_SEQ:
        raise KVCalcError(f"n_parallel: n_seq_max must be <= {MAX_SEQ}")
    if g.is_mla and s.type_k != s.type_v:
        raise KVCalcError(
            f"type_v: model does not support different K ({s.type_k}) and V ({s.type_v}) cache types"
        )
    fa = s.flash_attn != "off"
    if is_quantized(s.type_v) and not fa:
        raise KVCalcError("flash_attn: quantized V cache requires flash_attn to be enabled")
    for name, t, heads in (
        ("type_k", s.type_k, [x.head_k for x in g.kv_layers]),
        ("type_v", s.type_v, [x.head_v for x in g.kv_layers]),
    ):
        blck = GGML_TYPES[t][0]
        bad = next((h for h in heads if h % blck), None)
        if fa and is_quantized(t) and bad is not None:
            which = "K" if name == "type_k" else "V"
            raise KVCalcError(
                f"{name}: {which} cache type {t} with block size {blck} does not divide "
                f"n_embd_head_{which.lower()}={bad}"
            )
    return fa


@dataclass(frozen=True)
class Context:
    """``cparams`` after llama_context's adjustments."""

    n_ctx: int
    n_ctx_seq: int
    n_seq_max: int
    n_stream: int
    n_batch: int
    n_ubatch: int
    flash_attn: bool


def context(g: Geometry, s: Settings) -> Context:
    """n_ctx (0 → training), batch clamps, pad to 256, per-stream ``n_ctx_seq`` (llama-context.cpp)."""
    fa = refusals(g, s)
    n_ctx = s.n_ctx or g.n_ctx_train
    n_batch = min(n_ctx, s.n_batch)  # causal attention: batch limited by the (unpadded) context
    n_ubatch = min(n_batch, s.n_ubatch or n_batch)
    n_ctx = _pad(n_ctx, CTX_PAD)
    n_seq = s.n_parallel
    if s.kv_unified:
        n_ctx_seq = n_ctx
    else:
        n_ctx_seq = _pad(n_ctx // n_seq, CTX_PAD)
        n_ctx = n_ctx_seq * n_seq
    return Context(n_ctx, n_ctx_seq, n_seq, 1 if s.kv_unified else n_seq, n_batch, n_ubatch, fa)


# ------------------------------------------------------------------------- caches


@dataclass(frozen=True)
class Cache:
    """One allocation of the memory module, with the log line llama.cpp prints for it.

    ``role``: "kv" (plain cache), "non-swa" / "swa" (the iswa pair), "attention" (hybrid) or
    "recurrent". ``bytes`` is the buffer: every tensor padded to ``alignment``.
    """

    role: str
    cells: int
    layers: int
    n_seq_max: int
    n_stream: int
    type_k: str
    type_v: str
    k_bytes: int = 0
    v_bytes: int = 0
    r_bytes: int = 0
    s_bytes: int = 0
    tensors: tuple[tuple[int, int], ...] = field(default=(), repr=False)  # (layer index, tensor bytes)
    alignment: int = CPU_ALIGNMENT

    @property
    def bytes(self) -> int:
        return sum(_pad(t, self.alignment) for _, t in self.tensors)

    def layer_bytes(self, n_layer: int) -> list[int]:
        """This cache's buffer bytes per model layer (each tensor padded to the alignment)."""
        out = [0] * n_layer
        for il, t in self.tensors:
            out[il] += _pad(t, self.alignment)
        return out

    @property
    def log(self) -> str:
        """llama.cpp's own line (``%7.2f MiB``, ``%6u cells``, ``%3d layers``, ``%2u/%u seqs``)."""
        if self.role == "recurrent":
            size = mib(self.r_bytes + self.s_bytes)
            return (
                f"llama_memory_recurrent: size = {size} MiB ({self.cells:6d} cells, {self.layers:3d} layers, "
                f"{self.n_seq_max:2d} seqs {0:2d} rs_seq), R (f32): {mib(self.r_bytes)} MiB, "
                f"S (f32): {mib(self.s_bytes)} MiB, P (f32): {mib(0)} MiB"
            )
        return (
            f"llama_kv_cache: size = {mib(self.k_bytes + self.v_bytes)} MiB ({self.cells:6d} cells, "
            f"{self.layers:3d} layers, {self.n_seq_max:2d}/{self.n_stream} seqs), K ({self.type_k}): "
            f"{mib(self.k_bytes)} MiB, V ({self.type_v}): {mib(self.v_bytes)} MiB"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "role": self.role,
            "cells": self.cells,
            "layers": self.layers,
            "streams": self.n_stream,
            "type_k": self.type_k,
            "type_v": self.type_v,
            "k_bytes": self.k_bytes,
            "v_bytes": self.v_bytes,
            "state_bytes": self.r_bytes + self.s_bytes,
            "bytes": self.bytes,
            "log": self.log,
        }


def kv_cache(
    g: Geometry, layers: Sequence[KVLayer], role: str, cells: int, ctx: Context, s: Settings, alignment: int
) -> Cache:
    """llama_kv_cache: per layer K [n_embd_k_gqa, cells, streams], V likewise (none for MLA).

    Without flash attention V is transposed and every layer's V is as wide as the widest
    (``n_embd_v_gqa_max``, [TAG_V_CACHE_VARIABLE]).
    """
    tensors: list[tuple[int, int]] = []
    k_total = v_total = 0
    for x in layers:
        k = row_size(s.type_k, x.n_embd_k) * cells * ctx.n_stream
        tensors.append((x.il, k))
        k_total += k
        if not g.is_mla:
            n_embd_v = x.n_embd_v if ctx.flash_attn else g.n_embd_v_gqa_max
            v = row_size(s.type_v, n_embd_v) * cells * ctx.n_stream
            tensors.append((x.il, v))
            v_total += v
    return Cache(
        role,
        cells,
        len(layers),
        ctx.n_seq_max,
        ctx.n_stream,
        s.type_k,
        s.type_v,
        k_bytes=k_total,
        v_bytes=v_total,
        tensors=tuple(tensors),
        alignment=alignment,
    )


def recurrent_cache(g: Geometry, ctx: Context, alignment: int) -> Cache:
    """llama_memory_recurrent: ``mem_size = max(1, n_seq_max)`` rows of f32 r and s per recurrent layer.

    The log counts every layer of the model (``hparams.n_layer()``), tensors exist only for the
    recurrent ones.
    """
    rows = max(1, ctx.n_seq_max)
    tensors: list[tuple[int, int]] = []
    r_total = s_total = 0
    for x in g.recurrent_layers:
        r, s = 4 * x.n_embd_r * rows, 4 * x.n_embd_s * rows
        tensors += [(x.il, r), (x.il, s)]
        r_total += r
        s_total += s
    return Cache(
        "recurrent",
        rows,
        g.n_layer,
        ctx.n_seq_max,
        1,
        "f32",
        "f32",
        r_bytes=r_total,
        s_bytes=s_total,
        tensors=tuple(tensors),
        alignment=alignment,
    )


@dataclass(frozen=True)
class Memory:
    """Everything llama.cpp's memory module allocates for one context."""

    context: Context
    caches: tuple[Cache, ...]
    notes: tuple[str, ...] = ()

    n_layer: int = 0

    @property
    def bytes(self) -> int:
        """Sum of the buffers (what ``llama_get_memory_breakdown`` reports as context memory)."""
        return sum(c.bytes for c in self.caches)

    def layer_bytes(self) -> list[int]:
        """Bytes per model layer over all caches (sums to :attr:`bytes`)."""
        out = [0] * self.n_layer
        for c in self.caches:
            out = [a + b for a, b in zip(out, c.layer_bytes(self.n_layer), strict=True)]
        return out

    def log(self) -> list[str]:
        """The lines llama.cpp prints, in order (including the iswa cell counts)."""
        out = []
        for c in self.caches:
            if c.role == "non-swa":
                out.append(f"llama_kv_cache_iswa: creating non-SWA KV cache, size = {c.cells} cells")
            elif c.role == "swa":
                out.append(f"llama_kv_cache_iswa: creating     SWA KV cache, size = {c.cells} cells")
            out.append(c.log)
        return out

    def as_dict(self) -> dict[str, object]:
        ctx = self.context
        return {
            "engine": "llama.cpp",
            "build": BUILD,
            "bytes": self.bytes,
            "n_ctx": ctx.n_ctx,
            "n_ctx_seq": ctx.n_ctx_seq,
            "n_seq_max": ctx.n_seq_max,
            "n_stream": ctx.n_stream,
            "n_batch": ctx.n_batch,
            "n_ubatch": ctx.n_ubatch,
            "flash_attn": ctx.flash_attn,
            "caches": [c.as_dict() for c in self.caches],
            "log": self.log(),
            "notes": list(self.notes),
        }


def memory(
    model: Model | Geometry | GGUF, settings: Settings | None = None, *, alignment: int = CPU_ALIGNMENT
) -> Memory:
    """What ``llama_init_from_model`` allocates in its memory module for ``settings`` (``create_memory``).

    ``model``: a kvcalc Model (config.json), a GGUF header (:mod:`kvcalc.core.gguf`) or a Geometry.
    """
    if isinstance(model, GGUF):
        model = gguf_geometry(model)
    g = model if isinstance(model, Geometry) else geometry(model)
    s = (settings or Settings()).checked()
    ctx = context(g, s)
    caches: list[Cache] = []
    if g.kv_layers and g.iswa:
        base = [x for x in g.kv_layers if not x.swa]
        swa = [x for x in g.kv_layers if x.swa]
        size_swa = (
            ctx.n_ctx_seq
            if s.swa_full
            else _pad(
                min(ctx.n_ctx_seq, g.n_swa * (ctx.n_seq_max if s.kv_unified else 1) + ctx.n_ubatch), CTX_PAD
            )
        )
        caches.append(kv_cache(g, base, "non-swa", ctx.n_ctx_seq, ctx, s, alignment))
        caches.append(kv_cache(g, swa, "swa", size_swa, ctx, s, alignment))
    elif g.kv_layers:
        role = "attention" if g.hybrid else "kv"
        caches.append(kv_cache(g, g.kv_layers, role, ctx.n_ctx_seq, ctx, s, alignment))
    if g.recurrent_layers:
        caches.append(recurrent_cache(g, ctx, alignment))
    return Memory(ctx, tuple(caches), g.notes, g.n_layer)


# ------------------------------------------------------------------------- kvcalc's engine interface

NAME = "llama.cpp"
#: llama.cpp's own settings beyond the common request (seq_len → ``-c``, batch_size → ``-np``,
#: kv_dtype → ``-ctk``/``-ctv`` unless ``type_k``/``type_v`` are given).
OPTIONS: dict[str, object] = {
    "kv_unified": False,
    "type_k": None,
    "type_v": None,
    "flash_attn": "auto",
    "swa_full": False,
    "n_batch": N_BATCH,
    "n_ubatch": N_UBATCH,
}
#: kvcalc dtype names → ggml type names ("auto" = llama.cpp's default f16).
_DTYPE_ALIASES = {
    "auto": "f16",
    "fp16": "f16",
    "float16": "f16",
    "fp32": "f32",
    "float32": "f32",
    "bfloat16": "bf16",
}


def check_options(options: Mapping[str, object]) -> None:
    """Validate this engine's options where they are given (other engines' options are not ours)."""
    own = {k: v for k, v in options.items() if k in OPTIONS}
    if own:
        Settings(**_settings_kw(0, 1, "f16", own)).checked()


def _settings_kw(n_ctx: int, n_parallel: int, kv_dtype: str, options: Mapping[str, object]) -> dict[str, Any]:
    opts = {**OPTIONS, **options}
    t = _DTYPE_ALIASES.get(str(kv_dtype).strip().lower(), str(kv_dtype).strip().lower())
    if t not in GGML_TYPES and not (opts["type_k"] and opts["type_v"]):
        raise KVCalcError(
            f"kv_dtype: {kv_dtype!r} is not a llama.cpp cache type (-ctk/-ctv take {', '.join(CACHE_TYPES)})"
        )
    return {
        "n_ctx": n_ctx,
        "n_parallel": n_parallel,
        "kv_unified": opts["kv_unified"],
        "type_k": opts["type_k"] or t,
        "type_v": opts["type_v"] or t,
        "flash_attn": opts["flash_attn"],
        "swa_full": opts["swa_full"],
        "n_batch": opts["n_batch"],
        "n_ubatch": opts["n_ubatch"],
    }


def settings_of(req: object) -> Settings:
    """A kvcalc request (seq_len, batch_size, kv_dtype, tensor_parallel_size, options) as llama.cpp flags."""
    if getattr(req, "tensor_parallel_size", 1) != 1:
        raise KVCalcError(
            "tensor_parallel_size: llama.cpp splits layers, not heads; kvcalc models one device: use 1"
        )
    kw = _settings_kw(
        req.seq_len,
        req.batch_size,
        req.kv_dtype,
        getattr(req, "options", {}) or {},  # type: ignore[attr-defined]
    )
    return Settings(**kw)


def check(model: Model, req: object) -> None:
    """Refuse what llama.cpp refuses (in its words) or kvcalc does not model."""
    memory(model, settings_of(req))


def layer_bytes(model: Model, req: object) -> list[int]:
    """Bytes per decoder layer in llama.cpp's memory module (seq_len = ``-c``, batch_size = ``-np``)."""
    return memory(model, settings_of(req)).layer_bytes()


def kv_cache_bytes(model: Model, n_ctx: int = 0, **kw: object) -> int:
    """Bytes llama.cpp's memory module allocates (K + V of every cache + recurrent state)."""
    return memory(model, Settings(n_ctx=n_ctx, **kw)).bytes  # type: ignore[arg-type]
