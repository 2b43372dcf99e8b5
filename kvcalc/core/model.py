"""Model = name + per-layer cache specs; load_model() reads a config dict, JSON text or file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kvcalc.core.config import from_mamba_ssm, is_mamba_ssm, parse_layers, text_config
from kvcalc.core.dtypes import model_dtype_name
from kvcalc.core.fields import LIMITS, MAX_JSON_BYTES, _check_depth, check_int, parse_json
from kvcalc.core.layers import CrossAttention, LayerSpec, Parallel
from kvcalc.errors import KVCalcError


@dataclass(frozen=True)
class Model:
    """A model as kvcalc sees it: per-layer cache specs plus display facts."""

    name: str
    model_type: str
    architecture: str
    layers: tuple[LayerSpec, ...]
    dtype: str
    max_position_embeddings: int | None
    verified: bool
    notes: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def text_config(self) -> Mapping[str, Any]:
        """The language-model part of the config."""
        return text_config(self.config)[0]

    def kinds(self) -> dict[str, int]:
        """Layer count per cache kind, e.g. {"full": 12, "gated_deltanet": 36}."""
        out: dict[str, int] = {}
        for layer in self.layers:
            out[layer.kind] = out.get(layer.kind, 0) + 1
        return out


def _hub_spec(source: Any) -> str | None:
    """``source`` when it is a Hugging Face id ``org/name[@revision]`` and not an existing path."""
    from kvcalc.core import hub

    if not isinstance(source, str) or hub.parse_hub_id(source) is None:
        return None
    try:
        return None if Path(source).exists() else source.strip()
    except OSError:
        return None


def _as_dict(source: Any) -> dict[str, Any]:
    if isinstance(source, Mapping):
        return dict(source)
    if isinstance(source, bytes):
        return parse_json(source)
    if isinstance(source, os.PathLike) or (isinstance(source, str) and source.lstrip()[:1] not in "{["):
        if _hub_spec(source) is not None:
            from kvcalc.core import hub

            return hub.fetch_config(source)
        path = Path(source)
        try:
            if path.is_dir():
                path = path / "config.json"
            with path.open("rb") as fh:
                data = fh.read(MAX_JSON_BYTES + 1)
        except OSError as exc:
            raise KVCalcError(f"config: cannot read {str(path)!r} ({exc.strerror})") from None
        return parse_json(data)
    if isinstance(source, str):
        return parse_json(source)
    raise KVCalcError(f"config: expected a dict, JSON text or path, got {type(source).__name__}")


def _display_name(cfg: Mapping[str, Any], model_type: str) -> str:
    for key in ("_name_or_path", "name"):
        value = cfg.get(key)
        if isinstance(value, str) and value:
            return value
    arch = cfg.get("architectures")
    if isinstance(arch, list) and arch and isinstance(arch[0], str):
        return arch[0]
    return model_type or "custom model"


def load_model(source: Any, *, name: str | None = None) -> Model:
    """Build a Model from a config dict, JSON text, a path to config.json (or its folder), or a Hugging
    Face id ``org/name[@revision]`` that is not a local path (its config.json: :mod:`kvcalc.core.hub`)."""
    cfg = _as_dict(source)
    name = name if name is not None else _hub_spec(source)
    _check_depth(cfg)
    notes: tuple[str, ...] = ()
    if is_mamba_ssm(cfg):  # mamba_ssm's own format: read as the transformers config it converts to
        cfg = from_mamba_ssm(cfg)
        notes = ("mamba_ssm config read as the transformers config its conversion script writes",)
    parsed = parse_layers(cfg)
    text, _ = text_config(cfg)
    dtype = text.get("torch_dtype") or text.get("dtype") or cfg.get("torch_dtype") or cfg.get("dtype")
    max_pos = text.get("max_position_embeddings") or text.get("n_positions") or text.get("max_seq_len")
    if isinstance(max_pos, bool) or not isinstance(max_pos, int) or max_pos <= 0:
        max_pos = None
    arch = cfg.get("architectures")
    architecture = arch[0] if isinstance(arch, list) and arch and isinstance(arch[0], str) else ""
    if name is not None and not isinstance(name, str):
        raise KVCalcError(f"name: expected a string, got {type(name).__name__}")
    return Model(
        name=name or _display_name(cfg, parsed.model_type),
        model_type=parsed.model_type,
        architecture=architecture,
        layers=parsed.layers,
        dtype=model_dtype_name(dtype),
        max_position_embeddings=max_pos,
        verified=parsed.verified,
        notes=notes + parsed.notes,
        config=cfg,
    )


def fixed_encoder_len(model: Model) -> int:
    """The encoder length the model fixes (Whisper: max_source_positions = 1500 frames), else 0."""
    leaves = [x for layer in model.layers for x in layer.leaves()]
    return max((x.encoder_len for x in leaves if isinstance(x, CrossAttention)), default=0)


def is_encoder_decoder(model: Model) -> bool:
    """Whether the model's decoder caches cross-attention over an encoder output."""
    return any(isinstance(x, CrossAttention) for layer in model.layers for x in layer.leaves())


def encoder_seq_len(model: Model, seq_len: int, given: int | None = None) -> int | None:
    """The encoder positions the cross-attention caches: ``given``, else the model's fixed length, else
    ``seq_len`` (None for decoder-only models)."""
    if not is_encoder_decoder(model):
        return None
    return given if given is not None else (fixed_encoder_len(model) or seq_len)


def with_encoder_seq_len(model: Model, n: object) -> Model:
    """``model`` whose cross-attention caches ``n`` encoder positions (``encoder_seq_len``).

    Refused for decoder-only models and, for a fixed-length encoder (Whisper pads every input to 30 s:
    1500 positions; transformers rejects other lengths), for any other length.
    """
    n = check_int(n, "encoder_seq_len", maximum=LIMITS["tokens"])
    if not is_encoder_decoder(model):
        raise KVCalcError(f"encoder_seq_len: {model.name!r} has no encoder (decoder-only model)")
    fixed = fixed_encoder_len(model)
    if fixed and n != fixed:
        raise KVCalcError(f"encoder_seq_len: {model.name!r} always encodes {fixed:,} positions, not {n:,}")

    def swap(spec: LayerSpec) -> LayerSpec:
        if isinstance(spec, CrossAttention):
            return replace(spec, encoder_len=n)
        if isinstance(spec, Parallel):
            return replace(spec, parts=tuple(swap(x) for x in spec.parts))
        return spec

    return replace(model, layers=tuple(swap(x) for x in model.layers))
