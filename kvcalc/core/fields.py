"""Typed, validated reads of config.json fields; every failure names the field."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from kvcalc.errors import KVCalcError

#: Upper bounds past which a value is surely a typo, not a model.
LIMITS = {
    "layers": 100_000,
    "heads": 1_000_000,
    "dim": 10_000_000,
    "tokens": 1 << 40,
}

_MISSING = object()
MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64


class Fields:
    """A config dict with alias-aware, validated getters."""

    def __init__(self, cfg: Mapping[str, Any], where: str = "") -> None:
        self.cfg = cfg
        self.where = where

    def _name(self, key: str) -> str:
        return f"{self.where}{key}"

    def has(self, *keys: str) -> bool:
        """True when any of ``keys`` is present and not null."""
        return any(self.cfg.get(k) is not None for k in keys)

    def first(self, *keys: str) -> tuple[str, Any]:
        """The first present, non-null key among aliases and its value, else (keys[0], None)."""
        for k in keys:
            if self.cfg.get(k) is not None:
                return k, self.cfg[k]
        return keys[0], None

    def int(
        self,
        *keys: str,
        default: Any = _MISSING,
        minimum: int = 1,
        limit: str = "dim",
    ) -> int:
        """A positive (≥ ``minimum``) integer from the first present alias; 2.0 counts as 2."""
        key, value = self.first(*keys)
        if value is None:
            if default is _MISSING:
                alias = " | ".join(keys)
                raise KVCalcError(f"{self._name(key)}: required field missing (looked for {alias})")
            return default
        return check_int(value, self._name(key), minimum=minimum, maximum=LIMITS[limit])

    def bool(self, key: str, default: bool = False) -> bool:
        """A boolean flag (null → default)."""
        value = self.cfg.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise KVCalcError(f"{self._name(key)}: expected true or false, got {value!r}")
        return value

    def str(self, key: str, default: str = "") -> str:
        """A string field (null → default)."""
        value = self.cfg.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise KVCalcError(f"{self._name(key)}: expected a string, got {type(value).__name__}")
        return value

    def list(self, key: str) -> Sequence[Any] | None:
        """A list field, or None when absent."""
        value = self.cfg.get(key)
        if value is None:
            return None
        if not isinstance(value, list):
            raise KVCalcError(f"{self._name(key)}: expected a list, got {type(value).__name__}")
        return value


def check_int(value: Any, field: str, *, minimum: int = 1, maximum: int = LIMITS["tokens"]) -> int:
    """Validate one integer (bools and non-integral floats rejected)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise KVCalcError(f"{field}: expected an integer, got {value!r}")
    if isinstance(value, float):
        if not value.is_integer():
            raise KVCalcError(f"{field}: expected an integer, got {value!r}")
        value = int(value)
    if value < minimum:
        raise KVCalcError(f"{field}: must be ≥ {minimum}, got {value}")
    if value > maximum:
        raise KVCalcError(f"{field}: {value} is implausibly large (limit {maximum})")
    return value


def _check_depth(obj: Any, limit: int = MAX_DEPTH) -> None:
    """Reject pathologically nested JSON without recursion."""
    stack = [(obj, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise KVCalcError(f"config: nested more than {limit} levels deep")
        if isinstance(item, Mapping):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def parse_json(text: str | bytes) -> dict[str, Any]:
    """Parse config.json text with size and depth limits."""
    if len(text) > MAX_JSON_BYTES:
        raise KVCalcError(f"config: {len(text):,} bytes is too large for a config.json (limit 4 MiB)")
    try:
        data = json.loads(text)
    except RecursionError:
        raise KVCalcError(f"config: nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise KVCalcError(f"config: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise KVCalcError(f"config: expected a JSON object, got {type(data).__name__}")
    return data
