"""Exact weight bytes and parameters from a checkpoint's safetensors headers (no tensor data is read).

A safetensors file starts with an 8-byte little-endian header length N, then N bytes of JSON:
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`` (the safetensors
format spec, huggingface/safetensors ``README.md``). ``end - begin`` is each tensor's exact size in
bytes. A sharded checkpoint lists its shards in ``model.safetensors.index.json`` (``weight_map``:
tensor → file). For a Hub id the index comes through :mod:`kvcalc.core.hub` (and its cache) and each
shard's header through HTTP Range requests: two small requests per shard, whatever its size.

Parameters are counted per tensor as follows (quantized checkpoints included):

* a plain tensor (BF16, F16, F32, F8_E4M3 weights, …): its element count (product of ``shape``);
  sub-byte dtypes (``F4``, ``F6_*``) already have their logical shape;
* quantization metadata holds no parameters, only bytes (``scale_bytes``): FP8 ``weight_scale_inv``
  (block scales, DeepSeek-V3 / Qwen3-FP8), ``weight_scale``, ``weight_scale_2``, ``input_scale``,
  ``*_global_scale``, ``weight_zero_point``, ``weight_shape`` (compressed-tensors), ``k_scale`` /
  ``v_scale``; AWQ / GPTQ ``scales``, ``qzeros``, ``g_idx`` beside a ``qweight``; MXFP4 ``X_scales``
  beside ``X_blocks`` (gpt-oss);
* packed integer weights count the values they pack: AWQ / GPTQ ``qweight`` (I32) and
  compressed-tensors ``weight_packed`` (I32) hold 32 / bits values per element, ``bits`` from
  ``quantization_config`` (else read off the shapes: AWQ packs the output dimension, which ``scales``
  gives unpacked; GPTQ the input dimension, which ``g_idx`` gives); MXFP4 ``X_blocks`` (U8) and NVFP4
  weights stored as U8 (ModelOpt ``weight`` with an F8 ``weight_scale`` per 16 values, compressed-tensors
  ``weight_packed``) hold 2 values per byte.

Each tensor's byte size is checked against dtype × shape (packed dtypes against their storage shape);
a header that disagrees raises :class:`KVCalcError` naming the tensor, never a silently wrong total.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvcalc.core import hub
from kvcalc.errors import KVCalcError

__all__ = ["DTYPE_BITS", "Checkpoint", "TensorEntry", "from_folder", "from_hub", "load_checkpoint"]

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
FIRST_READ = 64 * 1024  # one Range request covers most headers; a second one fetches the rest
MAX_HEADER = 100 * 1024 * 1024  # the safetensors library refuses larger headers
#: Bits per element of each safetensors dtype (safetensors ``Dtype``).
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8, "E8M0": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}  # fmt: skip
_META_SUFFIXES = (
    ".weight_scale_inv", ".weight_scale", ".weight_scale_2", ".input_scale", ".weight_global_scale",
    ".input_global_scale", ".weight_zero_point", ".weight_shape", ".k_scale", ".v_scale", ".q_scale",
)  # fmt: skip
_GPTQ_META = (".scales", ".qzeros", ".g_idx")

Reader = Callable[[str, int, int], bytes]  # (file, start, length) -> bytes


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a header: dtype, storage shape, exact bytes, and the parameters it holds."""

    name: str
    file: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    params: int
    role: str  # "weight", "packed" or "scale"


@dataclass(frozen=True)
class Checkpoint:
    """What a checkpoint's safetensors headers say (bytes of tensor data, not of headers)."""

    source: str
    files: tuple[str, ...]
    total_bytes: int
    parameters: int
    bytes_by_dtype: Mapping[str, int]
    params_by_dtype: Mapping[str, int]
    scale_bytes: int
    packed_params: int
    header_bytes: int
    tensors: tuple[TensorEntry, ...] = field(default=(), repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no tensor list)."""
        return {
            "source": self.source,
            "files": list(self.files),
            "total_bytes": self.total_bytes,
            "parameters": self.parameters,
            "bytes_by_dtype": dict(self.bytes_by_dtype),
            "params_by_dtype": dict(self.params_by_dtype),
            "scale_bytes": self.scale_bytes,
            "packed_params": self.packed_params,
            "header_bytes": self.header_bytes,
        }


# ------------------------------------------------------------------------------------------------
# headers


def parse_header(read: Reader, file: str) -> tuple[dict[str, Any], int]:
    """The JSON header of one safetensors file and its length with the 8-byte prefix."""
    head = read(file, 0, FIRST_READ)
    if len(head) < 8:
        raise KVCalcError(f"checkpoint: {file}: {len(head)} bytes, not a safetensors file")
    (size,) = struct.unpack("<Q", head[:8])
    if size == 0 or size > MAX_HEADER:
        raise KVCalcError(f"checkpoint: {file}: header length {size:,} is not that of a safetensors file")
    raw = head[8 : 8 + size]
    if len(raw) < size:
        raw += read(file, 8 + len(raw), size - len(raw))
    if len(raw) != size:
        raise KVCalcError(f"checkpoint: {file}: header cut short ({len(raw):,} of {size:,} bytes)")
    try:
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KVCalcError(f"checkpoint: {file}: header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise KVCalcError(f"checkpoint: {file}: header is not a JSON object")
    return header, 8 + size


def _raw_entry(name: str, file: str, info: Any) -> tuple[str, tuple[int, ...], int]:
    """(dtype, shape, bytes) of one header entry, validated."""
    where = f"checkpoint: {file}: tensor {name!r}"
    if not isinstance(info, Mapping):
        raise KVCalcError(f"{where}: expected an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in DTYPE_BITS:
        raise KVCalcError(f"{where}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise KVCalcError(f"{where}: shape {shape!r} is not a list of sizes")
    good = isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
    if not good or not 0 <= offsets[0] <= offsets[1]:
        raise KVCalcError(f"{where}: data_offsets {offsets!r} is not [begin, end]")
    numel = _numel(shape)
    nbytes = offsets[1] - offsets[0]
    if nbytes != -(-numel * DTYPE_BITS[dtype] // 8):
        raise KVCalcError(f"{where}: {nbytes:,} bytes for {dtype} {shape} (expected {numel} elements)")
    return dtype, tuple(shape), nbytes


def _numel(shape: Iterable[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# ------------------------------------------------------------------------------------------------
# parameters of packed / metadata tensors


def _quant(config: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not isinstance(config, Mapping):
        return {}
    q = config.get("quantization_config")
    if not isinstance(q, Mapping):
        text = config.get("text_config")
        q = text.get("quantization_config") if isinstance(text, Mapping) else None
    return q if isinstance(q, Mapping) else {}


def _config_bits(q: Mapping[str, Any]) -> int | None:
    """Bits of packed integer weights: GPTQ/AWQ ``bits``/``w_bit``, compressed-tensors ``num_bits``."""
    for key in ("bits", "w_bit"):
        if isinstance(q.get(key), int):
            return int(q[key])
    groups = q.get("config_groups")
    if isinstance(groups, Mapping):
        for group in groups.values():
            weights = group.get("weights") if isinstance(group, Mapping) else None
            if isinstance(weights, Mapping) and isinstance(weights.get("num_bits"), int):
                return int(weights["num_bits"])
    return None


def _packed_bits(name: str, shape: tuple[int, ...], raw: Mapping[str, tuple[str, tuple[int, ...], int]],
                 bits: int | None) -> int:  # fmt: skip
    """Bits per packed value of an I32 ``qweight``/``weight_packed``: the config's, else the shapes'."""
    stem = name.rsplit(".", 1)[0]
    scales = raw.get(f"{stem}.scales") if name.endswith(".qweight") else None
    g_idx = raw.get(f"{stem}.g_idx")
    derived = None
    if len(shape) == 2 and scales is not None and scales[1] and shape[1] != scales[1][-1]:
        derived = 32 * shape[1] // scales[1][-1]  # AWQ: [in, out · bits / 32] beside scales [groups, out]
    elif len(shape) == 2 and g_idx is not None and g_idx[1]:
        derived = 32 * shape[0] // g_idx[1][0]  # GPTQ: [in · bits / 32, out] beside g_idx [in]
    if bits is None:
        bits = derived
    elif derived is not None and derived != bits:
        raise KVCalcError(
            f"quantization_config.bits: {bits}, but {name} {list(shape)} packs {derived}-bit values"
        )
    if bits is None or bits not in (2, 3, 4, 8):
        raise KVCalcError(f"quantization_config.bits: needed to count the parameters packed in {name!r}")
    return bits


def _role(name: str, dtype: str, raw: Mapping[str, tuple[str, tuple[int, ...], int]]) -> str:
    """ "scale" (metadata), "packed" (several values per element) or "weight"."""
    stem = name.rsplit(".", 1)[0]
    if name.endswith(_META_SUFFIXES):
        return "scale"
    if name.endswith(_GPTQ_META) and f"{stem}.qweight" in raw:
        return "scale"
    if name.endswith("_scales") and name.removesuffix("_scales") + "_blocks" in raw:
        return "scale"
    if name.endswith((".qweight", ".weight_packed")) or (name.endswith("_blocks") and dtype == "U8"):
        return "packed"
    if name.endswith(".weight") and dtype == "U8" and _fp4_scaled(name, raw):
        return "packed"
    return "weight"


def _fp4_scaled(name: str, raw: Mapping[str, tuple[str, tuple[int, ...], int]]) -> bool:
    """A U8 ``.weight`` packs FP4 pairs when its ``weight_scale`` has one scale per 16 (NVFP4) or 32
    (MXFP4) of the unpacked values: scale columns · group == 2 · packed columns."""
    scale = raw.get(name + "_scale")
    shape = raw[name][1]
    if scale is None or not shape or not scale[1]:
        return False
    return any(scale[1][-1] * g == 2 * shape[-1] for g in (16, 32))


def _entries(headers: Mapping[str, Mapping[str, Any]], config: Mapping[str, Any] | None) -> list[TensorEntry]:
    """Every tensor of every header, with the parameters it holds."""
    raw: dict[str, tuple[str, tuple[int, ...], int]] = {}
    where: dict[str, str] = {}
    for file, header in headers.items():
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if name in raw:
                raise KVCalcError(f"checkpoint: tensor {name!r} is in both {where[name]} and {file}")
            raw[name] = _raw_entry(name, file, info)
            where[name] = file
    bits = _config_bits(_quant(config))
    out = []
    for name, (dtype, shape, nbytes) in raw.items():
        role = _role(name, dtype, raw)
        numel = _numel(shape)
        if role == "scale":
            params = 0
        elif role == "packed" and dtype in ("I32", "U32"):
            params = numel * (32 // _packed_bits(name, shape, raw, bits))
        elif role == "packed" and dtype in ("U8", "I8"):
            params = numel * 2
        else:
            role, params = "weight", numel
        out.append(TensorEntry(name, where[name], dtype, shape, nbytes, params, role))
    return out


def summarize(source: str, headers: Mapping[str, Mapping[str, Any]], header_bytes: int,
              config: Mapping[str, Any] | None = None) -> Checkpoint:  # fmt: skip
    """A :class:`Checkpoint` from parsed headers (file → header)."""
    entries = _entries(headers, config)
    if not entries:
        raise KVCalcError(f"checkpoint: {source}: no tensors in the safetensors headers")
    by_dtype: dict[str, int] = {}
    params_by_dtype: dict[str, int] = {}
    for e in entries:
        by_dtype[e.dtype] = by_dtype.get(e.dtype, 0) + e.nbytes
        if e.params:
            params_by_dtype[e.dtype] = params_by_dtype.get(e.dtype, 0) + e.params
    return Checkpoint(
        source=source,
        files=tuple(headers),
        total_bytes=sum(e.nbytes for e in entries),
        parameters=sum(e.params for e in entries),
        bytes_by_dtype=dict(sorted(by_dtype.items())),
        params_by_dtype=dict(sorted(params_by_dtype.items())),
        scale_bytes=sum(e.nbytes for e in entries if e.role == "scale"),
        packed_params=sum(e.params for e in entries if e.role == "packed"),
        header_bytes=header_bytes,
        tensors=tuple(entries),
    )


def _shards(index_text: bytes, source: str) -> list[str]:
    try:
        index = json.loads(index_text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KVCalcError(f"checkpoint: {source}: {INDEX} is not JSON ({exc})") from None
    weight_map = index.get("weight_map") if isinstance(index, Mapping) else None
    if not isinstance(weight_map, Mapping) or not weight_map:
        raise KVCalcError(f"checkpoint: {source}: {INDEX} has no weight_map")
    files = sorted({f for f in weight_map.values() if isinstance(f, str)})
    bad = [f for f in files if f.startswith(("/", "\\")) or ".." in f.replace("\\", "/").split("/")]
    if len(files) != len(set(weight_map.values())) or bad:
        raise KVCalcError(f"checkpoint: {source}: {INDEX} weight_map holds bad file names")
    return files


def _read_all(source: str, files: list[str], read: Reader, config: Mapping[str, Any] | None) -> Checkpoint:
    headers: dict[str, dict[str, Any]] = {}
    size = 0
    for file in files:
        headers[file], n = parse_header(read, file)
        size += n
    return summarize(source, headers, size, config)


# ------------------------------------------------------------------------------------------------
# sources


def from_folder(folder: str | Path, config: Mapping[str, Any] | None = None) -> Checkpoint:
    """Headers of the safetensors files of a local folder (its index's shards, else model.safetensors,
    else every ``*.safetensors``)."""
    root = Path(folder)
    index = root / INDEX
    if index.is_file():
        files = _shards(index.read_bytes(), str(root))
    elif (root / SINGLE).is_file():
        files = [SINGLE]
    else:
        files = sorted(p.name for p in root.glob("*.safetensors"))
    if not files:
        raise KVCalcError(f"checkpoint: no safetensors files in {str(root)!r}")

    def read(file: str, start: int, length: int) -> bytes:
        try:
            with (root / file).open("rb") as fh:
                fh.seek(start)
                return fh.read(length)
        except OSError as exc:
            raise KVCalcError(f"checkpoint: cannot read {str(root / file)!r} ({exc.strerror})") from None

    return _read_all(f"local folder {root}", files, read, config)


def from_hub(spec: hub.HubId | str, config: Mapping[str, Any] | None = None) -> Checkpoint:
    """Headers of a Hub repository's safetensors files, by HTTP Range requests (index cached)."""
    hid = hub.parse_hub_id(spec)
    if hid is None:
        raise KVCalcError(f"checkpoint: {spec!r} is not a Hugging Face id")
    try:
        files = _shards(hub.hub_file(hid, INDEX), str(hid))
    except hub.HubFileMissing:
        files = [SINGLE]

    def read(file: str, start: int, length: int) -> bytes:
        try:
            return hub.read_range(hid, file, start, length)
        except hub.HubFileMissing:
            raise KVCalcError(
                f"checkpoint: {hid}: no {INDEX} and no {file} (not a safetensors checkpoint)"
            ) from None

    return _read_all(f"Hugging Face {hid}", files, read, config)


def load_checkpoint(spec: str | Path, config: Mapping[str, Any] | None = None) -> Checkpoint:
    """A local folder holding safetensors files, else a Hub id."""
    path = Path(spec)
    if path.is_dir():
        return from_folder(path, config)
    if hub.parse_hub_id(str(spec)) is not None:
        return from_hub(str(spec), config)
    raise KVCalcError(f"checkpoint: {str(spec)!r} is neither a folder nor a Hugging Face id")
