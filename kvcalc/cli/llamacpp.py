"""``kvcalc kv MODEL --engine llama.cpp``: llama.cpp's own flags, its memory module's lines.

``-c N -np K [--kv-unified] -ctk TYPE -ctv TYPE -fa on|off|auto [--swa-full] [-b N] [-ub N]`` as in
llama-cli / llama-server (``-c 0`` = the model's training context, llama.cpp's default). A setting
llama.cpp refuses exits 2 with llama.cpp's reason (kvcalc.engines.llamacpp).
"""

from __future__ import annotations

import argparse
from typing import Any

from kvcalc.cli.common import _emit, _gib, _table, parse_tokens, resolve_model
from kvcalc.core.units import GIB
from kvcalc.engines import llamacpp

ENGINE = "llama.cpp"


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _np(text: str) -> int | str:
    """``-np``: a count, or ``auto`` (llama-server: ``n_parallel = 4`` and ``kv_unified = true``)."""
    return "auto" if str(text).strip().lower() in ("auto", "-1") else _count(text)


def _moe(text: str) -> int | str:
    """``--n-cpu-moe``: a layer count or ``auto``."""
    return "auto" if str(text).strip().lower() == "auto" else _count(text)


def _ctx(text: str) -> int:
    """``-c``: tokens (32768, 32k = 32768, 0 = training context)."""
    if str(text).strip() == "0":
        return 0
    try:
        return parse_tokens(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_kv_options(p: argparse.ArgumentParser) -> None:
    """The llama.cpp flags of ``kvcalc kv`` (group shown with ``--engine llama.cpp``)."""
    g = p.add_argument_group(f"llama.cpp (--engine {ENGINE}; {llamacpp.BUILD})")
    g.add_argument(
        "-c",
        "--ctx-size",
        dest="ctx_size",
        type=_ctx,
        default=None,
        help="context size (default: --seq-len, else 0 = the model's training context)",
    )
    g.add_argument(
        "-np",
        "--parallel",
        dest="n_parallel",
        type=_np,
        help="sequences / slots (default: --batch-size, else 1); auto: llama-server's 4 slots, unified KV",
    )
    g.add_argument(
        "-kvu",
        "--kv-unified",
        dest="kv_unified",
        action="store_true",
        help="one KV buffer shared by all sequences (llama-server's default with -np auto)",
    )
    g.add_argument(
        "-ctk",
        "--cache-type-k",
        dest="cache_type_k",
        default="f16",
        help=f"K cache type: {', '.join(llamacpp.CACHE_TYPES)} (default f16)",
    )
    g.add_argument(
        "-ctv", "--cache-type-v", dest="cache_type_v", default="f16", help="V cache type (default f16)"
    )
    g.add_argument(
        "-fa", "--flash-attn", dest="flash_attn", default="auto", help="on, off or auto (default auto)"
    )
    g.add_argument("--swa-full", dest="swa_full", action="store_true", help="full-size SWA cache")
    g.add_argument(
        "-b", "--n-batch", dest="n_batch", type=_count, default=llamacpp.N_BATCH, help="default 2048"
    )
    g.add_argument(
        "-ub", "--ubatch-size", dest="n_ubatch", type=_count, default=llamacpp.N_UBATCH, help="default 512"
    )


def settings(args: argparse.Namespace) -> llamacpp.Settings:
    """The parsed flags as a llama.cpp context request."""
    n_ctx = args.ctx_size if args.ctx_size is not None else (getattr(args, "seq_len", None) or 0)
    n_parallel = args.n_parallel if args.n_parallel is not None else (getattr(args, "batch_size", None) or 1)
    unified = args.kv_unified
    if n_parallel == "auto":  # tools/server/server.cpp: "n_parallel is set to auto, using 4 and kv_unified"
        n_parallel, unified = 4, True
    return llamacpp.Settings(
        n_ctx=n_ctx,
        n_parallel=n_parallel,
        kv_unified=unified,
        type_k=args.cache_type_k,
        type_v=args.cache_type_v,
        flash_attn=args.flash_attn,
        swa_full=args.swa_full,
        n_batch=args.n_batch,
        n_ubatch=args.n_ubatch,
    )


def is_gguf(source: str) -> bool:
    """A ``.gguf`` path or URL (read through its header, kvcalc.core.gguf)."""
    return str(source).split("?")[0].lower().endswith(".gguf")


def read_gguf(source: str) -> Any:
    from kvcalc.core import gguf

    src = str(source)
    return gguf.read_url(src) if src.startswith(("http://", "https://")) else gguf.read_file(src)


def run_kv(args: argparse.Namespace) -> int:
    """``kvcalc kv MODEL --engine llama.cpp …``; MODEL may be a ``.gguf`` file or URL (header only)."""
    extra: dict[str, Any] = {}
    if is_gguf(args.model):
        from kvcalc.core import gguf

        header = read_gguf(args.model)
        mem = llamacpp.memory(header, settings(args))
        name = header.metadata.get("general.name") or args.model
        extra["weights"] = gguf.summary(header)
    else:
        model = resolve_model(args.model)
        mem = llamacpp.memory(model, settings(args))
        name = model.name
    data: dict[str, Any] = {"model": name, **mem.as_dict(), "gib": mem.bytes / GIB, **extra}
    return _emit(args, data, lambda: _text(data))


def _text(d: dict[str, Any]) -> str:
    head = (
        f"{d['model']} · {d['build']} · n_ctx {d['n_ctx']:,} · n_ctx_seq {d['n_ctx_seq']:,} · "
        f"{d['n_seq_max']} seq / {d['n_stream']} stream(s) · flash_attn {'on' if d['flash_attn'] else 'off'}"
    )
    rows = [
        [
            c["role"],
            f"{c['cells']:,}",
            c["layers"],
            f"{c['type_k']}/{c['type_v']}",
            _gib(c["k_bytes"]),
            _gib(c["v_bytes"]),
            _gib(c["state_bytes"]),
            f"{c['bytes']:,}",
        ]
        for c in d["caches"]
    ]
    table = _table(["cache", "cells", "layers", "types", "K GiB", "V GiB", "state GiB", "bytes"], rows)
    w = d.get("weights")
    weights = []
    if w:
        types = ", ".join(f"{t} {_gib(b)}" for t, b in w["bytes_by_type"].items())
        weights = [f"weights ({w['file_type'] or 'GGUF'}, {w['tensors']} tensors): "
                   f"{w['weight_bytes']:,} bytes = {_gib(w['weight_bytes'])} GiB ({types} GiB)"]  # fmt: skip
    lines = [
        head,
        table,
        f"total: {d['bytes']:,} bytes = {_gib(d['bytes'])} GiB",
        *weights,
        "",
        "llama.cpp would print:",
    ]
    lines += [f"  {x}" for x in d["log"]]
    lines += [f"note: {n}" for n in d["notes"]]
    return "\n".join(lines)


# ------------------------------------------------------------------------- kvcalc plan --engine llama.cpp


def add_plan_options(p: argparse.ArgumentParser) -> None:
    """``plan MODEL --engine llama.cpp --gpu 4090 --quant Q4_K_M -c 32k`` or ``--machine m3-max-64gb``."""
    add_kv_options(p)
    g = p.add_argument_group("llama.cpp placement (--engine llama.cpp)")
    g.add_argument("--quant", help="GGUF quantization, e.g. Q4_K_M, Q8_0, IQ4_XS (weights estimated)")
    g.add_argument("--gguf", help="a local .gguf file or URL: exact weights and architecture from its header")
    g.add_argument("--machine", help="a Mac, e.g. m3-max-64gb, m4-max-128gb (unified memory)")
    g.add_argument("--wired-limit-mb", type=_count, help="Mac: iogpu.wired_limit_mb (default: macOS's)")
    g.add_argument("--vram-gib", type=float, help="a GPU of this many GiB instead of --gpu")
    g.add_argument("--ram-gb", type=_count, default=64, help="system RAM beside the GPUs (default 64)")
    g.add_argument("-ngl", "--n-gpu-layers", dest="n_gpu_layers", type=_count, help="default: as many as fit")
    g.add_argument(
        "-ncmoe",
        "--n-cpu-moe",
        dest="n_cpu_moe",
        type=_moe,
        default=0,
        help="experts of the first N layers in RAM, or 'auto': the fewest that let every layer on the GPU",
    )


def model_and_machine(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """(model or None, GGUF header or None, machine) from MODEL, ``--gguf`` and ``--gpu``/``--machine``."""
    from kvcalc.deploy import llamacpp_plan as P
    from kvcalc.errors import KVCalcError

    if is_gguf(args.model):
        header, model = read_gguf(args.model), None
    else:
        header = read_gguf(args.gguf) if args.gguf else None
        model = resolve_model(args.model)
    if args.machine:
        machine = P.get_machine(args.machine, wired_limit_mb=args.wired_limit_mb)
    elif args.gpu or args.vram_gib:
        machine = P.gpu_machine(args.gpu, args.num_gpus or 1, args.ram_gb, args.vram_gib)
    else:
        raise KVCalcError("gpu: give --gpu NAME [--num-gpus N] or --machine (a Mac, e.g. m3-max-64gb)")
    return model, header, machine


def run_plan(args: argparse.Namespace) -> int:
    from kvcalc.deploy import llamacpp_plan as P

    model, header, machine = model_and_machine(args)
    pl = P.plan(model, machine, settings(args), quant=args.quant, gguf=header,
                n_gpu_layers=args.n_gpu_layers, n_cpu_moe=args.n_cpu_moe)  # fmt: skip
    name = model.name if model else header.metadata.get("general.name") or args.model
    data = {"model": name, "engine": ENGINE, "build": llamacpp.BUILD, **pl.as_dict()}
    return _emit(args, data, lambda: _plan_text(data))


def _plan_text(d: dict[str, Any]) -> str:
    gpus = " + ".join(f"{_gib(b)}" for b in d["gpu_bytes"])
    budget = " + ".join(f"{_gib(b)}" for b in d["gpu_budget_bytes"])
    lines = [
        f"{d['model']} on {d['machine']} · {d['build']}",
        f"-ngl {d['n_gpu_layers']} ({d['offloaded']})"
        + (f" · --n-cpu-moe {d['n_cpu_moe']}" if d["n_cpu_moe"] else ""),
        f"GPU: {gpus} GiB used of {budget} GiB (after the --fit margin) · "
        f"weights {_gib(d['weights_gpu_bytes'])} GiB + KV {_gib(d['kv_gpu_bytes'])} GiB",
        f"CPU/RAM: {_gib(d['cpu_bytes'])} GiB · weights {_gib(d['weights_cpu_bytes'])} GiB + "
        f"KV {_gib(d['kv_cpu_bytes'])} GiB",
        "fits: "
        + (
            "NO"
            if not d["fits"]
            else "yes, all layers on the GPU"
            if d["all_on_gpu"]
            else f"yes, with {d['n_layer'] + 1 - d['n_gpu_layers']} layers on the CPU"
        ),
        "",
        "llama.cpp would print:",
        *[f"  {x}" for x in d["kv_log"]],
        *[f"note: {n}" for n in d["notes"]],
    ]
    return "\n".join(lines)
