"""One frozen dataclass per cache kind; each knows its own bytes.

Engines (see GUIDE §3-4): ``ideal`` is the theory column, ``transformers`` what a ``DynamicCache``
holds after one forward pass of ``tokens`` tokens, ``vllm`` pages (sized here per block; the block
arithmetic and hybrid page alignment live in :mod:`kvcalc.engines`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from kvcalc.core.dtypes import FP32, CacheDType
from kvcalc.errors import KVCalcError


def cdiv(a: int, b: int) -> int:
    """Ceiling division of non-negative ints."""
    return -(-a // b)


@dataclass(frozen=True)
class Precision:
    """Element formats: ``kv`` for K/V and latents, ``state`` for conv/linear states, ``ssm`` recurrent."""

    kv: CacheDType
    state: CacheDType
    ssm: CacheDType = FP32


def _per_rank(n: int, tp: int) -> int:
    """Heads one tensor-parallel rank holds: split, or replicated (1) when tp exceeds them."""
    return max(1, n // tp)


@dataclass(frozen=True)
class LayerSpec:
    """Base of all cache kinds. ``paged``: grows per token (vLLM pages); ``state``: fixed size."""

    kind: ClassVar[str] = "abstract"
    paged: ClassVar[bool] = False
    state: ClassVar[bool] = False

    def leaves(self) -> tuple[LayerSpec, ...]:
        """The elementary specs this layer is made of."""
        return (self,)


@dataclass(frozen=True)
class NoCache(LayerSpec):
    """A layer that caches nothing (MLP-only, MoE-only)."""

    kind: ClassVar[str] = "none"


@dataclass(frozen=True)
class SharedKV(LayerSpec):
    """A layer that reuses an earlier layer's K/V (Gemma 3n/4 ``num_kv_shared_layers``): 0 bytes."""

    kind: ClassVar[str] = "shared_kv"
    source_layer: int = -1


@dataclass(frozen=True)
class _Attention(LayerSpec):
    """K/V of ``kv_heads`` heads per token; ``hf_kv_heads`` when transformers stores more (Falcon)."""

    paged: ClassVar[bool] = True
    kv_heads: int = 1
    head_dim: int = 1
    v_head_dim: int = 0
    hf_kv_heads: int = 0

    @property
    def _v_dim(self) -> int:
        return self.v_head_dim or self.head_dim

    def token_bytes(self, p: Precision, tp: int = 1) -> int:
        """K and V bytes of one token on one rank."""
        kvr = _per_rank(self.kv_heads, tp)
        return kvr * (p.kv.row_bytes(self.head_dim) + p.kv.row_bytes(self._v_dim))

    def stored_token_bytes(self, p: Precision) -> int:
        """K and V bytes of one token as transformers stores them (``hf_kv_heads`` heads when set)."""
        heads = self.hf_kv_heads or self.kv_heads
        return heads * (p.kv.row_bytes(self.head_dim) + p.kv.row_bytes(self._v_dim))


@dataclass(frozen=True)
class FullAttention(_Attention):
    """Full causal attention (MHA/GQA/MQA): 2·b·L·kv·hd·B."""

    kind: ClassVar[str] = "full"


@dataclass(frozen=True)
class SlidingWindow(_Attention):
    """Sliding-window attention: each token attends to the last ``window`` tokens."""

    kind: ClassVar[str] = "sliding"
    window: int = 1


@dataclass(frozen=True)
class ChunkedAttention(_Attention):
    """Chunked local attention (Llama 4): tokens attend within aligned chunks of ``chunk`` tokens."""

    kind: ClassVar[str] = "chunked"
    chunk: int = 1


@dataclass(frozen=True)
class CrossAttention(_Attention):
    """Decoder cross-attention over ``encoder_len`` encoder positions (0: as many as the input tokens).

    Fixed-length encoders (Whisper: 1500 frames) make it constant in L.
    """

    kind: ClassVar[str] = "cross"
    encoder_len: int = 0

    def encoder_tokens(self, tokens: int) -> int:
        """Encoder positions cached after ``tokens`` decoder tokens (none before the first)."""
        return (self.encoder_len or tokens) if tokens else 0


@dataclass(frozen=True)
class MLA(LayerSpec):
    """Multi-head latent attention: one latent of kv_lora_rank + qk_rope_head_dim per token, no ×2.

    ``index_head_dim`` > 0 adds the sparse-attention (DSA) indexer key cache of DeepSeek-V3.2/GLM-5.
    Not split by tensor parallelism: every rank holds the whole latent.
    """

    kind: ClassVar[str] = "mla"
    paged: ClassVar[bool] = True
    kv_lora_rank: int = 512
    qk_rope_head_dim: int = 64
    index_head_dim: int = 0

    def token_bytes(self, p: Precision, tp: int = 1) -> int:
        """Latent (+ indexer keys) of one token, in the KV format; the same on every rank."""
        return p.kv.row_bytes(self.kv_lora_rank + self.qk_rope_head_dim) + p.kv.row_bytes(self.index_head_dim)


@dataclass(frozen=True)
class _State(LayerSpec):
    """Fixed-size recurrent state; ``vllm_ssm_fp32`` when vLLM keeps the ssm state in fp32."""

    state: ClassVar[bool] = True
    vllm_ssm_fp32: bool = False

    def _bytes(self, batch: int, p: Precision, tp: int, conv_keep: int) -> int:
        raise NotImplementedError

    def state_bytes(self, p: Precision, tp: int = 1, conv_dropped: int = 0) -> int:
        """One sequence's state on one rank; the conv state keeps ``kernel − conv_dropped`` columns
        (transformers keeps the whole kernel, vLLM one column fewer)."""
        return self._bytes(1, p, tp, conv_dropped)

    @staticmethod
    def _conv_and_state(
        batch: int,
        p: Precision,
        tp: int,
        conv: tuple[int, int],
        state: tuple[int, int, int],
    ) -> int:
        """conv = (channels, columns) in the state dtype; state = (heads, rows, row length) in ssm dtype."""
        channels, columns = conv
        heads, rows, row_len = state
        conv_bytes = (channels // tp) * p.state.row_bytes(columns)
        state_bytes = _per_rank(heads, tp) * rows * p.ssm.row_bytes(row_len) if heads else 0
        return batch * (conv_bytes + state_bytes)


@dataclass(frozen=True)
class Mamba1(_State):
    """Mamba-1 mixer: conv b·d_inner·d_conv·B + ssm b·d_inner·d_state (fp32)."""

    kind: ClassVar[str] = "mamba1"
    d_inner: int = 1
    d_conv: int = 4
    d_state: int = 16

    def _bytes(self, batch: int, p: Precision, tp: int, conv_keep: int) -> int:
        conv = (self.d_inner, self.d_conv - conv_keep)
        return self._conv_and_state(batch, p, tp, conv, (self.d_inner, 1, self.d_state))


@dataclass(frozen=True)
class Mamba2(_State):
    """Mamba-2 (SSD) mixer: conv over d_inner + 2·n_groups·d_state channels, ssm heads·head_dim·d_state."""

    kind: ClassVar[str] = "mamba2"
    n_heads: int = 1
    head_dim: int = 1
    n_groups: int = 1
    d_state: int = 16
    d_conv: int = 4
    d_inner: int = 0

    def _bytes(self, batch: int, p: Precision, tp: int, conv_keep: int) -> int:
        d_inner = self.d_inner or self.n_heads * self.head_dim
        # vLLM replicates the groups when tp does not divide them, so each rank holds one: tp in all.
        groups = tp if self.n_groups % tp else self.n_groups
        conv = (d_inner + 2 * groups * self.d_state, self.d_conv - conv_keep)
        return self._conv_and_state(batch, p, tp, conv, (self.n_heads, self.head_dim, self.d_state))


@dataclass(frozen=True)
class GatedDeltaNet(_State):
    """Gated DeltaNet (Qwen3-Next, Qwen3.5): conv over 2·nk·dk + nv·dv channels, state nv·dk·dv."""

    kind: ClassVar[str] = "gated_deltanet"
    num_k_heads: int = 1
    k_head_dim: int = 1
    num_v_heads: int = 1
    v_head_dim: int = 1
    conv_kernel: int = 4

    def _bytes(self, batch: int, p: Precision, tp: int, conv_keep: int) -> int:
        channels = 2 * self.num_k_heads * self.k_head_dim + self.num_v_heads * self.v_head_dim
        state = (self.num_v_heads, self.k_head_dim, self.v_head_dim)
        return self._conv_and_state(batch, p, tp, (channels, self.conv_kernel - conv_keep), state)


@dataclass(frozen=True)
class KimiDeltaAttention(_State):
    """Kimi Delta Attention (Kimi-Linear, Bailing hybrid): q, k, v short convs + a heads·d·d state (fp32)."""

    kind: ClassVar[str] = "kda"
    n_heads: int = 1
    head_dim: int = 1
    conv_kernel: int = 4

    def _bytes(self, batch: int, p: Precision, tp: int, conv_keep: int) -> int:
        conv = (3 * self.n_heads * self.head_dim, self.conv_kernel - conv_keep)
        return self._conv_and_state(batch, p, tp, conv, (self.n_heads, self.head_dim, self.head_dim))


@dataclass(frozen=True)
class LinearAttention(_State):
    """Lightning / linear attention (MiniMax-01): a heads·d·d state in the model dtype."""

    kind: ClassVar[str] = "linear"
    n_heads: int = 1
    head_dim: int = 1

    def _bytes(self, batch: int, p: Precision, tp: int, conv_keep: int) -> int:
        return batch * _per_rank(self.n_heads, tp) * self.head_dim * p.state.row_bytes(self.head_dim)


@dataclass(frozen=True)
class ShortConv(_State):
    """Gated short convolution (LFM2): a hidden·L_cache conv state in the model dtype."""

    kind: ClassVar[str] = "short_conv"
    channels: int = 1
    l_cache: int = 3

    def _bytes(self, batch: int, p: Precision, tp: int, conv_keep: int) -> int:
        return self._conv_and_state(batch, p, tp, (self.channels, self.l_cache - conv_keep), (0, 0, 0))


@dataclass(frozen=True)
class RWKVState(_State):
    """RWKV (v4) per layer and sequence: the attention and feed-forward token shifts (hidden values each,
    model dtype) and the WKV numerator, denominator and running max (hidden each, fp32).

    transformers ``RwkvModel.forward``: ``state = [zeros(batch, hidden_size, num_hidden_layers, dtype=
    model dtype if i <= 1 else float32) for i in range(5)]``. vLLM has no RWKV model: refused there.
    """

    kind: ClassVar[str] = "rwkv"
    hidden: int = 1

    def _bytes(self, batch: int, p: Precision, tp: int, conv_keep: int) -> int:
        if conv_keep:  # only vLLM asks for its own (conv − 1) layout
            raise KVCalcError("engine: vLLM has no RWKV model; kvcalc sizes RWKV for transformers and ideal")
        return batch * (2 * p.state.row_bytes(self.hidden) + 3 * p.ssm.row_bytes(self.hidden))


@dataclass(frozen=True)
class XLSTMState(_State):
    """xLSTM mLSTM memory per layer and sequence: matrix C (heads · qk_head_dim · v_head_dim), normaliser
    n (heads · qk_head_dim) and max m (heads), all in the model dtype.

    transformers ``xLSTMCache.__init__`` (``rnn_state[layer] = (zeros(b, heads, qk_head_dim,
    v_head_dim), zeros(b, heads, qk_head_dim), zeros(b, heads, 1))``, dtype = the embeddings' dtype).
    vLLM has no xLSTM model: refused there.
    """

    kind: ClassVar[str] = "xlstm"
    n_heads: int = 1
    qk_head_dim: int = 1
    v_head_dim: int = 1

    def _bytes(self, batch: int, p: Precision, tp: int, conv_keep: int) -> int:
        if conv_keep:  # only vLLM asks for its own (conv − 1) layout
            raise KVCalcError("engine: vLLM has no xLSTM model; kvcalc sizes it for transformers and ideal")
        per_head = p.state.row_bytes(self.qk_head_dim * self.v_head_dim) + p.state.row_bytes(self.qk_head_dim)
        return batch * self.n_heads * (per_head + p.state.row_bytes(1))


@dataclass(frozen=True)
class Parallel(LayerSpec):
    """A layer holding several caches at once (Falcon-H1 mamba + attention, Zamba2 shared blocks)."""

    kind: ClassVar[str] = "parallel"
    parts: tuple[LayerSpec, ...] = ()

    def leaves(self) -> tuple[LayerSpec, ...]:
        return tuple(leaf for x in self.parts for leaf in x.leaves())
