"""Turn a Hugging Face model (hub id or local directory) into a kvcalc catalog entry.

    python -m kvcalc.generate_config --model meta-llama/Llama-3.1-8B
    python -m kvcalc.generate_config --model configs/Qwen/Qwen3-8B
    python kvcalc/generate_config.py --model <model-name> --fields seed > model_config.json

``--fields seed`` prints the four fields LMCache's ``generate_config.py`` prints (``hidden_size``,
``num_attention_heads``, ``num_hidden_layers``, ``num_key_value_heads``, null when absent) instead of
the whole entry; ``kvcalc kv FILE`` reads either output back.

Uses ``transformers.AutoConfig`` (the ``config`` extra; imported lazily) to resolve and check the
config, then prints one JSON entry: ``id``, ``name``, ``family``, the original ``config`` dict, the
sha256 of config.json, and ``normalised`` — the fields kvcalc derives (layers by cache kind, KV heads,
head_dim, dtype, parameters, KV bytes per token). Remote-code model types (``kimi_k2``) are resolved
through the transformers class named in ``architectures``. Any failure prints ``{"error": "..."}``
and exits 1; a model that cannot be found keeps the older tool's wording ("Can't load config for
'<model-name>'. Make sure that '<model-name>' is the correct path to a directory containing a
config.json file") followed by the reason. ``HF_HUB_OFFLINE=1`` (or ``--offline``) makes a missing id
fail fast without network.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python kvcalc/generate_config.py …` from a checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kvcalc.errors import KVCalcError

__all__ = ["SEED_FIELDS", "generate_entry", "main", "seed_fields"]

#: The fields LMCache's examples/kv_cache_calculator/generate_config.py prints (its README's JSON format).
SEED_FIELDS = ("hidden_size", "num_attention_heads", "num_hidden_layers", "num_key_value_heads")

_FAMILIES = {
    "deepseek-ai": "DeepSeek", "meta-llama": "Llama", "qwen": "Qwen", "mistralai": "Mistral",
    "moonshotai": "Kimi", "zai-org": "GLM", "minimaxai": "MiniMax", "openai": "gpt-oss", "nvidia": "Nemotron",
    "allenai": "OLMo", "google": "Gemma", "microsoft": "Phi",
}  # fmt: skip


def _transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise KVCalcError("transformers is not installed: pip install 'kvcalc[config]'") from None
    transformers.utils.logging.set_verbosity_error()
    return transformers


def _config_path(transformers: Any, model_id: str, revision: str | None) -> Path:
    """Local path of config.json (a directory, a file, or the hub cache)."""
    local = Path(model_id)
    if local.is_dir():
        local = local / "config.json"
    if local.is_file():
        return local
    repo_copy = _repo_config(model_id)
    if repo_copy is not None:
        return repo_copy
    if transformers is None:
        need = "fetching it needs transformers: pip install 'kvcalc[config]'"
        raise KVCalcError(f"{cant_load(model_id)} ({need})")
    from transformers.utils import cached_file

    try:
        path = cached_file(model_id, "config.json", revision=revision)
    except Exception as exc:  # noqa: BLE001 - hub / offline / auth errors all become one message
        raise KVCalcError(f"{cant_load(model_id)} ({_first_line(exc)})") from None
    if path is None:
        raise KVCalcError(f"{cant_load(model_id)} (it has no config.json)")
    return Path(path)


def _repo_config(model_id: str) -> Path | None:
    """The repository's own copy (configs/<org>/<name>/config.json) of a preloaded model, by id or name."""
    from kvcalc.core.catalog import default_catalog_path, load_catalog

    hf_id = model_id
    catalog_path = default_catalog_path()
    if catalog_path is not None:
        catalog = load_catalog(catalog_path)
        if model_id in catalog:
            hf_id = catalog.get(model_id).id
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", hf_id):
        return None
    path = Path(__file__).resolve().parents[1] / "configs" / hf_id / "config.json"
    return path if path.is_file() else None


def cant_load(model_id: str) -> str:
    """The older tool's (and transformers') sentence for a model whose config cannot be found."""
    return (
        f"Can't load config for '{model_id}'. Make sure that '{model_id}' is the correct path to a "
        "directory containing a config.json file"
    )


def seed_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The four-field form: :data:`SEED_FIELDS` from the text config (null when absent)."""
    from kvcalc.core.config import text_config

    text, _ = text_config(config)
    return {key: text.get(key) for key in SEED_FIELDS}


def _check_with_autoconfig(transformers: Any, raw: dict[str, Any], path: Path, trust: bool) -> str:
    """Resolve the config with AutoConfig (remote-code types via ``architectures``); its model_type."""
    try:
        return transformers.AutoConfig.from_pretrained(str(path.parent), trust_remote_code=trust).model_type
    except Exception as exc:  # noqa: BLE001 - fall back to the architecture class below
        model_type = _type_of_architecture(raw.get("architectures"))
        if model_type is None:
            raise KVCalcError(f"AutoConfig cannot read it: {_first_line(exc)}") from None
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    data = {k: copy.deepcopy(v) for k, v in raw.items() if k not in ("auto_map", "model_type")}
    return CONFIG_MAPPING[model_type].from_dict(data).model_type  # transformers edits nested dicts


def _type_of_architecture(architectures: Any) -> str | None:
    """The transformers model_type whose model class is named in ``architectures`` (no torch import)."""
    from transformers.models.auto import modeling_auto

    names: dict[str, str] = {}
    for mapping in ("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES", "MODEL_MAPPING_NAMES"):
        for model_type, cls in getattr(modeling_auto, mapping, {}).items():
            for c in cls if isinstance(cls, tuple | list) else (cls,):
                names.setdefault(c, model_type)
    for arch in architectures if isinstance(architectures, list) else ():
        if arch in names:
            return names[arch]
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _finite(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become strings (strict JSON has no Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _normalised(raw: dict[str, Any], name: str) -> dict[str, Any]:
    """What kvcalc reads from the config."""
    import kvcalc
    from kvcalc.core.params import count_params

    model = kvcalc.load_model(raw, name=name)
    params = count_params(model)
    return {
        "model_type": model.model_type,
        "architecture": model.architecture,
        "layers": len(model.layers),
        "kinds": model.kinds(),
        "dtype": model.dtype,
        "max_position_embeddings": model.max_position_embeddings,
        "kv_bytes_per_token": kvcalc.kv_bytes_per_token(model, model.dtype),
        "params": params.total,
        "active_params": params.active,
        "params_exact": params.exact,
        "verified": model.verified,
    }


def generate_entry(
    model_id: str, *, revision: str | None = None, trust_remote_code: bool = False
) -> dict[str, Any]:
    """The catalog entry for a hub id or local directory (raises KVCalcError on any failure)."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise KVCalcError("model: expected a Hugging Face id or a directory")
    try:
        transformers = _transformers()
    except KVCalcError:
        transformers = None  # local and preloaded configs are read without it (no AutoConfig check)
    path = _config_path(transformers, model_id.strip(), revision)
    data = path.read_bytes()
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise KVCalcError(f"{path}: not valid JSON ({exc})") from None
    model_type = _check_with_autoconfig(transformers, raw, path, trust_remote_code) if transformers else None
    local = Path(model_id).exists() or _repo_config(model_id.strip()) is not None
    hf_id = model_id.strip() if not local else "/".join(path.resolve().parent.parts[-2:])
    name = hf_id.rsplit("/", 1)[-1]
    return {
        "id": hf_id,
        "name": name,
        "family": _FAMILIES.get(hf_id.split("/", 1)[0].lower(), hf_id.split("/", 1)[0]),
        "config": _finite(raw),
        "sha256": hashlib.sha256(data).hexdigest(),
        "transformers_model_type": model_type,
        "normalised": _normalised(raw, name),
    }


def main(argv: list[str] | None = None) -> int:
    """CLI: print the entry as JSON, or ``{"error": ...}`` and exit 1."""
    prog = "python -m kvcalc.generate_config"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="Hugging Face id, or a directory with config.json")
    parser.add_argument("--revision", help="hub revision (branch, tag or commit)")
    parser.add_argument("--trust-remote-code", action="store_true", help="let AutoConfig run the repo's code")
    parser.add_argument("--offline", action="store_true", help="never touch the network (HF_HUB_OFFLINE=1)")
    parser.add_argument("--fields", choices=("entry", "seed"), default="entry",
                        help="entry: the whole catalog entry (default); seed: the four fields of the "
                        "older generate_config.py")  # fmt: skip
    args = parser.parse_args(argv)
    if args.offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        entry = generate_entry(args.model, revision=args.revision, trust_remote_code=args.trust_remote_code)
    except KVCalcError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    except Exception as exc:  # noqa: BLE001 - the contract is one JSON error line, never a traceback
        print(json.dumps({"error": f"{type(exc).__name__}: {_first_line(exc)}"}))
        return 1
    out = seed_fields(entry["config"]) if args.fields == "seed" else entry
    print(json.dumps(out, indent=1 if args.fields == "entry" else 4, ensure_ascii=False, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
