"""Measure the cache Hugging Face transformers really allocates (needs the ``measure`` extra).

The model is built from a config dict on the ``meta`` device, one forward pass with
``use_cache=True`` is run on ``seq_len`` tokens (the prefill), optionally followed by ``decode_steps``
one-token forward passes that feed the returned cache back (as ``generate()`` does), and every tensor
the cache then holds is summed (``numel * element_size``, each distinct tensor once). Meta tensors
have shapes and dtypes but no storage, so a 671B-parameter config costs the same as a toy one.

Stand-ins keep the meta forward fast and data-independent; none of them touches the cache:

* attention: a shape-only function (output ``[b, q_len, heads, v_head_dim]``) registered with
  ``AttentionInterface``, and a shape-only mask registered with ``AttentionMaskInterface``
  (models with their own attention dispatch fall back to eager, then sdpa, still on meta);
* fused MoE experts: a shape-preserving no-op registered with ``ALL_EXPERTS_FUNCTIONS`` (routing is
  data-dependent, which meta tensors cannot do);
* Mamba-1 selective scan (Mamba, FalconMamba, Jamba, Zamba: ``mamba_selective_scan`` of their modeling
  files, a Python loop over every token without the CUDA kernels): on meta it scans the last token only
  and repeats that output along the sequence. Its final state (the cached ``recurrent_states``) has the
  same shape and dtype after one step as after L (``[b, intermediate, d_state]``, fp32 from the first
  step on); the conv state is cached before the scan from the whole sequence, untouched.

``method="exact"`` runs a real CPU forward with eager attention and real experts instead. It is what
the stand-ins are checked against (on tiny configs, see tests/test_transformers_validation.py) and
the fallback for small models that need real data (``.item()`` on a meta tensor).

Which model runs: the causal LM of ``config.get_text_config(decoder=True)`` (multimodal wrappers
are measured through their language model), or, for encoder-decoder configs, the seq2seq model
whose ``generate()`` builds an ``EncoderDecoderCache`` (decoder self-attention + cross-attention).

torch and transformers are imported lazily, inside functions: ``import kvcalc.measure.run`` stays
stdlib-only.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import signal
import threading
import time
import warnings
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

from kvcalc.core.config import from_mamba_ssm, is_mamba_ssm
from kvcalc.errors import KVCalcError

__all__ = [
    "CacheMeasurement",
    "LayerMeasurement",
    "TensorInfo",
    "causal_lm_model_types",
    "default_config_dict",
    "measure_cache",
    "measure_cache_from_transformers_defaults",
    "summarize_kinds",
]

STANDIN = "kvcalc_shape"  # name of the shape-only attention / mask / experts implementations
SHORT_DTYPES = {
    "bf16": "bf16",
    "bfloat16": "bf16",
    "fp16": "fp16",
    "float16": "fp16",
    "half": "fp16",
    "fp32": "fp32",
    "float32": "fp32",
    "float": "fp32",
}
_TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
# Output attributes under which models return their cache, first present wins.
_CACHE_OUTPUT_ATTRS = ("past_key_values", "cache_params", "state", "mems")
# Config keys that change weights but never the cache (rules §13); dropped before building.
_IGNORED_CONFIG_KEYS = ("quantization_config", "auto_map")
# Error texts that mean "this model needs real data", i.e. only an exact CPU run can measure it.
_NEEDS_DATA = ("meta tensor", ".item()", "nonzero", "data-dependent", "Cannot copy out of meta")
EXACT_PARAM_LIMIT = 60_000_000  # "auto" falls back to a real CPU forward only below this size
_MODEL_CACHE_SIZE = 4
Settings = list[tuple[int, int, str]]  # [(seq_len, batch_size, dtype)]


@dataclass(frozen=True)
class TensorInfo:
    """One tensor held by the cache: where it sits, its shape, dtype and bytes."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    nbytes: int


@dataclass(frozen=True)
class LayerMeasurement:
    """The cache state of one decoder layer (``kind`` = cache-layer class name(s))."""

    index: int
    kind: str
    bytes: int
    tensors: tuple[TensorInfo, ...] = ()


@dataclass(frozen=True)
class CacheMeasurement:
    """What one forward pass left in the cache: per-layer bytes, total and int64 bookkeeping."""

    model_type: str
    model_class: str
    cache_class: str
    seq_len: int
    batch_size: int
    dtype: str
    layers: tuple[LayerMeasurement, ...]
    total: int  # floating-point tensors: the KV cache / recurrent state (incl. extra_bytes)
    aux_bytes: int  # integer tensors (``_sliding_window_tensor`` scalars, ...), not in total
    extra_bytes: int = 0  # tensors not attributable to one layer (e.g. RWKV's stacked state)
    storage_bytes: int = 0  # floating-point bytes actually pinned: a view keeps its whole base alive
    method: str = "meta"  # "meta" (stand-ins on the meta device) or "exact" (real CPU forward)
    attn_implementation: str = STANDIN
    encoder_len: int | None = None  # encoder-decoder models: encoder positions cross-attended
    beyond_position_table: bool = False  # tokens exceeds a learned absolute position table
    decode_steps: int = 0  # one-token forward passes run after the prefill of seq_len tokens

    @property
    def tokens(self) -> int:
        """Tokens the cache has seen: the prompt plus one per decode step."""
        return self.seq_len + self.decode_steps

    @property
    def layer_bytes(self) -> list[int]:
        """Bytes per layer, in layer order."""
        return [layer.bytes for layer in self.layers]

    @property
    def layer_kinds(self) -> list[str]:
        """Cache-layer class name per layer, in layer order."""
        return [layer.kind for layer in self.layers]

    def kinds_summary(self) -> str:
        """E.g. ``"36× LinearAttentionLayer + 12× DynamicLayer"``."""
        return summarize_kinds(self.layer_kinds)

    def to_dict(self, tensors: bool = False) -> dict:
        """JSON-ready dict; per-tensor detail only when ``tensors``."""
        data = asdict(self)
        if not tensors:
            for layer in data["layers"]:
                layer.pop("tensors")
        return data


def summarize_kinds(kinds: list[str]) -> str:
    """Count each kind, in first-seen order: ``"16× DynamicSlidingWindowLayer + 4× DynamicLayer"``."""
    return " + ".join(f"{n}× {kind}" for kind, n in Counter(kinds).items()) or "no layers"


# --------------------------------------------------------------------------------------------
# lazy imports and stand-ins


def _import_backend() -> tuple[Any, Any]:
    """Import torch and transformers, or raise a KVCalcError saying how to install them."""
    try:
        import torch
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise KVCalcError(
            "measuring transformers caches needs torch and transformers: pip install kvcalc[measure]"
        ) from exc
    _register_standins(torch)
    return torch, transformers


_REGISTERED = False


def _register_standins(torch: Any) -> None:
    """Register the shape-only attention, mask and experts functions (once per process)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from transformers.integrations.moe import ALL_EXPERTS_FUNCTIONS
    from transformers.masking_utils import AttentionMaskInterface
    from transformers.modeling_utils import AttentionInterface

    def shape_attention(module: Any, query: Any, key: Any, value: Any, *a: Any, **k: Any) -> tuple[Any, None]:
        # query [b, heads, q_len, d]; value [b, kv_heads, kv_len, d_v] -> output [b, q_len, heads, d_v]
        b, heads, q_len = query.shape[:3]
        return query.new_empty(b, q_len, heads, value.shape[-1]), None

    def shape_mask(batch_size: int, q_length: int, kv_length: int, *a: Any, **k: Any) -> Any:
        # an additive (eager-style) mask of the right shape; its values are never read on meta
        dtype = k.get("dtype") or torch.float32
        return torch.zeros((batch_size, 1, q_length, kv_length), dtype=dtype, device=k.get("device", "meta"))

    def noop_experts(self: Any, hidden_states: Any, *a: Any, **k: Any) -> Any:
        return torch.zeros_like(hidden_states)

    AttentionInterface.register(STANDIN, shape_attention)
    AttentionMaskInterface.register(STANDIN, shape_mask)
    ALL_EXPERTS_FUNCTIONS.register(STANDIN, noop_experts)
    _REGISTERED = True


@contextlib.contextmanager
def quiet(transformers: Any) -> Iterator[None]:
    """Silence transformers' logging and Python warnings while building and running models."""
    logging = transformers.utils.logging
    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.set_verbosity(level)


class MeasureTimeout(Exception):
    """A measurement ran longer than its time budget."""


@contextlib.contextmanager
def _time_limit(seconds: float | None) -> Iterator[None]:
    """Raise MeasureTimeout after ``seconds`` (main thread only; otherwise no limit).

    An interval timer already running (e.g. pytest-timeout's) is resumed afterwards with its remaining time.
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise MeasureTimeout(f"measurement took longer than {seconds:g} s")

    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, outer_delay) if outer_delay else seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay:
            remaining = max(outer_delay - (time.monotonic() - started), 0.001)
            signal.setitimer(signal.ITIMER_REAL, remaining, outer_interval)


def short_dtype(dtype: str) -> str:
    """The short dtype name ("bf16", "fp16", "fp32") for any accepted spelling, else KVCalcError."""
    try:
        return SHORT_DTYPES[dtype.lower()]
    except (KeyError, AttributeError):
        raise KVCalcError(f"dtype {dtype!r} is not one of {sorted(SHORT_DTYPES)}") from None


# --------------------------------------------------------------------------------------------
# config dict -> transformers config -> model class


def config_object(config: dict) -> Any:
    """The transformers config for a config.json dict (``architectures`` fallback for remote code)."""
    _, transformers = _import_backend()
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if is_mamba_ssm(config):  # mamba_ssm's own format: the config transformers' conversion script writes
        config = from_mamba_ssm(config)
    data = {k: _floats(v) for k, v in config.items() if k not in _IGNORED_CONFIG_KEYS}
    model_type = data.get("model_type")
    with quiet(transformers):
        if model_type in CONFIG_MAPPING:
            return CONFIG_MAPPING[model_type].from_dict(data)
        # remote-code model types (kimi_k2 ...): use the transformers class named in `architectures`
        for arch in data.get("architectures") or ():
            config_class = getattr(getattr(transformers, arch, None), "config_class", None)
            if config_class is not None:
                data["model_type"] = config_class.model_type
                return config_class.from_dict(data)
    raise KVCalcError(
        f"model_type {model_type!r} is not known to transformers {transformers.__version__} "
        f"and names no transformers class in architectures={data.get('architectures')}"
    )


def _floats(value: Any) -> Any:
    """Deep copy, turning strict-JSON stand-ins for inf/nan ("Infinity", "NaN") back into floats."""
    if isinstance(value, dict):
        return {k: _floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_floats(v) for v in value]
    if value in ("Infinity", "-Infinity", "NaN"):
        return float(value.lower().replace("infinity", "inf"))
    return value


@dataclass(frozen=True)
class _Plan:
    model_class: Any
    config: Any  # the config the model class is built from
    inputs: str  # "causal" | "seq2seq" | "speech_seq2seq"


def _plan(cfg: Any, architectures: list[str] | None = None) -> _Plan:
    """Which model class to run for cfg, and with which inputs."""
    _, transformers = _import_backend()
    from transformers.models.auto import modeling_auto as auto

    if getattr(cfg, "is_encoder_decoder", False):
        if type(cfg) in auto.MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING:
            cls = auto.MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING[type(cfg)]
            return _Plan(cls, cfg, "speech_seq2seq")
        if type(cfg) in auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING:
            return _Plan(auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING[type(cfg)], cfg, "seq2seq")
    text = cfg.get_text_config(decoder=True)
    for candidate in (text, cfg):
        if type(candidate) in auto.MODEL_FOR_CAUSAL_LM_MAPPING:
            return _Plan(auto.MODEL_FOR_CAUSAL_LM_MAPPING[type(candidate)], candidate, "causal")
    if type(cfg) in auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING:
        return _Plan(auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING[type(cfg)], cfg, "causal")
    for arch in architectures or ():
        cls = getattr(transformers, arch, None)
        if cls is not None and isinstance(cfg, cls.config_class):
            return _Plan(cls, cfg, "causal")
    raise KVCalcError(f"transformers has no causal-LM class for model_type {cfg.model_type!r}")


_IDENTITIES: dict[str, str] = {}


def _identity(config: dict) -> str:
    """What actually runs: model class + inputs + its full config (so gemma3 and gemma3_text share runs).

    Falls back to the config dict itself when transformers cannot read it (the run reports why).
    """
    raw = json.dumps(_floats(config), sort_keys=True, default=str)
    if raw not in _IDENTITIES:
        try:
            plan = _plan(config_object(config), config.get("architectures"))
            cls = plan.model_class
            ident = (
                f"{cls.__module__}.{cls.__name__}/{plan.inputs}/{plan.config.to_json_string(use_diff=False)}"
            )
        except Exception:  # unreadable config: key by the dict
            ident = raw
        _IDENTITIES[raw] = ident
    return _IDENTITIES[raw]


_MODELS: OrderedDict[tuple, tuple[Any, _Plan]] = OrderedDict()


def _build(config: dict, dtype: str, device: str, attn: str) -> tuple[Any, _Plan]:
    """(model, plan) for config on device ("meta"/"cpu"); the last few models are reused."""
    key = (_identity(config), dtype, device, attn)
    if key in _MODELS:
        _MODELS.move_to_end(key)
        return _MODELS[key]
    torch, transformers = _import_backend()
    plan = _plan(config_object(config), config.get("architectures"))
    kwargs: dict[str, Any] = {"dtype": getattr(torch, _TORCH_DTYPES[dtype]), "attn_implementation": attn}
    if device == "meta" and plan.model_class._can_set_experts_implementation():
        kwargs["experts_implementation"] = STANDIN
    with quiet(transformers), torch.device(device):
        model = plan.model_class._from_config(copy.deepcopy(plan.config), **kwargs)
    model.eval()
    _MODELS[key] = (model, plan)
    while len(_MODELS) > _MODEL_CACHE_SIZE:
        _MODELS.popitem(last=False)
    return model, plan


def count_parameters(config: dict) -> int:
    """``sum(p.numel() for p in model.parameters())`` of the model class :func:`measure_cache` runs
    (causal LM of the text config, or the seq2seq / speech model), built on the meta device (tied
    weights once; a model a measurement already built is reused: dtype and attention do not change
    the count). Models whose attention dispatch has no stand-in (Falcon) are built with eager, then sdpa.
    """
    ident = _identity(config)
    built = [model for (i, _, device, _), (model, _) in _MODELS.items() if i == ident and device == "meta"]
    if built:
        return sum(p.numel() for p in built[-1].parameters())
    for attn in (STANDIN, "eager"):
        try:
            model, _ = _build(config, "bf16", "meta", attn)
            break
        except Exception as exc:  # model code raises anything
            if not _attention_related(exc):
                raise
    else:
        model, _ = _build(config, "bf16", "meta", "sdpa")
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------
# cache walker


def _is_cache_object(obj: Any) -> bool:
    """True for transformers objects (caches, cache layers) the walker should descend into."""
    return (
        hasattr(obj, "__dict__")
        and not isinstance(obj, type)
        and type(obj).__module__.startswith("transformers")
        and "Config" not in type(obj).__name__
    )


def _tensors_in(obj: Any, name: str, torch: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    """Yield (name, tensor) for every tensor reachable from obj through attributes and containers."""
    if depth > 6 or obj is None:
        return
    if isinstance(obj, torch.Tensor):
        yield name, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors_in(v, f"{name}[{k}]", torch, depth + 1)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors_in(v, f"{name}[{i}]", torch, depth + 1)
    elif _is_cache_object(obj):
        for attr, v in vars(obj).items():
            yield from _tensors_in(v, f"{name}.{attr}" if name else attr, torch, depth + 1)


def _sub_caches(cache: Any) -> list[tuple[str, Any]]:
    """[(tag, cache)]: the cache itself, or its parts for EncoderDecoderCache-like wrappers."""
    if isinstance(getattr(cache, "layers", None), list):
        return [("", cache)]
    parts = [
        (attr.removesuffix("_attention_cache").removesuffix("_cache"), v)
        for attr, v in vars(cache).items()
        if _is_cache_object(v) and isinstance(getattr(v, "layers", None), list)
    ]
    return parts or [("", cache)]


Part = tuple[str, list[tuple[str, Any]]]  # (cache-part name, [(tensor name, tensor)])


def _walk_cache(cache: Any, torch: Any) -> tuple[list[list[Part]], list[tuple[str, Any]]]:
    """Split the cache's tensors into per-layer parts and unattributed extras."""
    per_layer: list[list[Part]] = []
    extras: list[tuple[str, Any]] = []

    def add(i: int, part: str, found: list[tuple[str, Any]]) -> None:
        while len(per_layer) <= i:
            per_layer.append([])
        per_layer[i].append((part, found))

    if isinstance(cache, (list, tuple)):
        if all(isinstance(item, (list, tuple)) for item in cache):  # legacy ((k, v), ...) per layer
            for i, item in enumerate(cache):
                add(i, "tuple", list(_tensors_in(item, f"[{i}]", torch)))
        else:  # e.g. RWKV: a few tensors stacking every layer's state
            extras.extend(_tensors_in(cache, "", torch))
        return per_layer, extras

    for tag, sub in _sub_caches(cache):
        prefix = f"{tag}:" if tag else ""
        layers = getattr(sub, "layers", None)
        layers = layers if isinstance(layers, list) else []
        for i, layer in enumerate(layers):
            add(i, prefix + type(layer).__name__, list(_tensors_in(layer, f"{prefix}layers[{i}]", torch)))
        for attr, value in vars(sub).items():
            if attr == "layers":
                continue
            per_layer_list = (
                isinstance(value, list)
                and value
                and (
                    not all(isinstance(v, torch.Tensor) for v in value)  # MiniMax `linear_cache` ([] gaps)
                    or (layers and len(value) <= len(layers))  # one tensor per layer
                )
            )
            if per_layer_list:
                for i, item in enumerate(value):
                    found = list(_tensors_in(item, f"{prefix}{attr}[{i}]", torch))
                    if found:
                        add(i, prefix + attr, found)
            else:
                extras.extend(_tensors_in(value, f"{prefix}{attr}", torch))
    return per_layer, extras


def _storage_bytes(cache: Any, torch: Any) -> int:
    """Floating-point bytes the cache keeps alive: each distinct base tensor once (views count their base).

    E.g. right after a long prefill a sliding layer's keys are a ``window - 1`` view of all L tokens.
    """
    per_layer, extras = _walk_cache(cache, torch)
    bases: dict[int, Any] = {}
    for _, t in [item for parts in per_layer for _, items in parts for item in items] + extras:
        while t._base is not None:
            t = t._base
        if t.is_floating_point():
            bases[id(t)] = t
    return sum(t.numel() * t.element_size() for t in bases.values())


def _summarise_cache(cache: Any, torch: Any) -> tuple[list[LayerMeasurement], int, int, int]:
    """(layers, total, aux_bytes, extra_bytes) for a cache; each distinct tensor counted once.

    Floating-point tensors make the total; integer ones (``_sliding_window_tensor``) go to aux.
    A layer's kind names the cache parts holding its tensors (all its parts if none does).
    """
    per_layer, extras = _walk_cache(cache, torch)
    seen: set[int] = set()
    aux = 0

    def account(items: list[tuple[str, Any]]) -> tuple[int, list[TensorInfo]]:
        nonlocal aux
        total, infos = 0, []
        for name, t in items:
            if id(t) in seen:
                continue
            seen.add(id(t))
            nbytes = t.numel() * t.element_size()
            infos.append(TensorInfo(name, tuple(t.shape), str(t.dtype).removeprefix("torch."), nbytes))
            if t.is_floating_point() or t.is_complex():
                total += nbytes
            else:
                aux += nbytes
        return total, infos

    layers = []
    for i, parts in enumerate(per_layer):
        nbytes, infos, holding = 0, [], []
        for part, items in parts:
            part_bytes, part_infos = account(items)
            nbytes += part_bytes
            infos.extend(part_infos)
            if any(info.dtype.startswith(("float", "bfloat", "complex")) for info in part_infos):
                holding.append(part)
        kind = "+".join(holding or [part for part, _ in parts]) or "none"
        layers.append(LayerMeasurement(i, kind, nbytes, tuple(infos)))
    extra, _ = account(extras)
    return layers, sum(layer.bytes for layer in layers) + extra, aux, extra


# --------------------------------------------------------------------------------------------
# measuring


def _find_cache(output: Any) -> tuple[str, Any]:
    """(output attribute, cache): the attribute is also the keyword that feeds the cache back."""
    for attr in _CACHE_OUTPUT_ATTRS:
        value = getattr(output, attr, None)
        if value is not None:
            return attr, value
    raise KVCalcError("the model returned no cache (no past_key_values / cache_params / state)")


_NOT_TEXT = re.compile(r"vision|visual|image|img|patch|audio|speech|vit\b")


def _position_table_exceeded(model: Any, seq_len: int, torch: Any) -> bool:
    """True if the text model has a learned absolute position table shorter than seq_len.

    Vision / audio towers' patch-position tables are ignored: text tokens never index them.
    """
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1].lower()
        is_table = isinstance(module, torch.nn.Embedding) and ("pos" in leaf or leaf == "wpe")
        is_text = is_table and not _NOT_TEXT.search(name.lower())
        if is_text and seq_len + getattr(module, "offset", 0) > module.num_embeddings:
            return True
    return False


def _inputs(
    plan: _Plan, model: Any, seq_len: int, batch: int, enc_len: int | None, device: str, torch: Any
) -> tuple[dict[str, Any], int | None]:
    """Model inputs for one prefill of seq_len decoder tokens; returns (kwargs, encoder_len)."""
    ids = torch.zeros((batch, seq_len), dtype=torch.long, device=device)
    if plan.inputs == "causal":
        return {"input_ids": ids}, None
    if plan.inputs == "seq2seq":
        enc_len = enc_len or seq_len
        enc = torch.zeros((batch, enc_len), dtype=torch.long, device=device)
        return {"input_ids": enc, "decoder_input_ids": ids}, enc_len
    cfg = plan.config
    mel_bins, max_source = getattr(cfg, "num_mel_bins", None), getattr(cfg, "max_source_positions", None)
    if model.main_input_name != "input_features" or not mel_bins or not max_source:
        raise KVCalcError(f"speech model {cfg.model_type!r}: don't know how to feed its encoder")
    enc_len = enc_len or max_source  # Whisper: 3000 mel frames (30 s), conv stride 2 -> 1500 positions
    features = torch.zeros((batch, mel_bins, 2 * enc_len), dtype=model.dtype, device=device)
    return {"input_features": features, "decoder_input_ids": ids}, enc_len


def _decode_inputs(plan: _Plan, output: Any, batch: int, device: str, torch: Any) -> dict[str, Any]:
    """Inputs of one decode step: one new token per sequence (encoder-decoder models reuse the encoder
    output of the prefill, as ``generate()`` does; the cross-attention cache is not recomputed)."""
    ids = torch.zeros((batch, 1), dtype=torch.long, device=device)
    if plan.inputs == "causal":
        return {"input_ids": ids}
    return {"encoder_outputs": (output.encoder_last_hidden_state,), "decoder_input_ids": ids}


_SCAN_MODULES = (
    "transformers.models.mamba.modeling_mamba",
    "transformers.models.falcon_mamba.modeling_falcon_mamba",
    "transformers.models.jamba.modeling_jamba",
    "transformers.models.zamba.modeling_zamba",
)


def _last_token_scan(scan: Callable[..., Any]) -> Callable[..., Any]:
    """``mamba_selective_scan`` that, on meta tensors, scans only the last token (see the module doc)."""

    def shape_scan(hidden_states: Any, dt: Any, A: Any, B: Any, C: Any, *args: Any, **kwargs: Any) -> Any:
        seq_len = hidden_states.shape[-1]
        if hidden_states.device.type != "meta" or seq_len == 1:
            return scan(hidden_states, dt, A, B, C, *args, **kwargs)
        # every sequence-bearing input has the sequence last: [b, intermediate | d_state, L]
        last = [t[..., -1:] for t in (hidden_states, dt, B, C)]
        if kwargs.get("z") is not None:
            kwargs["z"] = kwargs["z"][..., -1:]
        result = scan(last[0], last[1], A, last[2], last[3], *args, **kwargs)
        if isinstance(result, tuple):
            out, state = result
            return out.expand(*out.shape[:-1], seq_len), state
        return result.expand(*result.shape[:-1], seq_len)

    shape_scan.kvcalc_wraps = scan  # type: ignore[attr-defined]
    return shape_scan


@contextlib.contextmanager
def _fast_scans() -> Iterator[None]:
    """Swap in :func:`_last_token_scan` in every loaded Mamba-1 modeling module, restore afterwards."""
    import sys

    patched = []
    for name in _SCAN_MODULES:
        module = sys.modules.get(name)
        scan = getattr(module, "mamba_selective_scan", None)
        if scan is not None and not hasattr(scan, "kvcalc_wraps"):
            module.mamba_selective_scan = _last_token_scan(scan)
            patched.append((module, scan))
    try:
        yield
    finally:
        for module, scan in patched:
            module.mamba_selective_scan = scan


def _run(
    config: dict,
    seq_len: int,
    batch: int,
    dtype: str,
    device: str,
    attn: str,
    enc_len: int | None,
    decode_steps: int = 0,
) -> list[CacheMeasurement]:
    """Prefill seq_len tokens, then decode_steps one-token steps feeding the cache back; the cache is
    measured after the prefill and after every step (``[prefill, step 1, ...]``)."""
    torch, transformers = _import_backend()
    model, plan = _build(config, dtype, device, attn)
    kwargs, enc_len = _inputs(plan, model, seq_len, batch, enc_len, device, torch)
    scans = _fast_scans() if device == "meta" else contextlib.nullcontext()
    with quiet(transformers), torch.no_grad(), scans:
        output = model(**kwargs, use_cache=True)
        attr, cache = _find_cache(output)
        results = [_describe(model, plan, cache, seq_len, 0, batch, dtype, device, attn, enc_len)]
        for step in range(1, decode_steps + 1):
            step_inputs = _decode_inputs(plan, output, batch, device, torch)
            output = model(**step_inputs, **{attr: cache}, use_cache=True)
            attr, cache = _find_cache(output)
            results.append(_describe(model, plan, cache, seq_len, step, batch, dtype, device, attn, enc_len))
    return results


def _describe(
    model: Any,
    plan: _Plan,
    cache: Any,
    seq_len: int,
    step: int,
    batch: int,
    dtype: str,
    device: str,
    attn: str,
    enc_len: int | None,
) -> CacheMeasurement:
    """The CacheMeasurement of cache after the prefill of seq_len tokens and `step` decode steps."""
    torch, _ = _import_backend()
    layers, total, aux, extra = _summarise_cache(cache, torch)
    return CacheMeasurement(
        model_type=str(plan.config.model_type),
        model_class=type(model).__name__,
        cache_class=type(cache).__name__,
        seq_len=seq_len,
        batch_size=batch,
        dtype=dtype,
        layers=tuple(layers),
        total=total,
        aux_bytes=aux,
        extra_bytes=extra,
        storage_bytes=_storage_bytes(cache, torch),
        method="meta" if device == "meta" else "exact",
        attn_implementation=attn,
        encoder_len=enc_len,
        beyond_position_table=_position_table_exceeded(model, seq_len + step, torch),
        decode_steps=step,
    )


def measure_cache(
    config: dict,
    seq_len: int,
    batch_size: int = 1,
    dtype: str = "bf16",
    *,
    method: str = "auto",
    encoder_len: int | None = None,
    timeout: float | None = None,
    decode_steps: int = 0,
) -> CacheMeasurement:
    """Run one forward pass of ``seq_len`` tokens and measure the cache transformers returns.

    ``decode_steps``: one-token forward passes run after that prefill with the returned cache fed back
    (the cache then has seen ``seq_len + decode_steps`` tokens); the measurement is taken after the last.

    ``method``: "meta" (stand-ins on the meta device; models with their own attention dispatch
    fall back to eager, then sdpa, still on meta), "exact" (a real CPU forward with eager attention —
    only for small configs) or "auto" (meta, then exact when the model needs real data and has at
    most EXACT_PARAM_LIMIT parameters). ``encoder_len``: encoder positions of encoder-decoder models
    (default: seq_len for text, ``max_source_positions`` for Whisper-like speech models).
    ``timeout`` (seconds, main thread only) bounds the whole measurement. Results are memoised per
    (config, seq_len, batch_size, dtype, method, encoder_len, decode_steps) for the life of the process;
    a run with decode steps also memoises the prefill and every earlier step (they cost nothing more).
    """
    if not isinstance(config, dict):
        raise KVCalcError("config must be a config.json dict")
    if seq_len < 1 or batch_size < 1:
        raise KVCalcError("seq_len and batch_size must be >= 1")
    if not isinstance(decode_steps, int) or decode_steps < 0:
        raise KVCalcError(f"decode_steps must be an integer >= 0, not {decode_steps!r}")
    dtype = short_dtype(dtype)
    if method not in ("auto", "meta", "exact"):
        raise KVCalcError(f"method must be auto, meta or exact, not {method!r}")
    _import_backend()
    key = (_identity(config), seq_len, batch_size, dtype, method, encoder_len)
    if (*key, decode_steps) not in _MEASURED:
        steps = _measure(config, seq_len, batch_size, dtype, method, encoder_len, timeout, decode_steps)
        for step, measured in enumerate(steps):
            _MEASURED[(*key, step)] = measured
        while len(_MEASURED) > _MEASURED_SIZE:
            _MEASURED.pop(next(iter(_MEASURED)))
    return _MEASURED[(*key, decode_steps)]


_MEASURED: dict[tuple, CacheMeasurement] = {}
_MEASURED_SIZE = 4096


def _measure(
    config: dict,
    seq_len: int,
    batch_size: int,
    dtype: str,
    method: str,
    encoder_len: int | None,
    timeout: float | None,
    decode_steps: int = 0,
) -> list[CacheMeasurement]:
    """measure_cache without the memo: the measurements after the prefill and after each decode step."""
    _import_backend()
    attempts = [("meta", a) for a in (STANDIN, "eager", "sdpa")] if method != "exact" else []
    errors: list[tuple[str, Exception]] = []
    with _time_limit(timeout):
        try:
            for device, attn in attempts:
                try:
                    return _run(config, seq_len, batch_size, dtype, device, attn, encoder_len, decode_steps)
                except (KVCalcError, MeasureTimeout):
                    raise
                except Exception as exc:  # model code raises anything
                    errors.append((f"meta/{attn}", exc))
                    if not _attention_related(exc):
                        break
            first = errors[0][1] if errors else None
            if method == "exact" or (_needs_data(first) and _small_enough(config)):
                return _run(config, seq_len, batch_size, dtype, "cpu", "eager", encoder_len, decode_steps)
        except MeasureTimeout as exc:
            raise KVCalcError(f"transformers {config.get('model_type')!r}: {exc}") from exc
        except KVCalcError:
            raise
        except Exception as exc:
            errors.append(("cpu/eager", exc))
    # the most telling error: the first that is not about our stand-in's name
    telling = [(where, e) for where, e in errors if STANDIN not in str(e)] or errors
    where, exc = telling[0]
    raise KVCalcError(
        f"transformers could not run {config.get('model_type')!r} ({where}): {type(exc).__name__}: {exc}"
    ) from exc


def _attention_related(exc: Exception) -> bool:
    """Whether another attention implementation might get past exc."""
    text = f"{type(exc).__name__}: {exc}"
    return STANDIN in text or "attn" in text or "attention" in text or "mask" in text or "broadcast" in text


def _needs_data(exc: Exception | None) -> bool:
    return exc is not None and any(s in str(exc) for s in _NEEDS_DATA)


def _small_enough(config: dict) -> bool:
    """Whether an exact CPU run is affordable (at most EXACT_PARAM_LIMIT parameters)."""
    try:
        model, _ = _build(config, "fp32", "meta", "eager")
    except Exception:
        return False
    return sum(p.numel() for p in model.parameters()) <= EXACT_PARAM_LIMIT


# --------------------------------------------------------------------------------------------
# transformers' own model types and their config-class defaults


def causal_lm_model_types() -> list[str]:
    """Model types with a causal-LM or image-text-to-text class in transformers, sorted."""
    _import_backend()
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
    )

    return sorted(set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES) | set(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES))


def default_config_dict(model_type: str) -> dict:
    """``config.to_dict()`` of transformers' config class for model_type, at its defaults."""
    _, transformers = _import_backend()
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if model_type not in CONFIG_MAPPING:
        raise KVCalcError(f"model_type {model_type!r} has no config class in transformers")
    try:
        with quiet(transformers):
            data = CONFIG_MAPPING[model_type]().to_dict()
    except Exception as exc:  # invalid class defaults raise validation errors
        raise KVCalcError(f"{model_type!r}: its config class defaults are invalid: {exc}") from exc
    return json.loads(json.dumps(data, default=str))


def measure_cache_from_transformers_defaults(
    model_type: str, seq_len: int, batch_size: int = 1, dtype: str = "bf16", **kwargs: Any
) -> CacheMeasurement:
    """Measure the model built from transformers' config-class defaults for model_type."""
    return measure_cache(default_config_dict(model_type), seq_len, batch_size, dtype, **kwargs)


# --------------------------------------------------------------------------------------------
# surveys (python -m kvcalc.measure.run): every config in a directory / every transformers model type

_KEY_HINTS = re.compile(
    r"head|layer|window|chunk|lora|kv|mamba|ssm|conv|state|linear|expand|group|shared|multi_query|new_decoder"
    r"|position|attn|attention|d_model|hidden_size|n_embd|rank|pattern|period|offset|interval|is_encoder_decoder"
    r"|is_decoder|n_head|d_kv"
)
_KEY_SKIPS = re.compile(
    r"dropout|initializer|bias|(^|_)act(_|$)|norm|eps|(^|_)ids?$|rope_scaling|rope_parameters|multiplier|freeze"
    r"|output_|layerdrop|softcapping|temperature"
)


def relevant_config_keys(config: dict) -> dict:
    """The cache-relevant keys of the config the model class is built from (layer_types summarised)."""
    try:
        plan = _plan(config_object(config), config.get("architectures"))
        data = plan.config.to_dict()
    except Exception:
        data = config
    out: dict[str, Any] = {}
    for key, value in sorted(data.items()):
        if not _KEY_HINTS.search(key) or _KEY_SKIPS.search(key):
            continue
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            out[key] = summarize_kinds(value)
        elif isinstance(value, list) and len(value) > 8:
            out[key] = f"list[{len(value)}]: {value[:8]}..."
        elif value is None or isinstance(value, (int, float, str, bool, list)):
            out[key] = value
    return out


def setting_key(seq_len: int, batch: int, dtype: str) -> str:
    """How measurements are keyed in the survey JSON, e.g. ``300/2/bf16``."""
    return f"{seq_len}/{batch}/{short_dtype(dtype)}"


def survey_config(config: dict, settings: Settings, timeout: float | None = None) -> dict:
    """Measure one config at every setting; JSON-ready, errors and CPU seconds recorded per setting.

    When the first setting fails the rest are not tried (the reason is the same: no cache, invalid
    defaults, missing inputs); later failures (position tables, timeouts) are setting-specific.
    """
    entry: dict[str, Any] = {"measurements": {}, "errors": {}, "cpu_seconds": {}}
    for seq_len, batch, dtype in settings:
        key = setting_key(seq_len, batch, dtype)
        started = time.process_time()
        try:
            m = measure_cache(config, seq_len, batch, dtype, timeout=timeout)
        except KVCalcError as exc:
            entry["errors"][key] = str(exc)[:500]
            entry["cpu_seconds"][key] = round(time.process_time() - started, 2)
            if not entry["measurements"]:
                break
            continue
        entry["cpu_seconds"][key] = round(time.process_time() - started, 2)
        entry.update(model_class=m.model_class, cache_class=m.cache_class)
        entry["measurements"][key] = {
            "total": m.total,
            "aux_bytes": m.aux_bytes,
            "extra_bytes": m.extra_bytes,
            "storage_bytes": m.storage_bytes,
            "kinds": m.kinds_summary(),
            "layer_kinds": m.layer_kinds,
            "layer_bytes": m.layer_bytes,
            "method": m.method,
            "attn_implementation": m.attn_implementation,
            "encoder_len": m.encoder_len,
            "beyond_position_table": m.beyond_position_table,
        }
    if entry["measurements"]:
        try:
            entry["params"] = count_parameters(config)
        except Exception as exc:  # model code raises anything; the cache side already ran
            entry["params_error"] = f"{type(exc).__name__}: {exc}"[:500]
    entry["buildable"] = bool(entry["measurements"])
    if not entry["buildable"]:
        entry["reason"] = next(iter(entry["errors"].values()), "no settings")
    entry["config_keys"] = relevant_config_keys(config)
    return entry


def _survey_model_type(args: tuple[str, Settings, float | None]) -> tuple[str, dict]:
    model_type, settings, timeout = args
    try:
        config = default_config_dict(model_type)
    except KVCalcError as exc:
        return model_type, {"buildable": False, "reason": str(exc)[:500], "measurements": {}, "errors": {}}
    return model_type, survey_config(config, settings, timeout)


def _measure_job(args: tuple[dict, Settings, float | None]) -> dict[str, CacheMeasurement | str]:
    config, settings, timeout = args
    out: dict[str, CacheMeasurement | str] = {}
    for seq_len, batch, dtype in settings:
        try:
            out[setting_key(seq_len, batch, dtype)] = measure_cache(
                config, seq_len, batch, dtype, timeout=timeout
            )
        except KVCalcError as exc:
            out[setting_key(seq_len, batch, dtype)] = str(exc)
    return out


def iter_measure_many(
    jobs: list[tuple[dict, Settings]], *, timeout: float | None = None, processes: int = 1
) -> Iterator[dict[str, CacheMeasurement | str]]:
    """For each (config, settings) job, in order: setting key -> CacheMeasurement (or the error text).

    ``processes > 1`` measures in spawned workers; closing the iterator stops them.
    """
    args = [(config, settings, timeout) for config, settings in jobs]
    yield from _map_jobs(_measure_job, args, processes)


def _map_jobs(fn: Callable[[Any], Any], args: list[Any], processes: int) -> Iterator[Any]:
    """``fn`` over ``args`` in order: in this process, or in spawned workers when processes > 1."""
    if processes <= 1:
        yield from map(fn, args)
        return
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        yield from pool.imap(fn, args)


def iter_survey_model_types(
    model_types: list[str],
    settings: Settings | Callable[[str], Settings],
    *,
    timeout: float | None = 300,
    processes: int = 1,
) -> Iterator[tuple[str, dict]]:
    """(model_type, survey entry) in the order given; ``processes > 1`` measures in spawned workers.

    ``settings`` may be a function of the model type. Closing the iterator stops the workers.
    """
    jobs = [(mt, settings(mt) if callable(settings) else settings, timeout) for mt in model_types]
    yield from _map_jobs(_survey_model_type, jobs, processes)


def survey_model_types(
    model_types: list[str],
    settings: Settings | Callable[[str], Settings],
    *,
    timeout: float | None = 300,
    processes: int = 1,
    on_result: Callable[[str, dict, dict], None] | None = None,
) -> dict[str, dict]:
    """survey_config for the config-class defaults of each model type, sorted by model type."""
    results: dict[str, dict] = {}
    for model_type, entry in iter_survey_model_types(
        model_types, settings, timeout=timeout, processes=processes
    ):
        results[model_type] = entry
        if on_result:
            on_result(model_type, entry, results)
    return dict(sorted(results.items()))


def versions() -> dict[str, str]:
    """torch and transformers versions the measurements come from."""
    torch, transformers = _import_backend()
    return {"torch": torch.__version__, "transformers": transformers.__version__}


def main(argv: list[str] | None = None) -> int:
    """CLI: survey transformers' model types (or config files) and write JSON."""
    import argparse
    import pathlib

    parser = argparse.ArgumentParser(prog="python -m kvcalc.measure.run", description=main.__doc__)
    parser.add_argument("--out", required=True, help="JSON file to write (rewritten after every model)")
    parser.add_argument("--configs", nargs="*", help="config.json files (default: transformers model types)")
    parser.add_argument("--types", nargs="*", help="only these model types")
    parser.add_argument("--settings", default="300/2/bf16,5000/1/bf16", help="seq/batch/dtype,...")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args(argv)
    settings = [(int(s), int(b), d) for s, b, d in (x.split("/") for x in args.settings.split(","))]
    out = pathlib.Path(args.out)
    header = {**versions(), "settings": [setting_key(*s) for s in settings]}

    def write(name: str, entry: dict, results: dict) -> None:
        status = "ok" if entry.get("buildable") else "FAIL " + entry.get("reason", "")[:120]
        print(f"{len(results):4d} {name}: {status}", flush=True)
        out.write_text(json.dumps({**header, "entries": dict(sorted(results.items()))}, indent=1) + "\n")

    if args.configs:
        results: dict[str, dict] = {}
        for path in args.configs:
            name = str(pathlib.Path(path).parent)
            results[name] = survey_config(json.loads(pathlib.Path(path).read_text()), settings, args.timeout)
            write(name, results[name], results)
    else:
        types = args.types or causal_lm_model_types()
        survey_model_types(types, settings, timeout=args.timeout, processes=args.processes, on_result=write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
