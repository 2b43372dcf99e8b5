"""Names for the user's own models on the page: useful and unique, so two pasted configs never both
show as "LlamaForCausalLM".

A model gets, in order: the name the user typed; the config's own ``_name_or_path`` (or ``name``) —
kept whole when it is a Hub id ``owner/model``, else its last path component; otherwise
"Custom N (architecture)". Whichever it is, a name already taken gets " (2)", " (3)"… appended.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any

from kvcalc.core.model import Model

MAX_NAME = 200
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_PATH_SEP = re.compile(r"[\\/]+")


def config_name(config: Mapping[str, Any]) -> str | None:
    """The name a config gives itself: ``_name_or_path`` (then ``name``), whole when a Hub id
    ("microsoft/phi-2"), else its last path component ("/ckpt/llama-7b/" → "llama-7b"); None if none."""
    for key in ("_name_or_path", "name"):
        value = config.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        value = value.strip()
        if _HUB_ID.match(value):
            return value[:MAX_NAME]
        last = _PATH_SEP.split(value.rstrip("\\/"))[-1].strip()
        if last:
            return last[:MAX_NAME]
    return None


def unique_name(name: str, taken: Collection[str]) -> str:
    """``name``, or ``name (k)`` with the smallest k ≥ 2 not taken (case-insensitive), within MAX_NAME."""
    used = {t.casefold() for t in taken}
    name = name[:MAX_NAME]
    k = 1
    candidate = name
    while candidate.casefold() in used:
        k += 1
        suffix = f" ({k})"
        candidate = name[: MAX_NAME - len(suffix)] + suffix
    return candidate


def numbered_name(model: Model, taken: Collection[str]) -> str:
    """ "Custom N (LlamaForCausalLM)": the smallest N no taken name uses, then the architecture (or the
    model_type when the config names none)."""
    used = {t.casefold() for t in taken}
    kind = model.architecture or model.model_type or "model"
    n = 1
    while any(u.startswith(f"custom {n} (") for u in used):
        n += 1
    return unique_name(f"Custom {n} ({kind})", taken)


def custom_name(config: Mapping[str, Any], model: Model, typed: str | None, taken: Collection[str]) -> str:
    """The name a newly added model shows: typed (trimmed), else the config's own, else numbered;
    made unique among ``taken``."""
    if typed is not None and typed.strip():
        return unique_name(typed.strip(), taken)
    own = config_name(config)
    if own is not None:
        return unique_name(own, taken)
    return numbered_name(model, taken)
