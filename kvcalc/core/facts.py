"""Display facts of one model: attention kind label (GQA/MQA/MHA/MLA/SWA/hybrid), KV heads, head_dim."""

from __future__ import annotations

from dataclasses import dataclass

from kvcalc.core.config import DECODER_HEAD_KEYS, HEAD_KEYS
from kvcalc.core.layers import (
    MLA,
    ChunkedAttention,
    CrossAttention,
    LayerSpec,
    SlidingWindow,
    _Attention,
    _State,
)
from kvcalc.core.model import Model

STATE_LABELS = {
    "mamba1": "Mamba",
    "mamba2": "Mamba-2",
    "gated_deltanet": "Gated DeltaNet",
    "linear": "linear attention",
    "short_conv": "short conv",
}


@dataclass(frozen=True)
class Facts:
    """What the comparison table shows about a model's cache geometry."""

    attention: str
    layers: int
    kv_heads: int | None
    head_dim: int | None
    head_dim_label: str
    sliding_window: int | None
    state_layers: int
    growing_layers: int


def _leaves(model: Model) -> list[LayerSpec]:
    return [leaf for layer in model.layers for leaf in layer.leaves()]


def query_heads(model: Model) -> int | None:
    """Query heads under any of their config names (num_attention_heads, n_head, num_heads, decoder_…)."""
    cfg = model.text_config
    for key in dict.fromkeys(HEAD_KEYS + DECODER_HEAD_KEYS):  # every name of the (decoder's) query heads
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _grouping(kv: int, heads: int | None) -> str:
    if kv == 1:
        return "MQA"
    if heads is not None and kv >= heads:
        return "MHA"
    return "GQA"


def attention_label(model: Model) -> str:
    """GQA / MQA / MHA / MLA, "+ SWA" or "+ chunked" for mixed windows, "SWA" when every layer slides,
    and "hybrid (Gated DeltaNet + GQA)" when recurrent state layers sit beside attention."""
    leaves = _leaves(model)
    attn = [x for x in leaves if isinstance(x, _Attention)]
    states = list(dict.fromkeys(STATE_LABELS[x.kind] for x in leaves if isinstance(x, _State)))
    if any(isinstance(x, MLA) for x in leaves):
        base = "MLA"
    elif attn:
        base = _grouping(attn[0].kv_heads, query_heads(model))
        sliding = [x for x in attn if isinstance(x, SlidingWindow)]
        if len(sliding) == len(attn):
            base = "SWA" if base == "GQA" else f"SWA ({base})"
        elif sliding:
            base += " + SWA"
        elif any(isinstance(x, ChunkedAttention) for x in attn):
            base += " + chunked"
    else:
        base = ""
    if states:
        return f"hybrid ({' + '.join([*states, base] if base else states)})" if base else " + ".join(states)
    return base or "no cache"


def facts(model: Model) -> Facts:
    """Table facts for one model."""
    leaves = _leaves(model)
    attn = [x for x in leaves if isinstance(x, _Attention)]
    mla = next((x for x in leaves if isinstance(x, MLA)), None)
    kv: int | None = None
    hd: int | None = None
    label = "—"
    if mla is not None:
        kv, hd = 1, mla.kv_lora_rank + mla.qk_rope_head_dim
        label = f"{hd} ({mla.kv_lora_rank}+{mla.qk_rope_head_dim})"
        if mla.index_head_dim:
            label += f" + {mla.index_head_dim} idx"
    elif attn:
        first = next((x for x in attn if not isinstance(x, SlidingWindow)), attn[0])
        kv, hd = first.kv_heads, first.head_dim
        label = f"{hd}" if not first.v_head_dim or first.v_head_dim == hd else f"{hd}/{first.v_head_dim}"
    windows = [x.window for x in attn if isinstance(x, SlidingWindow)]
    return Facts(
        attention=attention_label(model),
        layers=len(model.layers),
        kv_heads=kv,
        head_dim=hd,
        head_dim_label=label,
        sliding_window=min(windows) if windows else None,
        state_layers=sum(1 for layer in model.layers if any(isinstance(x, _State) for x in layer.leaves())),
        growing_layers=sum(
            1
            for layer in model.layers
            if any(
                x.paged and not isinstance(x, SlidingWindow | ChunkedAttention | CrossAttention)
                for x in layer.leaves()
            )
        ),
    )
