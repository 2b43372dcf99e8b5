"""The site's view of GPUs and weights: kvcalc.deploy.gpus and kvcalc.core.params as JSON-ready dicts.

A custom config that kvcalc can size the cache of but not count the parameters of still gets its
cache numbers: weights then come back as None (shown as "—").
"""

from __future__ import annotations

from typing import Any

from kvcalc.core import params
from kvcalc.core.dtypes import MODEL_DTYPES
from kvcalc.core.model import Model
from kvcalc.deploy.gpus import GPUS
from kvcalc.errors import KVCalcError

__all__ = ["DEFAULT_GPU", "MODEL_DTYPES", "count", "gpu", "gpus", "param_counts", "weight_bytes"]

DEFAULT_GPU = "h100"
#: What counting parameters or sizing weights raises for a config kvcalc cannot count.
_UNCOUNTABLE = (KVCalcError, ArithmeticError, LookupError, TypeError, ValueError)


def gpus() -> list[dict[str, Any]]:
    """GPUs the page offers, in catalog order: [{id, name, bytes, vendor}]."""
    return [{"id": g.key, "name": g.name, "bytes": g.memory_bytes, "vendor": g.vendor} for g in GPUS]


def gpu(gpu_id: Any) -> dict[str, Any] | None:
    """One GPU by its exact catalog key, or None."""
    return next((g for g in gpus() if g["id"] == gpu_id), None)


def count(model: Model) -> params.ParamCount | None:
    """The model's parameter count, or None when the config cannot be counted."""
    try:
        return params.count_params(model)
    except _UNCOUNTABLE:
        return None


def param_counts(model: Model, counted: params.ParamCount | None = None) -> dict[str, Any] | None:
    """{total, active, exact} parameter counts, or None when the config cannot be counted.
    ``counted``: the result of :func:`count` when already known."""
    p = count(model) if counted is None else counted
    return None if p is None else {"total": p.total, "active": p.active, "exact": p.exact}


def weight_bytes(
    model: Model, tensor_parallel_size: int = 1, counted: params.ParamCount | None = None
) -> dict[str, Any] | None:
    """{bytes, format, description} of the checkpoint's weights on one rank, or None (see above).
    ``counted``: the model's parameter count when already known (counting is the slow part)."""
    try:
        w = params.weight_bytes(model, tensor_parallel_size=tensor_parallel_size, params=counted)
    except _UNCOUNTABLE:
        return None
    return {"bytes": w.total, "format": w.format, "description": w.description}
