"""Local mode, "will it fit on my machine": the ``local`` op answers with llama.cpp's plan.

Request: ``model`` (``{id, name?, config}``), ``quant`` (llama.cpp type, e.g. ``Q4_K_M``), ``machine``
(``{gpu, count, ram_gb}`` for discrete GPUs plus system RAM, or ``{mac, wired_limit_mb?}`` for an Apple
Silicon Mac), ``n_ctx`` (``-c``), ``n_parallel`` (``-np``), ``type_k`` / ``type_v`` (``-ctk`` / ``-ctv``),
optional ``n_cpu_moe`` (``--n-cpu-moe``: a count or ``"auto"``) and ``n_gpu_layers`` (``-ngl``; default
the largest that fits). Answer: :meth:`kvcalc.deploy.llamacpp_plan.Plan.as_dict` plus the stacked parts
(weights on GPU / on CPU, KV on GPU / on CPU, compute buffer) and the ``llama-server`` line.

The numbers are :func:`kvcalc.deploy.llamacpp_plan.plan`'s: KV exact (llama.cpp's memory module,
kvcalc.engines.llamacpp), weights estimated from the parameter count × the quant's bits per weight,
the compute buffer kept as llama.cpp's ``--fit`` margin (1024 MiB per GPU, common/common.h).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kvcalc.core.fields import check_int
from kvcalc.deploy import llamacpp_plan as P
from kvcalc.deploy.gpus import get_gpu
from kvcalc.deploy.hardware import gpus
from kvcalc.engines import llamacpp as L
from kvcalc.errors import KVCalcError

MAX_GPUS = 16
MAX_RAM_GB = 1 << 16
DEFAULT_QUANT = "Q4_K_M"


def macs() -> list[dict[str, str]]:
    """Every Mac the planner knows, as ``{id, name}`` (id: ``m3-max-64gb``)."""
    out = []
    for chip, sizes in P._APPLE.items():
        for size in sizes:
            out.append(
                {"id": f"{chip.lower().replace(' ', '-')}-{size}gb", "name": f"Apple {chip} {size} GB"}
            )
    return out


def local_catalog() -> dict[str, Any]:
    """What the local panel offers: quant types, cache types, discrete GPUs and Macs."""
    return {
        "quants": list(P.BPW),
        "default_quant": DEFAULT_QUANT,
        "cache_types": list(L.CACHE_TYPES),
        "gpus": [g for g in gpus() if not get_gpu(g["id"]).unified],
        "macs": macs(),
        "fit_margin_bytes": P.FIT_MARGIN,
        "build": L.BUILD,
    }


def machine_of(spec: Any) -> P.Machine:
    """``{gpu, count, ram_gb}`` or ``{mac, wired_limit_mb?}`` → the planner's machine."""
    if not isinstance(spec, Mapping):
        raise KVCalcError("machine: expected {gpu, count, ram_gb} or {mac}")
    if spec.get("mac") is not None:
        limit = spec.get("wired_limit_mb")
        limit = None if limit is None else check_int(limit, "wired_limit_mb", maximum=MAX_RAM_GB * 1024)
        return P.get_machine(str(spec["mac"]), wired_limit_mb=limit)
    gpu = spec.get("gpu")
    if not isinstance(gpu, str):
        raise KVCalcError("machine.gpu: expected a GPU id from the catalog")
    if get_gpu(gpu).unified:
        return P.get_machine(gpu)
    count = check_int(spec.get("count", 1), "machine.count", maximum=MAX_GPUS)
    ram = check_int(spec.get("ram_gb", 64), "machine.ram_gb", maximum=MAX_RAM_GB)
    return P.gpu_machine(gpu, count, ram)


def _moe(value: Any) -> int | str:
    if value in (None, 0):
        return 0
    if value == "auto":
        return "auto"
    return check_int(value, "n_cpu_moe", minimum=0, maximum=1 << 16)


def command(quant: str, s: L.Settings, ngl: int, n_cpu_moe: int, model_name: str) -> str:
    """The ``llama-server`` line of the plan (llama.cpp's own flags)."""
    moe = f" --n-cpu-moe {n_cpu_moe}" if n_cpu_moe else ""
    return (
        f"llama-server -m {model_name}-{quant}.gguf -c {s.n_ctx} -np {s.n_parallel} "
        f"-ctk {s.type_k} -ctv {s.type_v} -ngl {ngl}{moe}"
    )


def parts(pl: dict[str, Any], n_gpus: int, unified: bool) -> list[dict[str, Any]]:
    """The stacked bar: where each byte goes (``where``: "gpu" or "cpu" — on a Mac one memory)."""
    return [
        {"part": "weights", "where": "gpu", "bytes": pl["weights_gpu_bytes"]},
        {"part": "kv", "where": "gpu", "bytes": pl["kv_gpu_bytes"]},
        {"part": "compute", "where": "gpu", "bytes": P.FIT_MARGIN * n_gpus},
        {"part": "weights", "where": "cpu", "bytes": pl["weights_cpu_bytes"]},
        {"part": "kv", "where": "cpu", "bytes": pl["kv_cpu_bytes"]},
    ]


def local(req: Mapping[str, Any], prepared: Any) -> dict[str, Any]:
    """The ``local`` op (``prepared(item, 0)`` parses or reuses the model, as for compare)."""
    if req.get("model") is None:
        raise KVCalcError("model: send one model ({id, config})")
    model_id, prep = prepared(req["model"], 0)
    model = prep.model
    quant = req.get("quant", DEFAULT_QUANT)
    if not isinstance(quant, str):
        raise KVCalcError("quant: expected a llama.cpp type such as Q4_K_M")
    machine = machine_of(req.get("machine"))
    s = L.Settings(
        n_ctx=check_int(req.get("n_ctx", 4096), "n_ctx", minimum=0, maximum=1 << 24),
        n_parallel=check_int(req.get("n_parallel", 1), "n_parallel", maximum=1 << 16),
        type_k=str(req.get("type_k", "f16")),
        type_v=str(req.get("type_v", req.get("type_k", "f16"))),
    ).checked()
    ngl = req.get("n_gpu_layers")
    ngl = None if ngl is None else check_int(ngl, "n_gpu_layers", minimum=0, maximum=1 << 16)
    pl = P.plan(
        model, machine, s, quant=quant, n_gpu_layers=ngl, n_cpu_moe=_moe(req.get("n_cpu_moe"))
    ).as_dict()
    q = P._ALIASES.get(quant.strip().upper(), quant.strip().upper())
    return {
        "model": {"id": model_id, "name": model.name},
        "quant": q,
        "unified": machine.unified,
        "ram_bytes": machine.ram_bytes,
        "settings": {"n_ctx": s.n_ctx, "n_parallel": s.n_parallel, "type_k": s.type_k, "type_v": s.type_v},
        **pl,
        "parts": parts(pl, len(machine.gpu_bytes), machine.unified),
        "command": command(q, s, pl["n_gpu_layers"], pl["n_cpu_moe"], model_id.split("/")[-1]),
        "build": L.BUILD,
    }
