"""GGUF header reader (stdlib only): metadata, tensor infos, exact weight bytes per tensor type.

Format (ggml ``docs/gguf.md``, ``gguf-py/gguf/constants.py`` of llama.cpp 0c1e57098): magic ``GGUF``,
version (2 or 3), tensor count and metadata count (u64), metadata key/value pairs (typed), tensor infos
(name, dims, ggml type, offset), then the data aligned to ``general.alignment`` (default 32).

A tensor's bytes are ``ggml_row_size(type, ne0) · ne1 · ne2 · ne3`` (``ggml_nbytes``); the block
sizes are ``GGML_QUANT_SIZES``. The header alone is enough: the reader stops before the data, so a
GGUF on the Hub can be read with a few HTTP Range requests (:func:`read_url`).

``kvcalc.engines.llamacpp.gguf_geometry`` turns the metadata into what llama.cpp's memory module
needs, so a GGUF alone answers a KV question.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvcalc.errors import KVCalcError

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_HEADER_BYTES = 256 * 1024 * 1024
MAX_COUNT = 1 << 24

#: ggml type id → (name, elements per block, bytes per block): ``GGML_QUANT_SIZES`` / ggml-common.h.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
    42: ("Q2_0", 64, 18),
}
TYPE_IDS = {name: tid for tid, (name, _, _) in GGML_TYPES.items()}

#: ``general.file_type`` (``LlamaFileType``) → the name llama.cpp's quantize tool uses.
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
    41: "Q2_0",
}

# GGUFValueType: id → struct format (scalars); 8 = string, 9 = array.
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the file: ``shape`` is ggml's ``ne`` (innermost first)."""

    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int

    @property
    def type_name(self) -> str:
        return GGML_TYPES[self.type_id][0]

    @property
    def n_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """``ggml_nbytes``: row size of ne0 elements × the other dimensions."""
        _, blck, size = GGML_TYPES[self.type_id]
        ne0 = self.shape[0] if self.shape else 1
        if ne0 % blck:
            raise KVCalcError(
                f"{self.name}: {ne0} values per row is not a whole number of {self.type_name} blocks"
            )
        return size * ne0 // blck * (self.n_elements // ne0 if ne0 else 0)


@dataclass(frozen=True)
class GGUF:
    """A GGUF header: version, metadata, tensor infos and where the data starts."""

    version: int
    metadata: Mapping[str, Any]
    tensors: tuple[TensorInfo, ...]
    header_bytes: int
    alignment: int = DEFAULT_ALIGNMENT
    source: str = field(default="", compare=False)

    @property
    def architecture(self) -> str:
        arch = self.metadata.get("general.architecture")
        if not isinstance(arch, str):
            raise KVCalcError("general.architecture: missing from the GGUF metadata")
        return arch

    @property
    def file_type(self) -> str | None:
        """``general.file_type`` as llama.cpp names it (Q4_K_M, …), when present."""
        ft = self.metadata.get("general.file_type")
        return FILE_TYPES.get(ft, f"type {ft}") if isinstance(ft, int) else None

    @property
    def data_offset(self) -> int:
        """Start of the tensor data: the header padded to the alignment."""
        return -(-self.header_bytes // self.alignment) * self.alignment

    def weight_bytes(self) -> int:
        """Exact bytes of all tensors' data (without the alignment gaps between them)."""
        return sum(t.nbytes for t in self.tensors)

    def bytes_by_type(self) -> dict[str, int]:
        """Weight bytes per ggml tensor type, largest first."""
        out: dict[str, int] = {}
        for t in self.tensors:
            out[t.type_name] = out.get(t.type_name, 0) + t.nbytes
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def params(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    def get(self, key: str, default: Any = None) -> Any:
        """``{arch}.key`` metadata (e.g. ``get("block_count")``)."""
        return self.metadata.get(f"{self.architecture}.{key}", default)


class _Reader:
    """Sequential little-endian reads over a ``read(offset, n) -> bytes`` function."""

    def __init__(self, read: Callable[[int, int], bytes], source: str) -> None:
        self._read = read
        self.pos = 0
        self.source = source

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > MAX_HEADER_BYTES:
            raise KVCalcError(
                f"{self.source}: GGUF header larger than {MAX_HEADER_BYTES >> 20} MiB or corrupt"
            )
        data = self._read(self.pos, n)
        if len(data) != n:
            raise KVCalcError(f"{self.source}: truncated GGUF header at byte {self.pos}")
        self.pos += n
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def count(self, what: str) -> int:
        n = self.unpack("<Q")
        if n > MAX_COUNT:
            raise KVCalcError(f"{self.source}: {what} count {n} is not plausible")
        return int(n)

    def string(self) -> str:
        raw = self.take(self.count("string length"))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise KVCalcError(f"{self.source}: a GGUF string at byte {self.pos} is not UTF-8") from None

    def value(self, vtype: int) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            itype = self.unpack("<I")
            n = self.count("array")
            if itype in _SCALARS:  # one read for the whole array
                fmt = _SCALARS[itype]
                size = struct.calcsize(fmt)
                return list(struct.unpack(f"<{n}{fmt[1]}", self.take(n * size)))
            return [self.value(itype) for _ in range(n)]
        raise KVCalcError(f"{self.source}: unknown GGUF value type {vtype} at byte {self.pos}")


def parse(read: Callable[[int, int], bytes], source: str = "gguf") -> GGUF:
    """Parse a GGUF header through ``read(offset, n)``."""
    r = _Reader(read, source)
    if r.take(4) != MAGIC:
        raise KVCalcError(f"{source}: not a GGUF file (magic is not 'GGUF')")
    version = r.unpack("<I")
    if version not in (2, 3):
        raise KVCalcError(f"{source}: GGUF version {version} is not supported (2 or 3)")
    n_tensors = r.count("tensor")
    n_kv = r.count("metadata")
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = r.string()
        metadata[key] = r.value(r.unpack("<I"))
    tensors = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.unpack("<I")
        if n_dims > 4:
            raise KVCalcError(f"{source}: tensor {name!r} has {n_dims} dimensions (ggml allows 4)")
        shape = tuple(r.unpack("<Q") for _ in range(n_dims))
        type_id = r.unpack("<I")
        if type_id not in GGML_TYPES:
            raise KVCalcError(f"{source}: tensor {name!r} has unknown ggml type {type_id}")
        tensors.append(TensorInfo(name, shape, type_id, r.unpack("<Q")))
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise KVCalcError(f"{source}: general.alignment {alignment!r} is not a power of two")
    return GGUF(version, metadata, tuple(tensors), r.pos, alignment, source)


def read_file(path: str | Path) -> GGUF:
    """Read the header of a local ``.gguf`` file (the tensor data is not read)."""
    p = Path(path)
    try:
        fh = p.open("rb")
    except OSError as exc:
        raise KVCalcError(f"gguf: cannot read {str(p)!r} ({exc.strerror})") from None
    with fh:

        def read(offset: int, n: int) -> bytes:
            fh.seek(offset)
            return fh.read(n)

        return parse(read, str(p))


def read_url(url: str, *, chunk: int = 1 << 20, headers: Mapping[str, str] | None = None) -> GGUF:
    """Read a GGUF header over HTTP Range requests (e.g. a Hub ``resolve`` URL), ``chunk`` bytes at a time."""
    import urllib.request

    cache: dict[int, bytes] = {}

    def block(i: int) -> bytes:
        if i not in cache:
            req = urllib.request.Request(
                url, headers={**(headers or {}), "Range": f"bytes={i * chunk}-{(i + 1) * chunk - 1}"}
            )
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - user-given URL
                    cache[i] = resp.read(chunk)
            except OSError as exc:
                raise KVCalcError(f"gguf: cannot fetch {url} ({exc})") from None
        return cache[i]

    def read(offset: int, n: int) -> bytes:
        out = bytearray()
        while n > 0:
            i, start = divmod(offset, chunk)
            piece = block(i)[start : start + n]
            if not piece:
                break
            out += piece
            offset += len(piece)
            n -= len(piece)
        return bytes(out)

    return parse(read, url)


def summary(g: GGUF) -> dict[str, Any]:
    """What a GGUF holds: architecture, file type, tensors, exact weight bytes per type."""
    return {
        "source": g.source,
        "version": g.version,
        "architecture": g.architecture,
        "name": g.metadata.get("general.name"),
        "file_type": g.file_type,
        "tensors": len(g.tensors),
        "params": g.params(),
        "weight_bytes": g.weight_bytes(),
        "bytes_by_type": g.bytes_by_type(),
        "context_length": g.get("context_length"),
        "header_bytes": g.header_bytes,
    }
