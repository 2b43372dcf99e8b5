"""The site's view of GPUs and weights: a thin adapter over kvcalc.gpus and kvcalc.params.

Degrades to "unknown" (None / empty) while those modules are absent, so the charts never depend on them.
"""

from __future__ import annotations

from typing import Any

from kvcalc.dtypes import MODEL_DTYPES as _MODEL_DTYPES
from kvcalc.model import Model

MODEL_DTYPES = _MODEL_DTYPES
DEFAULT_GPU: str | None = None

try:  # pragma: no cover - depends on which modules have landed
    from kvcalc import gpus as _gpus
except ImportError:  # pragma: no cover
    _gpus = None  # type: ignore[assignment]

try:  # pragma: no cover
    from kvcalc import params as _params
except ImportError:  # pragma: no cover
    _params = None  # type: ignore[assignment]


def gpus() -> list[dict[str, Any]]:
    """GPUs the page offers: [{id, name, bytes}]."""
    return []


def gpu(gpu_id: Any) -> dict[str, Any] | None:
    """One GPU by id, or None."""
    return next((g for g in gpus() if g["id"] == gpu_id), None)


def param_counts(model: Model) -> dict[str, int] | None:
    """{total, active} parameter counts, or None when unknown."""
    return None


def weight_bytes(model: Model) -> int | None:
    """Bytes of the checkpoint's weights, or None when unknown."""
    return None
