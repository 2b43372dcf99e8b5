"""The browser's only door into kvcalc: JSON in, JSON out."""

from __future__ import annotations

import json
from typing import Any

import kvcalc
from kvcalc.errors import KVCalcError


def _handle(req: dict[str, Any]) -> dict[str, Any]:
    op = req.get("op")
    if op == "version":
        return {"version": kvcalc.__version__}
    raise KVCalcError(f"op: unknown operation {op!r}")


def compute(request_json: str) -> str:
    """Answer one JSON request; errors come back as {"ok": false, "error": ...}."""
    try:
        req = json.loads(request_json)
        if not isinstance(req, dict):
            raise KVCalcError("request: must be a JSON object")
        return json.dumps({"ok": True, **_handle(req)})
    except (KVCalcError, json.JSONDecodeError) as exc:
        return json.dumps({"ok": False, "error": str(exc)})
