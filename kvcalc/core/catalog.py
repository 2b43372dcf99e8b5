"""The preloaded model set (model_configs.json): read it from data, JSON text or a path.

The site embeds the JSON at build time and the wheel does not ship it, so :func:`load_catalog` takes
the parsed data as well as a path. Lookup is case-insensitive by hf id (``deepseek-ai/DeepSeek-V3``)
or short name (``DeepSeek-V3``). Stdlib only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvcalc.core.model import Model, load_model
from kvcalc.errors import KVCalcError

__all__ = ["PAGE_ALIASES", "Catalog", "CatalogEntry", "default_catalog_path", "get_model", "load_catalog"]

FILE_NAME = "model_configs.json"
ENV_VAR = "KVCALC_MODEL_CONFIGS"
_NONFINITE = {"Infinity": float("inf"), "-Infinity": float("-inf"), "NaN": float("nan")}


@dataclass(frozen=True)
class CatalogEntry:
    """One preloaded model: ids, display facts, its original config and provenance."""

    id: str
    name: str
    family: str
    config: Mapping[str, Any] = field(repr=False)
    provenance: Mapping[str, Any] = field(default_factory=dict, repr=False)
    sha256: str = ""
    sha256_matches_sources: bool = False

    @property
    def verified(self) -> bool:
        """True when the config's hash was checked against the upstream file."""
        return bool(self.provenance.get("verified_against_upstream_hash"))

    def model(self) -> Model:
        """The config as a :class:`kvcalc.Model` named by its short name."""
        return load_model(self.config, name=self.name)


def _restore(config: Any, paths: list[str]) -> Any:
    """Put back the non-finite floats the generator stored as strings (paths like ``a.b[1]``)."""
    for path in paths:
        node, key = _walk(config, path)
        if node is not None and node[key] in _NONFINITE:
            node[key] = _NONFINITE[node[key]]
    return config


def _walk(root: Any, path: str) -> tuple[Any, Any]:
    parts: list[Any] = []
    for piece in path.split("."):
        name, _, rest = piece.partition("[")
        if name:
            parts.append(name)
        parts += [int(i) for i in rest.replace("]", "[").split("[") if i]
    node = root
    try:
        for key in parts[:-1]:
            node = node[key]
        node[parts[-1]]
    except (KeyError, IndexError, TypeError):
        return None, None
    return node, parts[-1]


def _entry(raw: Any, i: int) -> CatalogEntry:
    if not isinstance(raw, Mapping):
        raise KVCalcError(f"catalog: models[{i}] is not an object")
    for key in ("id", "name", "config"):
        if key not in raw:
            raise KVCalcError(f"catalog: models[{i}].{key} missing")
    config = json.loads(json.dumps(raw["config"]))  # a private copy
    return CatalogEntry(
        id=str(raw["id"]),
        name=str(raw["name"]),
        family=str(raw.get("family", "")),
        config=_restore(config, list(raw.get("nonfinite", []))),
        provenance=dict(raw.get("provenance", {})),
        sha256=str(raw.get("sha256", "")),
        sha256_matches_sources=bool(raw.get("sha256_matches_sources", False)),
    )


#: The names of the well-known KV-cache comparison page → the model each of its table rows describes
#: (Mistral-7B is the sliding-window v0.1). Names resolve when their model is preloaded.
PAGE_ALIASES: Mapping[str, str] = {
    "DeepSeek-V3": "deepseek-ai/DeepSeek-V3",
    "DeepSeek-R1": "deepseek-ai/DeepSeek-R1",
    "Kimi-K2": "moonshotai/Kimi-K2-Instruct",
    "GLM-4.5": "zai-org/GLM-4.5",
    "MiniMax-M2.1": "MiniMaxAI/MiniMax-M2.1",
    "Qwen3-235B-A22B": "Qwen/Qwen3-235B-A22B",
    "Qwen2.5-72B": "Qwen/Qwen2.5-72B-Instruct",
    "Qwen2.5-7B": "Qwen/Qwen2.5-7B-Instruct",
    "Llama-3.1-70B": "meta-llama/Llama-3.1-70B",
    "Llama-3.1-8B": "meta-llama/Llama-3.1-8B",
    "Mixtral-8x7B": "mistralai/Mixtral-8x7B-v0.1",
    "Mistral-7B": "mistralai/Mistral-7B-v0.1",
}


class Catalog:
    """Entries in file order with case-insensitive lookup by id, short name or :data:`PAGE_ALIASES` name."""

    def __init__(self, entries: list[CatalogEntry]) -> None:
        self.entries = tuple(entries)
        self._index: dict[str, CatalogEntry] = {}
        for e in self.entries:
            self._index.setdefault(e.id.lower(), e)
        for e in self.entries:
            self._index.setdefault(e.name.lower(), e)
        for alias, hf_id in PAGE_ALIASES.items():
            if hf_id.lower() in self._index:
                self._index.setdefault(alias.lower(), self._index[hf_id.lower()])

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):  # noqa: ANN204 - iterator of entries
        return iter(self.entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.strip().lower() in self._index

    def get(self, name: str) -> CatalogEntry:
        """An entry by hf id or short name (case-insensitive)."""
        key = name.strip().lower() if isinstance(name, str) else ""
        if key in self._index:
            return self._index[key]
        close = [e.name for e in self.entries if key and (key in e.id.lower() or key in e.name.lower())]
        hint = f"; did you mean {', '.join(close[:8])}?" if close else "; `kvcalc models` lists them"
        raise KVCalcError(f"model: {name!r} is not a preloaded model{hint}")

    def model(self, name: str) -> Model:
        """The named entry as a :class:`kvcalc.Model`."""
        return self.get(name).model()


def default_catalog_path() -> Path | None:
    """$KVCALC_MODEL_CONFIGS, else model_configs.json at the repo root or in the working directory."""
    env = os.environ.get(ENV_VAR)
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[1] / FILE_NAME, Path.cwd() / FILE_NAME]
    return next((p for p in candidates if p.is_file()), None)


def _data(source: Any) -> Any:
    if source is None:
        path = default_catalog_path()
        if path is None:
            raise KVCalcError(
                f"catalog: {FILE_NAME} not found (set {ENV_VAR}, or pass its data or path to load_catalog)"
            )
        source = path
    if isinstance(source, Mapping | list):
        return source
    if isinstance(source, str) and source.lstrip().startswith(("{", "[")):
        return json.loads(source)
    try:
        return json.loads(Path(source).read_text(encoding="utf-8"))
    except OSError as exc:
        raise KVCalcError(f"catalog: cannot read {str(source)!r} ({exc.strerror})") from None
    except ValueError as exc:
        raise KVCalcError(f"catalog: {str(source)!r} is not valid JSON ({exc})") from None


def load_catalog(source: Any = None) -> Catalog:
    """The catalog from parsed data (dict with "models", or the list), JSON text, or a path."""
    data = _data(source)
    models = data.get("models") if isinstance(data, Mapping) else data
    if not isinstance(models, list):
        raise KVCalcError("catalog: expected an object with a 'models' list")
    return Catalog([_entry(raw, i) for i, raw in enumerate(models)])


_DEFAULT: Catalog | None = None


def get_model(name: str, catalog: Catalog | Any = None) -> Model:
    """A preloaded model by hf id or short name (default catalog: :func:`default_catalog_path`)."""
    global _DEFAULT
    if catalog is None:
        if _DEFAULT is None:
            _DEFAULT = load_catalog()
        catalog = _DEFAULT
    elif not isinstance(catalog, Catalog):
        catalog = load_catalog(catalog)
    return catalog.model(name)
