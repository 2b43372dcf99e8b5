"""``kvcalc.plan(model, engine=…)``: a whole-deployment plan under any serving engine.

Each engine has its own memory model and vocabulary, so this asks that engine's planner:

=============  ==========================================  =========================================
engine         planner                                     what it needs
=============  ==========================================  =========================================
``vllm``       :func:`kvcalc.deploy.plan.plan`             ``gpu=`` (``--max-model-len``,
                                                           ``gpu_memory_utilization`` …)
``sglang``     :func:`kvcalc.deploy.sglang_plan.plan_sglang`  ``gpu=`` or ``available_bytes=`` per rank
                                                           (``--mem-fraction-static`` …)
``trtllm``     :func:`kvcalc.engines.trtllm.capacity`      ``free_bytes=`` free per rank after the
                                                           profiling run (``free_gpu_memory_fraction``)
``llama.cpp``  :func:`kvcalc.deploy.llamacpp_plan.plan`    ``quant=`` or ``gguf=``, and ``gpu=``
                                                           (``num_gpus``, ``ram_gb``, ``vram_gib``) or
                                                           ``machine=`` (a Mac: ``m3-max-64gb``);
                                                           ``-c -np -ctk -ctv`` as ``n_ctx``,
                                                           ``n_parallel``, ``type_k``, ``type_v`` …
``ollama``     :func:`kvcalc.deploy.ollama.answer`          as llama.cpp's machine and ``quant=``/``gguf=``;
                                                           ``num_ctx``, ``num_parallel``,
                                                           ``kv_cache_type``, ``flash_attention`` …
                                                           (Ollama v0.32.15 on llama-server)
=============  ==========================================  =========================================

Every planner returns its own result (with ``as_dict()``); ``ideal`` and ``transformers`` are
accountings, not servers, and have no plan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from kvcalc.core.model import Model
from kvcalc.deploy import llamacpp_plan, sglang_plan
from kvcalc.deploy import plan as vllm_plan
from kvcalc.engines import ENGINES, trtllm
from kvcalc.engines.llamacpp import Settings
from kvcalc.errors import KVCalcError

#: llama.cpp context flags (``-c -np -kvu -ctk -ctv -fa --swa-full -b -ub``) as keyword arguments.
LLAMACPP_SETTINGS = frozenset(f.name for f in dataclasses.fields(Settings))


def _trtllm(model: Model, *, free_bytes: int | None = None, **kw: Any) -> Any:
    if free_bytes is None:
        raise KVCalcError("free_bytes: the trtllm plan needs the free bytes per rank after the profiling run")
    return trtllm.capacity(model, free_bytes, **kw)


def _machine(machine: str | llamacpp_plan.Machine | None = None, gpu: Any = None, num_gpus: int = 1,
             ram_gb: int = 64, vram_gib: float | None = None,
             wired_limit_mb: int | None = None) -> llamacpp_plan.Machine:  # fmt: skip
    """A Mac by name, or GPUs from the catalog (or of ``vram_gib``) plus system RAM."""
    if isinstance(machine, str):
        machine = llamacpp_plan.get_machine(machine, wired_limit_mb=wired_limit_mb)
    elif machine is None:
        if gpu is None and vram_gib is None:
            raise KVCalcError("gpu: give gpu= (and num_gpus=) or machine= (a Mac, e.g. 'm3-max-64gb')")
        machine = llamacpp_plan.gpu_machine(gpu, num_gpus, ram_gb, vram_gib)
    return machine


_MACHINE = ("machine", "gpu", "num_gpus", "ram_gb", "vram_gib", "wired_limit_mb")


def _llamacpp(model: Model, **kw: Any) -> Any:
    machine = _machine(**{k: kw.pop(k) for k in _MACHINE if k in kw})
    settings = Settings(**{k: kw.pop(k) for k in list(kw) if k in LLAMACPP_SETTINGS}).checked()
    return llamacpp_plan.plan(model, machine, settings, **kw)


def _ollama(model: Model, **kw: Any) -> Any:
    from kvcalc.deploy import ollama
    from kvcalc.deploy.gpus import get_gpu

    if kw.get("gpu") is not None and kw.get("machine") is None and "cuda" not in kw:
        kw["cuda"] = get_gpu(kw["gpu"]).vendor == "NVIDIA"
    machine = _machine(**{k: kw.pop(k) for k in _MACHINE if k in kw})
    names = {f.name for f in dataclasses.fields(ollama.Settings)}
    settings = ollama.Settings(**{k: kw.pop(k) for k in list(kw) if k in names})
    return ollama.answer(model, machine, settings, **kw)


PLANNERS: dict[str, Callable[..., Any]] = {
    "vllm": vllm_plan.plan,
    "sglang": sglang_plan.plan_sglang,
    "trtllm": _trtllm,
    "llama.cpp": _llamacpp,
    "ollama": _ollama,
}


def plan(model: Model, *, engine: str = "vllm", **kw: Any) -> Any:
    """Does ``model`` fit, and how much cache is left, under ``engine`` (see the table above)."""
    planner = PLANNERS.get(engine) if isinstance(engine, str) else None
    if planner is None:
        serving = ", ".join(PLANNERS)
        if engine in ENGINES:
            raise KVCalcError(f"engine: {engine!r} is an accounting, not a server; plan with {serving}")
        raise KVCalcError(f"engine: unknown engine {engine!r}; plan with one of {serving}")
    if engine == "vllm":
        kw["engine"] = engine
    return planner(model, **kw)
