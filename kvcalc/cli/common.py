"""What every kvcalc command shares: argument types (token counts, fractions), resolving MODEL,
and output (tables, JSON, GiB = 2^30 bytes)."""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import kvcalc
from kvcalc.core.units import GIB
from kvcalc.errors import KVCalcError

TOKENS_HELP = "tokens: 32768, 32k, 128K or 1M (k = 1024, M = 1024²: 128k = 131,072)"
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


# ------------------------------------------------------------------------------------------------
# argument types


def parse_tokens(text: str) -> int:
    """A token count: 32768, 32k, 128K, 1M, 1.5k (k = 1024). Raises ValueError when malformed."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", str(text).replace("_", "").replace(",", ""))
    if not m:
        raise ValueError(f"not a token count: {text!r} (use e.g. 32768, 32k, 128K, 1M)")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not value.is_integer():
        raise ValueError(f"{text!r} is not a whole number of tokens")
    return int(value)


def _tokens(text: str) -> int:
    try:
        value = parse_tokens(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: must be at least 1 token")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


# ------------------------------------------------------------------------------------------------
# models


_CATALOG: Any = None


def _catalog() -> Any:
    """The preloaded catalog, or None when model_configs.json is not available."""
    global _CATALOG
    if _CATALOG is None:
        from kvcalc.core.catalog import default_catalog_path, load_catalog

        path = default_catalog_path()
        _CATALOG = load_catalog(path) if path else False
    return _CATALOG or None


def resolve_model(spec: str) -> kvcalc.Model:
    """A config.json path (or folder, or generate_config's entry), a preloaded name, or a Hugging Face id
    ``org/name[@revision]`` (its config.json over HTTP, or from the Hub cache: :mod:`kvcalc.core.hub`)."""
    path = Path(spec)
    if path.is_file():
        return _from_file(path)
    if path.is_dir() and (path / "config.json").is_file():
        return kvcalc.load_model(path)
    catalog = _catalog()
    if catalog is not None and spec in catalog:
        return catalog.model(spec)
    from kvcalc.core import hub

    if hub.parse_hub_id(spec) is not None:
        return kvcalc.load_model(spec)
    if catalog is not None:
        catalog.get(spec)  # raises with suggestions
    raise KVCalcError(f"model: {spec!r} is not a file, a preloaded model or a Hugging Face id")


def _from_file(path: Path) -> kvcalc.Model:
    """A config.json, or the entry ``python -m kvcalc.generate_config`` prints (its ``config`` inside)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return kvcalc.load_model(path)  # load_model names the problem
    if isinstance(data, dict) and isinstance(data.get("config"), dict) and "normalised" in data:
        return kvcalc.load_model(data["config"], name=data.get("name") or None)
    return kvcalc.load_model(path)


# ------------------------------------------------------------------------------------------------
# output


def _gib(n: int | float) -> str:
    return f"{n / GIB:,.2f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table: numbers right-aligned, text left-aligned."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [
        all(re.fullmatch(r"[-~\d.,×x%]+", r[i] or "0") for r in cells[1:]) for i in range(len(headers))
    ]
    lines = []
    for r in cells:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric, strict=True)]
        lines.append("  ".join(parts).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _emit(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> int:
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False, default=_json_default))
    else:
        print(text())
    return 0


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
