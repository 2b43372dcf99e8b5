"""The site's view of GPUs and weights: a thin adapter over kvcalc.gpus and kvcalc.params.

Degrades to "unknown" (None / empty) when one of those modules is absent or cannot count a model,
so the charts never depend on them.
"""

from __future__ import annotations

from typing import Any

from kvcalc.dtypes import MODEL_DTYPES as _MODEL_DTYPES
from kvcalc.model import Model

MODEL_DTYPES = _MODEL_DTYPES
DEFAULT_GPU = "h100"

try:
    from kvcalc import params as _params
except ImportError:  # pragma: no cover - only while kvcalc.params is missing
    _params = None  # type: ignore[assignment]

try:
    from kvcalc.gpus import GPUS as _GPUS
except ImportError:  # pragma: no cover - only while kvcalc.gpus is missing
    _GPUS = ()


def gpus() -> list[dict[str, Any]]:
    """GPUs the page offers, in catalog order: [{id, name, bytes, vendor}]."""
    return [{"id": g.key, "name": g.name, "bytes": g.memory_bytes, "vendor": g.vendor} for g in _GPUS]


def gpu(gpu_id: Any) -> dict[str, Any] | None:
    """One GPU by id, or None."""
    return next((g for g in gpus() if g["id"] == gpu_id), None)


def param_counts(model: Model) -> dict[str, Any] | None:
    """{total, active, exact} parameter counts, or None when unknown."""
    if _params is None:
        return None
    try:
        p = _params.count_params(model)
    except Exception:  # an unusual custom config: show "—" rather than fail the row
        return None
    return {"total": p.total, "active": p.active, "exact": p.exact}


def weight_bytes(model: Model, tensor_parallel_size: int = 1) -> dict[str, Any] | None:
    """{bytes, format, description} of the checkpoint's weights on one rank, or None when unknown."""
    if _params is None:
        return None
    try:
        w = _params.weight_bytes(model, tensor_parallel_size=tensor_parallel_size)
    except Exception:  # see param_counts
        return None
    return {"bytes": w.total, "format": w.format, "description": w.description}
