"""Element formats of caches and states, by name, with their scale overheads."""

from __future__ import annotations

from dataclasses import dataclass

from kvcalc.errors import KVCalcError


@dataclass(frozen=True)
class CacheDType:
    """How one row (one token of one head) of ``n`` elements is stored.

    ``bits``: data bits per element. ``group``/``group_scale_bytes``: one scale per group of elements
    (nvfp4: 1 fp8 byte per 16). ``row_scale_bytes``: one scale per row (vLLM per-token-head: fp32 = 4).
    ``block``/``block_bytes``: llama.cpp block formats (q8_0: 34 B per 32 elements).
    """

    name: str
    bits: int
    group: int = 0
    group_scale_bytes: int = 0
    row_scale_bytes: int = 0
    block: int = 0
    block_bytes: int = 0
    is_float: bool = True

    def row_bytes(self, n: int) -> int:
        """Bytes of one row of ``n`` elements, scales included."""
        if n <= 0:
            return 0
        if self.block:
            return -(-n // self.block) * self.block_bytes
        data = -(-n * self.bits // 8)
        groups = -(-n // self.group) * self.group_scale_bytes if self.group else 0
        return data + groups + self.row_scale_bytes

    @property
    def plain_bytes(self) -> int | None:
        """Bytes per element when it is a whole number with no scales, else None."""
        if self.block or self.group or self.row_scale_bytes or self.bits % 8:
            return None
        return self.bits // 8


_DTYPES: dict[str, CacheDType] = {
    d.name: d
    for d in (
        CacheDType("fp32", 32),
        CacheDType("bf16", 16),
        CacheDType("fp16", 16),
        CacheDType("fp8", 8),
        CacheDType("fp8_e4m3", 8),
        CacheDType("fp8_e5m2", 8),
        CacheDType("int8", 8, is_float=False),
        CacheDType("fp8_per_token_head", 8, row_scale_bytes=4),
        CacheDType("int8_per_token_head", 8, row_scale_bytes=4, is_float=False),
        CacheDType("nvfp4", 4, group=16, group_scale_bytes=1, is_float=False),
        CacheDType("q8_0", 8, block=32, block_bytes=34, is_float=False),
        CacheDType("q4_0", 4, block=32, block_bytes=18, is_float=False),
    )
}

_ALIASES = {
    "float32": "fp32",
    "float": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "fp8_e4m3fn": "fp8_e4m3",
    "float8_e4m3fn": "fp8_e4m3",
    "float8_e5m2": "fp8_e5m2",
}

#: Names a model (weights/activations) dtype may take; transformers runs only these.
MODEL_DTYPES = ("fp32", "bf16", "fp16")


def dtype_names() -> tuple[str, ...]:
    """All cache dtype names kvcalc accepts."""
    return tuple(_DTYPES)


def get_dtype(name: object, field: str = "kv_dtype") -> CacheDType:
    """Look a dtype up by name (case-insensitive, torch names accepted)."""
    if not isinstance(name, str):
        raise KVCalcError(f"{field}: expected a dtype name, got {name!r}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    try:
        return _DTYPES[key]
    except KeyError:
        raise KVCalcError(f"{field}: unknown dtype {name!r}; choose one of {', '.join(_DTYPES)}") from None


def model_dtype_name(config_dtype: object) -> str:
    """vLLM's "auto": the checkpoint dtype, float32 downcast to bf16, missing → bf16."""
    if isinstance(config_dtype, str):
        key = _ALIASES.get(config_dtype.strip().lower(), config_dtype.strip().lower())
        if key in ("bf16", "fp16"):
            return key
    return "bf16"


FP32 = _DTYPES["fp32"]
