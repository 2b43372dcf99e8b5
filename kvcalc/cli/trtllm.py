"""``kvcalc kv|plan … --engine trtllm``: TensorRT-LLM's ``KvCacheConfig`` vocabulary on the command line.

``kv`` prints the blocks one request holds per window pool (kvcalc.engines.trtllm); ``plan`` turns
``--free-bytes`` (free memory per rank after TensorRT-LLM's profiling run, which only the runtime
measures) into ``max_tokens``, blocks and pools, with the lines TensorRT-LLM logs.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from kvcalc.cli.common import _emit, _gib, _positive, _table, _tokens, resolve_model
from kvcalc.core.units import GIB
from kvcalc.engines import trtllm
from kvcalc.errors import KVCalcError

SOURCE = "TensorRT-LLM 1.2 (PyTorch backend, KVCacheManager); see notes/trtllm.md"
_BYTES = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB)?\s*", re.IGNORECASE)
_BYTE_UNITS = {"b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def _bytes(text: str) -> int:
    """A byte count: 76000000000, 70GiB, 512MiB (binary units only)."""
    m = _BYTES.fullmatch(str(text).replace("_", "").replace(",", ""))
    if not m:
        raise argparse.ArgumentTypeError(f"expected bytes such as 80000000000 or 70GiB, got {text!r}")
    value = float(m.group(1)) * _BYTE_UNITS[(m.group(2) or "b").lower()]
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of bytes")
    return int(value)


def _windows(text: str) -> str | list[int]:
    """``--max-attention-window``: comma-separated windows (repeating over layers) or ``model``."""
    if text.strip().lower() == "model":
        return "model"
    try:
        return [_tokens(x) for x in text.split(",")]
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"--max-attention-window: {exc}") from None


def _fraction_below_one(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def add_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``kv`` and ``plan`` with ``--engine trtllm``."""
    g = p.add_argument_group("TensorRT-LLM (--engine trtllm)")
    g.add_argument("--tokens-per-block", type=_positive, default=trtllm.TOKENS_PER_BLOCK, help="default 32")
    g.add_argument("--pp", "--pipeline-parallel-size", dest="pp", type=_positive, default=1, help="default 1")
    g.add_argument("--enable-attention-dp", action="store_true", help="attention data parallel")
    g.add_argument("--max-seq-len", type=_tokens, help="default: the model's max_position_embeddings")
    g.add_argument(
        "--max-attention-window",
        type=_windows,
        help="windows repeating over layers (e.g. 128,131072) or 'model' (the config's sliding windows)",
    )


def add_kv_options(p: argparse.ArgumentParser) -> None:
    add_options(p)
    p.add_argument_group("TensorRT-LLM (--engine trtllm)").add_argument(
        "--phase",
        choices=trtllm.PHASES,
        default="context",
        help="context: blocks after the prompt; generation: after decoding (sliding pools detach)",
    )


def add_plan_options(p: argparse.ArgumentParser) -> None:
    add_options(p)
    g = p.add_argument_group("TensorRT-LLM capacity (--engine trtllm)")
    g.add_argument(
        "--free-bytes", type=_bytes, help="free bytes per rank after the profiling run (e.g. 70GiB)"
    )
    g.add_argument(
        "--free-gpu-memory-fraction", type=_fraction_below_one, default=trtllm.FREE_GPU_MEMORY_FRACTION
    )
    g.add_argument("--max-tokens", type=_tokens, help="KvCacheConfig.max_tokens")
    g.add_argument("--max-gpu-total-bytes", type=_bytes, default=0, help="KvCacheConfig.max_gpu_total_bytes")
    g.add_argument(
        "--free-bytes-at-creation", type=_bytes, help="free bytes when the final KV cache manager is built"
    )


def _config_kw(args: argparse.Namespace, model: Any) -> dict[str, Any]:
    max_seq_len = args.max_seq_len or model.max_position_embeddings
    window = args.max_attention_window
    if window == "model":
        window = trtllm.model_attention_windows(model, max_seq_len or 0)
    return {
        "kv_cache_dtype": args.kv_dtype,
        "tensor_parallel_size": args.tp or getattr(args, "num_gpus", None) or 1,
        "pipeline_parallel_size": args.pp,
        "enable_attention_dp": args.enable_attention_dp,
        "tokens_per_block": args.tokens_per_block,
        "max_seq_len": max_seq_len,
        "max_attention_window": window,
    }


def _pools_text(rows: list[dict[str, Any]], extra: str) -> str:
    return _table(
        ["window", "layers", "bytes/token", "block bytes", extra, "bytes", "GiB"],
        [
            [
                p["window"],
                p["layers"],
                f"{p['bytes_per_token']:,}",
                f"{p['block_bytes']:,}",
                f"{p['blocks']:,}",
            ]
            + [f"{p['bytes']:,}", _gib(p["bytes"])]
            for p in rows
        ],
    )


def run_kv(args: argparse.Namespace) -> int:
    """``kvcalc kv MODEL --engine trtllm``: one request's blocks per pool × batch, per rank."""
    model = resolve_model(args.model)
    kw = _config_kw(args, model)
    cfg = trtllm.make_config(model, **kw)
    lay = trtllm.layout(model, cfg)
    pools = [
        {
            "window": p.window,
            "layers": len(p.layers),
            "bytes_per_token": p.bytes_per_token,
            "block_bytes": p.block_bytes,
            "blocks": trtllm.request_blocks(p, args.seq_len, lay.max_seq_len, args.phase) * args.batch_size,
        }
        for p in lay.pools
    ]
    for p in pools:
        p["bytes"] = p["blocks"] * p["block_bytes"]
    total = sum(p["bytes"] for p in pools)
    data = {
        "model": model.name,
        "engine": "trtllm",
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "phase": args.phase,
        "kv_cache_dtype": cfg.kv_cache_dtype.name,
        "tensor_parallel_size": cfg.tensor_parallel_size,
        "pipeline_parallel_size": cfg.pipeline_parallel_size,
        "enable_attention_dp": cfg.enable_attention_dp,
        "tokens_per_block": cfg.tokens_per_block,
        "max_seq_len": cfg.max_seq_len,
        "bytes": total,
        "gib": total / GIB,
        "bytes_per_token": lay.bytes_per_token,
        "pools": pools,
        "source": SOURCE,
    }

    def text() -> str:
        head = (
            f"{data['model']} · {args.seq_len:,} tokens × batch {args.batch_size} ({args.phase}) · "
            f"kv {data['kv_cache_dtype']} · TensorRT-LLM · tp {cfg.tensor_parallel_size} · "
            f"pp {cfg.pipeline_parallel_size} (per rank, stage 0) · tokens_per_block {cfg.tokens_per_block}"
        )
        foot = f"total {total:,} bytes ({_gib(total)} GiB); {lay.bytes_per_token:,} bytes per token per rank"
        return "\n".join([head, "", _pools_text(pools, "blocks"), "", foot, SOURCE, "GiB = 2^30 bytes"])

    return _emit(args, data, text)


def run_plan(args: argparse.Namespace) -> int:
    """``kvcalc plan MODEL --engine trtllm --free-bytes X``: KvCacheCreator + KVCacheManager sizing."""
    if args.free_bytes is None:
        raise KVCalcError(
            "free_bytes: --engine trtllm needs --free-bytes (free bytes per rank after profiling)"
        )
    model = resolve_model(args.model)
    cap = trtllm.capacity(
        model,
        args.free_bytes,
        free_gpu_memory_fraction=args.free_gpu_memory_fraction,
        max_tokens=args.max_tokens,
        max_gpu_total_bytes=args.max_gpu_total_bytes,
        free_bytes_at_creation=args.free_bytes_at_creation,
        **_config_kw(args, model),
    )
    pools = [
        {
            "window": p.window,
            "layers": len(p.layers),
            "bytes_per_token": p.block_bytes // args.tokens_per_block,
            "block_bytes": p.block_bytes,
            "blocks": p.blocks,
            "tokens": p.tokens,
            "bytes": p.bytes,
        }
        for p in cap.pools
    ]
    logs = [f"Estimated max memory in KV cache : {cap.kv_cache_max_memory / GIB:.2f} GiB"]
    if len(cap.pools) == 1 and args.kv_dtype.strip().lower() != "nvfp4":
        logs.append(
            f"[MemUsageChange] Allocated {cap.pool_bytes / GIB:.2f} GiB for max tokens in paged KV cache "
            f"({cap.pools[0].tokens})."
        )
    data = {
        "model": model.name,
        "engine": "trtllm",
        "free_bytes": cap.free_bytes,
        "free_gpu_memory_fraction": cap.free_gpu_memory_fraction,
        "kv_cache_max_memory": cap.kv_cache_max_memory,
        "max_tokens": cap.max_tokens,
        "estimate_bytes_per_token": cap.estimate_bytes_per_token,
        "bytes_per_token": cap.bytes_per_token,
        "blocks": cap.blocks,
        "pool_bytes": cap.pool_bytes,
        "max_seq_len": cap.max_seq_len,
        "pools": pools,
        "log": logs,
        "source": SOURCE,
    }

    def text() -> str:
        rows = [
            ["free after profiling (--free-bytes)", f"{cap.free_bytes:,}", _gib(cap.free_bytes)],
            [f"× free_gpu_memory_fraction {cap.free_gpu_memory_fraction}", "", ""],
            ["= kv_cache_max_memory", f"{cap.kv_cache_max_memory:,}", _gib(cap.kv_cache_max_memory)],
            ["pools (primary blocks)", f"{cap.pool_bytes:,}", _gib(cap.pool_bytes)],
        ]
        out = [f"{model.name} · TensorRT-LLM · per rank", "", _table(["", "bytes", "GiB"], rows), ""]
        out += [_pools_text(pools, "blocks"), ""]
        out.append(
            f"max_tokens {cap.max_tokens:,} (budget / {cap.estimate_bytes_per_token:,} B estimate) · "
            f"{cap.blocks:,} blocks · max_seq_len {cap.max_seq_len:,}"
        )
        out += [f"log: {line}" for line in logs]
        out += [SOURCE, "GiB = 2^30 bytes"]
        return "\n".join(out)

    return _emit(args, data, text)
