"""``kvcalc kv|plan … --engine sglang``: SGLang 0.5.23's vocabulary on the command line.

``kv`` reports each pool's cell (bytes per token per rank, per state slot for Mamba pools) and, with
``--seq-len``, what one request occupies; ``plan`` turns ``--available-bytes`` (the rest memory per rank
SGLang sizes its pools from) or a ``--gpu`` into ``max_total_num_tokens``, the pools, and the line
SGLang logs.
"""

from __future__ import annotations

import argparse
from typing import Any

from kvcalc.cli.common import _emit, _fraction, _gib, _positive, _table, _tokens, resolve_model
from kvcalc.cli.trtllm import _bytes
from kvcalc.deploy.sglang_plan import plan_sglang
from kvcalc.engines import sglang
from kvcalc.errors import KVCalcError

ENGINE = "sglang"
SOURCE = (
    f"SGLang {sglang.SGLANG_VERSION} (pool_configurator.py, kv_cache_configurator.py); see notes/sglang.md"
)


def add_options(p: argparse.ArgumentParser, *, plan: bool) -> None:
    """SGLang server arguments (``--engine sglang``)."""
    g = p.add_argument_group("SGLang (--engine sglang)")
    g.add_argument("--page-size", type=_positive, help="default 1 (64 for DeepSeek DSA)")
    g.add_argument("--swa-full-tokens-ratio", type=_fraction, default=sglang.SWA_FULL_TOKENS_RATIO)
    g.add_argument("--mamba-full-memory-ratio", type=_fraction, default=sglang.MAMBA_FULL_MEMORY_RATIO)
    g.add_argument("--mamba-ssm-dtype", choices=("float32", "bfloat16", "float16"), help="default: config")
    g.add_argument("--disable-radix-cache", action="store_true", help="one state slot per request")
    g.add_argument("--context-length", type=_tokens, help="lower the model's context length")
    if plan:
        g.add_argument(
            "--available-bytes",
            type=_bytes,
            help="bytes per rank SGLang sizes its pools from: free after loading the weights − free before "
            "loading × (1 − mem_fraction_static), e.g. 40GiB",
        )
        g.add_argument("--mem-fraction-static", type=_fraction, help="default: SGLang's for the GPU and tp")
        g.add_argument("--max-running-requests", type=_positive, help="default: from the pool size")
        g.add_argument("--chunked-prefill-size", type=_positive, help="default: by GPU memory tier")


def _options(args: argparse.Namespace, tp: int) -> sglang.Options:
    if getattr(args, "pp", 1) != 1:
        raise KVCalcError("pp: pipeline parallelism is not modelled for SGLang")
    return sglang.Options(
        tensor_parallel_size=tp,
        kv_cache_dtype=args.kv_dtype,
        page_size=args.page_size,
        swa_full_tokens_ratio=args.swa_full_tokens_ratio,
        mamba_full_memory_ratio=args.mamba_full_memory_ratio,
        mamba_ssm_dtype=args.mamba_ssm_dtype,
        max_running_requests=getattr(args, "max_running_requests", None),
        context_length=args.context_length,
        chunked_prefill_size=getattr(args, "chunked_prefill_size", None),
        disable_radix_cache=args.disable_radix_cache,
    )


def _pools_rows(lay: sglang.Layout, tokens: dict[str, Any] | None = None) -> list[list[Any]]:
    rows = []
    for p in lay.pools:
        unit = "per slot" if p.name == "mamba" else "per token"
        row = [p.name, p.layers, f"{p.cell_bytes:,}", unit]
        if tokens is not None:
            row.append("" if tokens.get(p.name) is None else f"{tokens[p.name]:,}")
        rows.append(row)
    return rows


def run_kv(args: argparse.Namespace) -> int:
    """``kvcalc kv MODEL --engine sglang``: cells per pool, and one request's bytes with --seq-len."""
    model = resolve_model(args.model)
    lay = sglang.layout(model, _options(args, args.tp))
    data: dict[str, Any] = {
        "model": model.name,
        "engine": "sglang",
        "sglang_version": sglang.SGLANG_VERSION,
        "tensor_parallel_size": args.tp,
        "kv_cache_dtype": lay.kv_cache_dtype,
        "page_size": lay.page_size,
        "context_len": lay.context_len,
        "configurator": lay.kind,
        "cell_bytes": lay.cell_bytes,
        "cell_size": lay.cell_size,
        "layers": {p.name: p.layers for p in lay.pools},
        "source": SOURCE,
    }
    if lay.indexer_cell_bytes:
        data["indexer_cell_bytes"] = lay.indexer_cell_bytes
    if args.seq_len is not None:
        per_pool = {k: v * args.batch_size for k, v in sglang.request_pool_bytes(lay, args.seq_len).items()}
        total = sum(per_pool.values())
        data |= {"seq_len": args.seq_len, "batch_size": args.batch_size, "bytes_by_pool": per_pool,
                 "bytes": total, "gib": total / sglang.GIB}  # fmt: skip

    def text() -> str:
        head = (
            f"{model.name} · SGLang {sglang.SGLANG_VERSION} · tp {args.tp} (per rank) · "
            f"kv {lay.kv_cache_dtype} · "
            f"page {lay.page_size} · context_len {lay.context_len:,}"
        )
        out = [head, "", _table(["pool", "layers", "cell bytes", ""], _pools_rows(lay))]
        if args.seq_len is not None:
            out += ["", f"{args.seq_len:,} tokens × batch {args.batch_size}: {data['bytes']:,} bytes "
                        f"({_gib(data['bytes'])} GiB) per rank"]  # fmt: skip
        return "\n".join([*out, SOURCE, "GiB = 2^30 bytes"])

    return _emit(args, data, text)


def run_plan(args: argparse.Namespace) -> int:
    """``kvcalc plan MODEL --engine sglang``: pools from --available-bytes, or a launch on --gpu."""
    model = resolve_model(args.model)
    tp = args.tp or args.num_gpus or 1
    pl = plan_sglang(
        model,
        gpu=args.gpu,
        num_gpus=args.num_gpus,
        tensor_parallel_size=tp,
        available_bytes=args.available_bytes,
        mem_fraction_static=args.mem_fraction_static,
        options=_options(args, tp),
        weight_dtype=args.weight_dtype,
    )
    data = pl.as_dict()
    return _emit(args, data, lambda: _plan_text(pl, data))


def _plan_text(pl: Any, d: dict[str, Any]) -> str:
    lay = pl.layout
    where = f" on {pl.num_gpus} × {pl.gpu.name}" if pl.gpu is not None else ""
    out = [
        f"{pl.model}{where} · SGLang {sglang.SGLANG_VERSION} · tp {pl.tensor_parallel_size} · per rank",
        f"kv {lay.kv_cache_dtype} · page_size {lay.page_size} · context_len {lay.context_len:,} · "
        f"configurator {lay.kind}",
        "",
    ]
    rows = []
    if pl.gpu is not None:
        rows.append(["GPU memory (nvidia-smi MiB)", f"{pl.defaults.gpu_mem_mib:,.0f} MiB", ""])
        rows.append(
            [f"mem_fraction_static {pl.mem_fraction_static} ({pl.mem_fraction_static_source})", "", ""]
        )
        rows.append(
            [f"weights ({pl.weights_format}, estimate)", f"{pl.weights_bytes:,}", _gib(pl.weights_bytes)]
        )
    rows.append(["available for the pools", f"{pl.available_bytes:,}", _gib(pl.available_bytes)])
    if pl.sizes.max_mamba_cache_size is not None:
        slots = (pl.sizes.max_mamba_cache_size + 1) * lay.pool("mamba").cell_bytes
        rows.append([f"mamba state ({pl.sizes.max_mamba_cache_size:,} slots + 1)", f"{slots:,}", _gib(slots)])
    out += [_table(["", "bytes", "GiB"], rows), ""]
    tokens = dict(d["pool_tokens"])
    if pl.sizes.max_mamba_cache_size is not None:
        tokens["mamba"] = pl.sizes.max_mamba_cache_size
    out += [_table(["pool", "layers", "cell bytes", "", "tokens / slots"], _pools_rows(lay, tokens)), ""]
    out.append(f"max_running_requests {pl.sizes.max_running_requests:,}")
    if pl.gpu is not None:
        out.append(
            f"launch flags: --tp {pl.tensor_parallel_size} --mem-fraction-static {pl.mem_fraction_static}"
        )
    out.append(f"SGLang would log: {pl.log_line}")
    out += [f"note: {n}" for n in pl.notes]
    if pl.estimated:
        out.append(f"estimated: {', '.join(pl.estimated)}")
    return "\n".join([*out, SOURCE, "GiB = 2^30 bytes"])
