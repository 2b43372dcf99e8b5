"""``kvcalc plan --engine ollama MODEL --gpu 4090 --quant Q4_K_M``: Ollama's launch and ``ollama ps``.

Ollama's own knobs: ``--num-ctx`` (option ``num_ctx``), ``--num-parallel`` (``OLLAMA_NUM_PARALLEL``),
``--kv-cache-type`` (``OLLAMA_KV_CACHE_TYPE``), ``--flash-attention`` / ``--no-flash-attention``
(``OLLAMA_FLASH_ATTENTION``), ``--num-batch`` (option ``num_batch``), ``--ollama-context-length``
(``OLLAMA_CONTEXT_LENGTH``), ``--gpu-overhead`` (``OLLAMA_GPU_OVERHEAD``, bytes). The machine options
(``--gpu --num-gpus --vram-gib --ram-gb --machine --quant --gguf -ngl``) are llama.cpp's plan options.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kvcalc.cli.common import _emit, _gib, parse_tokens
from kvcalc.deploy import ollama as O

ENGINE = "ollama"


def _tokens(text: str) -> int:
    try:
        return parse_tokens(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def add_plan_options(p: argparse.ArgumentParser) -> None:
    """The Ollama group of ``kvcalc plan`` (shown with ``--engine ollama``)."""
    g = p.add_argument_group(f"Ollama (--engine ollama; {O.RELEASE})")
    g.add_argument("--num-ctx", type=_tokens, help="option num_ctx (default: the VRAM tier)")
    g.add_argument(
        "--ollama-context-length",
        dest="ollama_context_length",
        type=_tokens,
        default=0,
        help="OLLAMA_CONTEXT_LENGTH (default unset)",
    )
    g.add_argument("--num-parallel", type=_whole, default=1, help="OLLAMA_NUM_PARALLEL (default 1)")
    g.add_argument("--kv-cache-type", default="", help="OLLAMA_KV_CACHE_TYPE: f16, q8_0, q4_0 (default f16)")
    g.add_argument(
        "--flash-attention",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="OLLAMA_FLASH_ATTENTION (default unset: llama-server --flash-attn auto)",
    )
    g.add_argument("--num-batch", type=_whole, help="option num_batch (default: Ollama's automatic batch)")
    g.add_argument("--gpu-overhead", type=_whole, default=0, help="OLLAMA_GPU_OVERHEAD in bytes (default 0)")


def run_plan(args: argparse.Namespace) -> int:
    from kvcalc.cli.llamacpp import is_gguf, model_and_machine

    model, header, machine = model_and_machine(args)
    settings = O.Settings(
        num_ctx=args.num_ctx,
        context_length=args.ollama_context_length,
        num_parallel=args.num_parallel,
        kv_cache_type=args.kv_cache_type,
        flash_attention=args.flash_attention,
        num_batch=args.num_batch,
        gpu_overhead=args.gpu_overhead,
    )
    local = args.model if is_gguf(args.model) else args.gguf
    size = Path(local).stat().st_size if local and Path(local).is_file() else None
    cuda = None
    if args.gpu and not args.machine:
        from kvcalc.deploy.gpus import get_gpu

        cuda = get_gpu(args.gpu).vendor == "NVIDIA"  # automatic num_batch: CUDA without flash attention
    ans = O.answer(model, machine, settings, quant=args.quant, gguf=header, file_bytes=size,
                   n_gpu_layers=args.n_gpu_layers, cuda=cuda)  # fmt: skip
    name = model.name if model else header.metadata.get("general.name") or args.model
    data = {"model": name, "engine": ENGINE, "machine": machine.name, **ans.as_dict()}
    return _emit(args, data, lambda: _text(data))


def _text(d: dict[str, Any]) -> str:
    ps, pl = d["ps"], d["plan"]
    env = " ".join(f"{k}={v}" for k, v in d["env"].items())
    lines = [
        f"{d['model']} on {d['machine']} · {d['release']} (llama-server, llama.cpp {d['llama_cpp']})",
        f"assumed: {env}",
        f"num_ctx {d['num_ctx']:,} ({d['num_ctx_source']}) × num_parallel {d['num_parallel']} → "
        f"llama-server {' '.join(d['llama_server_args'])}",
        f"KV cache: {d['kv_bytes']:,} bytes = {_gib(d['kv_bytes'])} GiB (llama.cpp's own arithmetic)",
        f"Ollama's own estimate (PredictServerVRAM, used for GPU choice/eviction/num_batch): "
        f"{d['ollama_predicted_vram_bytes']:,} bytes = {_gib(d['ollama_predicted_vram_bytes'])} GiB",
        f"llama.cpp --fit placement: {pl['offloaded']} · GPU {' + '.join(map(_gib, pl['gpu_bytes']))} GiB"
        f" · CPU {_gib(pl['cpu_bytes'])} GiB · fits: {'yes' if pl['fits'] else 'NO'}",
        "",
        "ollama ps would show:",
        "  SIZE        PROCESSOR    CONTEXT",
        f"  ≥ {ps['size_at_least']:<9} {ps['processor']:<12} {ps['context']}"
        + (
            ""
            if ps["processor"] != "not modelled"
            else f"   (without compute buffers: {ps['processor_without_compute']})"
        ),
        f"  (SIZE ≥ {ps['size_at_least_bytes']:,} bytes = {_gib(ps['size_at_least_bytes'])} GiB: model + KV "
        "buffers; llama-server's compute buffers are added on top and not modelled)",
        "",
        "llama.cpp would print:",
        *[f"  {x}" for x in d["kv_log"]],
        *[f"note: {n}" for n in d["notes"] + pl["notes"]],
    ]
    return "\n".join(lines)
