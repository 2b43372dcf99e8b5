"""Command line: ``kvcalc kv | plan | recommend | compare | models | config``, and ``kv-cache-calc``.

MODEL is a preloaded name (``DeepSeek-V3`` or ``deepseek-ai/DeepSeek-V3``, case-insensitive), a path
to a config.json (or its folder), or a Hugging Face id (fetched with transformers: the ``config`` extra).
Token counts take ``32768``, ``32k``, ``128K``, ``1M``: k = 1024 and M = 1024², as context lengths are
named (128k = 131,072). Tables state their units (GiB = 2^30 bytes); ``--json`` prints machine output.
Bad arguments print one line on stderr and exit 2.

Subcommands are registered from :data:`COMMANDS`, a list of ``(name, register)`` pairs; a module
``kvcalc.cli.measure`` with ``register(subparsers)`` is picked up automatically as ``kvcalc measure``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import kvcalc
from kvcalc.cli import llamacpp as llamacpp_cli
from kvcalc.cli import ollama as ollama_cli
from kvcalc.cli import sglang as sglang_cli
from kvcalc.cli import trtllm as trtllm_cli
from kvcalc.cli.common import (
    TOKENS_HELP,
    _add_json,
    _catalog,
    _emit,
    _fraction,
    _gib,
    _Parser,
    _positive,
    _table,
    _tokens,
    parse_tokens,
    resolve_model,
)
from kvcalc.core.model import encoder_seq_len, fixed_encoder_len, with_encoder_seq_len
from kvcalc.core.units import GIB, fmt_token_bytes, fmt_tokens
from kvcalc.engines import kv_bytes_per_token_short
from kvcalc.errors import KVCalcError

__all__ = ["COMMANDS", "main", "parse_tokens", "resolve_model", "seed_main"]

#: engines ``kvcalc kv --engine`` accepts: the registered ones and llama.cpp's (kvcalc.cli.llamacpp)
_KV_ENGINES = tuple(dict.fromkeys((*kvcalc.ENGINES, sglang_cli.ENGINE, llamacpp_cli.ENGINE)))


def _tokens_label(n: int) -> str:
    short = fmt_tokens(n)
    return f"{n:,}" if short == f"{n:,}" else f"{n:,} ({short})"


# ------------------------------------------------------------------------------------------------
# kvcalc kv


def _register_kv(sub: Any) -> None:
    p = sub.add_parser("kv", help="KV cache bytes of one model", description="KV cache (and state) bytes.")
    p.add_argument("model", help="preloaded name, config.json path, or Hugging Face id")
    p.add_argument(
        "--seq-len",
        type=_tokens,
        help=TOKENS_HELP + " (required, except with -c for llama.cpp and with --engine sglang)",
    )
    p.add_argument("--batch-size", type=_positive, default=1, help="concurrent sequences (default 1)")
    p.add_argument(
        "--kv-dtype",
        "--kv-cache-dtype",
        dest="kv_dtype",
        default="auto",
        help="cache dtype: auto (model dtype), bf16, fp8, … (default auto)",
    )
    p.add_argument("--engine", default="ideal", choices=_KV_ENGINES, help="accounting (default ideal)")
    p.add_argument(
        "--tp", "--tensor-parallel-size", dest="tp", type=_positive, default=1, help="per-GPU bytes"
    )
    p.add_argument("--block-size", type=_positive, default=16, help="vLLM block size (default 16)")
    p.add_argument("--max-num-batched-tokens", type=_positive, default=8192, help="vLLM (default 8192)")
    p.add_argument("--no-prefix-caching", action="store_true", help="vLLM: prefix caching off")
    p.add_argument("--per-layer", action="store_true", help="also list every layer")
    p.add_argument(
        "--encoder-seq-len",
        type=_tokens,
        help="encoder-decoder models: encoder positions the cross-attention caches "
        "(default: the model's fixed length, e.g. Whisper 1500, else --seq-len)",
    )
    trtllm_cli.add_kv_options(p)
    llamacpp_cli.add_kv_options(p)
    sglang_cli.add_options(p, plan=False)
    _add_json(p)
    p.set_defaults(func=_run_kv)


def _run_kv(args: argparse.Namespace) -> int:
    if args.engine == llamacpp_cli.ENGINE:
        return llamacpp_cli.run_kv(args)
    if llamacpp_cli.is_gguf(args.model):
        raise KVCalcError(f"model: a GGUF file is read with --engine {llamacpp_cli.ENGINE}")
    if args.engine == sglang_cli.ENGINE:
        return sglang_cli.run_kv(args)
    if args.seq_len is None:
        raise KVCalcError("the following arguments are required: --seq-len")
    if args.engine == "trtllm":
        return trtllm_cli.run_kv(args)
    model = resolve_model(args.model)
    kv_dtype = model.dtype if args.kv_dtype.strip().lower() == "auto" else args.kv_dtype
    kw = {
        "batch_size": args.batch_size,
        "kv_dtype": kv_dtype,
        "engine": args.engine,
        "tensor_parallel_size": args.tp,
        "block_size": args.block_size,
        "max_num_batched_tokens": args.max_num_batched_tokens,
        "enable_prefix_caching": not args.no_prefix_caching,
    }
    fixed = fixed_encoder_len(model)
    if args.encoder_seq_len is not None:  # every figure below (growth per token too) uses it
        model = with_encoder_seq_len(model, args.encoder_seq_len)
    enc = encoder_seq_len(model, args.seq_len)
    layers = kvcalc.layer_bytes(model, args.seq_len, **kw)
    total = sum(layers)
    kinds: dict[str, dict[str, int]] = {}
    for layer, size in zip(model.layers, layers, strict=True):
        row = kinds.setdefault(layer.kind, {"layers": 0, "bytes": 0})
        row["layers"] += 1
        row["bytes"] += size
    per_token = kvcalc.kv_bytes_per_token(model, kv_dtype, tensor_parallel_size=args.tp)
    short = kv_bytes_per_token_short(model, kv_dtype, tensor_parallel_size=args.tp)
    data = {
        "model": model.name,
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "kv_dtype": kvcalc.get_dtype(kv_dtype).name,
        "engine": args.engine,
        "tensor_parallel_size": args.tp,
        "bytes": total,
        "gib": total / GIB,
        "bytes_per_token": per_token,
        "bytes_per_token_short": short,
        "by_kind": kinds,
        "verified": model.verified,
        "notes": list(model.notes),
    }
    if enc is not None:
        data["encoder_seq_len"] = enc
        data["encoder_seq_len_source"] = (
            "given" if args.encoder_seq_len is not None
            else "fixed by the model" if fixed else "= seq_len"
        )  # fmt: skip
    if args.per_layer:
        data["layers"] = layers
    return _emit(args, data, lambda: _kv_text(data, model))


def _kv_text(d: dict[str, Any], model: kvcalc.Model) -> str:
    head = (
        f"{d['model']} · {_tokens_label(d['seq_len'])} tokens × batch {d['batch_size']} · "
        f"kv {d['kv_dtype']} · engine {d['engine']}"
        + (f" · tp {d['tensor_parallel_size']} (per GPU)" if d["tensor_parallel_size"] > 1 else "")
    )
    rows = [[k, v["layers"], f"{v['bytes']:,}", _gib(v["bytes"])] for k, v in d["by_kind"].items()]
    rows.append(["total", len(model.layers), f"{d['bytes']:,}", _gib(d["bytes"])])
    out = [head, "", _table(["kind", "layers", "bytes", "GiB"], rows), ""]
    growth = fmt_token_bytes(d["bytes_per_token_short"], d["bytes_per_token"])
    out.append(f"growth per token: {growth} bytes")
    if "encoder_seq_len" in d:
        out.append(f"encoder length: {d['encoder_seq_len']:,} positions ({d['encoder_seq_len_source']})")
    if "layers" in d:
        out += [
            "",
            _table(
                ["layer", "kind", "bytes"],
                [[i, model.layers[i].kind, f"{b:,}"] for i, b in enumerate(d["layers"])],
            ),
        ]
    out += [f"note: {n}" for n in d["notes"]]
    out.append("GiB = 2^30 bytes")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------
# kvcalc plan / recommend


def _plan_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kv-dtype", default="auto", help="cache dtype (default auto = model dtype)")
    p.add_argument("--weight-dtype", help="weight format (default: the checkpoint's, e.g. fp8_block, mxfp4)")
    p.add_argument("--batch-size", type=_positive, help="concurrent requests that must fit at max-model-len")
    p.add_argument(
        "--gpu-memory-utilization",
        type=_fraction,
        help="vLLM (default: the release's, 0.92 since 0.28, 0.9 before)",
    )
    p.add_argument(
        "--vllm-version",
        help="vLLM release whose behaviours to model (default: the newest modelled; docs/vllm_versions.md)",
    )
    p.add_argument("-dp", "--data-parallel-size", type=_positive, help="vLLM data-parallel replicas")
    p.add_argument(
        "--speculative-config",
        help='vLLM JSON, e.g. \'{"method": "eagle"}\' (draft layers keep KV; MTP from the config)',
    )
    p.add_argument(
        "--kv-cache-memory", type=_positive, help="vLLM fixed KV budget in bytes (skips utilization)"
    )
    p.add_argument("--enforce-eager", action="store_true", help="vLLM: no CUDA graphs")
    p.add_argument(
        "--max-num-batched-tokens",
        type=_positive,
        default=8192,
        help="vLLM (default 8192; `vllm serve` uses 2048 on GPUs under 70 GiB)",
    )
    p.add_argument("--max-num-seqs", type=_positive, help="vLLM (default 1024 on ≥70 GiB GPUs, else 256)")
    p.add_argument("--block-size", type=_positive, default=16, help="vLLM block size (default 16)")
    p.add_argument("--no-prefix-caching", action="store_true", help="vLLM: prefix caching off")
    p.add_argument(
        "--checkpoint",
        default="auto",
        help="weights from safetensors headers: a folder or Hugging Face id; 'auto' (default) reads the "
        "model's own when it is a folder or a Hugging Face id; 'none' counts them from config.json",
    )
    _add_json(p)


def _checkpoint(args: argparse.Namespace, model: kvcalc.Model) -> tuple[Any, list[str]]:
    """The checkpoint ``--checkpoint`` names (None for 'none'), and a note when 'auto' found none.

    'auto' tries the model argument itself when it is a folder with safetensors files or a Hugging Face
    id; a failure there falls back to config.json with a note. An explicit folder or id must work."""
    from kvcalc.core import checkpoint, hub

    choice = (args.checkpoint or "auto").strip()
    if choice.lower() == "none":
        return None, []
    if choice.lower() != "auto":
        return checkpoint.load_checkpoint(choice, model.config), []
    spec = Path(args.model)
    if spec.is_dir() and any(spec.glob("*.safetensors")):
        return checkpoint.from_folder(spec, model.config), []
    if spec.is_dir() or spec.is_file() or hub.parse_hub_id(args.model) is None:
        return None, []
    try:
        return checkpoint.from_hub(args.model, model.config), []
    except KVCalcError as exc:
        return None, [f"weights counted from config.json: checkpoint not read ({exc})"]


def _plan_kw(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "kv_dtype": args.kv_dtype,
        "weight_dtype": args.weight_dtype,
        "batch_size": args.batch_size,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "max_num_batched_tokens": args.max_num_batched_tokens,
        "max_num_seqs": args.max_num_seqs,
        "block_size": args.block_size,
        "enable_prefix_caching": False if args.no_prefix_caching else None,
        "vllm_version": args.vllm_version,
        "pipeline_parallel_size": getattr(args, "pp", 1),  # --pp (shared with --engine trtllm)
        "data_parallel_size": args.data_parallel_size,
        "speculative_config": args.speculative_config,
        "kv_cache_memory": args.kv_cache_memory,
        "enforce_eager": args.enforce_eager,
    }


def _register_plan(sub: Any) -> None:
    p = sub.add_parser(
        "plan",
        help="does it fit under vLLM, and how many requests",
        description="Whole-deployment memory plan under vLLM (per GPU).",
    )
    p.add_argument("model", help="preloaded name, config.json path, or Hugging Face id")
    p.add_argument("--gpu", help="GPU name, e.g. H100, H200, B200, A100-80GB, L40S, 4090, MI300X")
    p.add_argument(
        "--engine",
        default="vllm",
        choices=("vllm", "trtllm", sglang_cli.ENGINE, llamacpp_cli.ENGINE, ollama_cli.ENGINE),
        help="serving engine (default vllm)",
    )
    p.add_argument("--max-model-len", type=_tokens, help=f"{TOKENS_HELP}; default: the model's maximum")
    p.add_argument("--num-gpus", type=_positive, help="GPUs in total (default tp × pp × dp)")
    p.add_argument(
        "--tp",
        "--tensor-parallel-size",
        dest="tp",
        type=_positive,
        help="tensor-parallel size (default: --num-gpus)",
    )
    _plan_options(p)
    trtllm_cli.add_plan_options(p)
    llamacpp_cli.add_plan_options(p)
    ollama_cli.add_plan_options(p)
    sglang_cli.add_options(p, plan=True)
    p.set_defaults(func=_run_plan)


def _run_plan(args: argparse.Namespace) -> int:
    from kvcalc.deploy.plan import plan

    if args.engine == "trtllm":
        return trtllm_cli.run_plan(args)
    if args.engine == llamacpp_cli.ENGINE:
        return llamacpp_cli.run_plan(args)
    if args.engine == ollama_cli.ENGINE:
        return ollama_cli.run_plan(args)
    if args.engine == sglang_cli.ENGINE:
        return sglang_cli.run_plan(args)
    if not args.gpu:
        raise KVCalcError("gpu: --gpu is required with --engine vllm")
    model = resolve_model(args.model)
    ck, notes = _checkpoint(args, model)
    pl = plan(
        model,
        gpu=args.gpu,
        num_gpus=args.num_gpus,
        tensor_parallel_size=args.tp,
        max_model_len=args.max_model_len,
        checkpoint=ck,
        **_plan_kw(args),
    )
    pl = replace(pl, notes=(*pl.notes, *notes))
    _emit(args, pl.as_dict(), lambda: _plan_text(pl))
    return 0


def _vllm_span(name: str) -> str:
    from kvcalc.deploy.vllm_versions import get_vllm_version

    return get_vllm_version(name).span


def _plan_text(pl: Any) -> str:
    where = f"{pl.num_gpus} × {pl.gpu_name}" + (
        f" (tp {pl.tensor_parallel_size}"
        + (f", pp {pl.pipeline_parallel_size}" if getattr(pl, "pipeline_parallel_size", 1) > 1 else "")
        + (f", {pl.replicas} replicas)" if pl.replicas > 1 else ")")
        if pl.num_gpus > 1
        else ""
    )
    head = [
        f"{pl.model} on {where} · vLLM {_vllm_span(pl.vllm_version)} rules · "
        f"max_model_len {_tokens_label(pl.max_model_len)}",
        f"weights {pl.weight_format} · kv cache {pl.kv_dtype} · "
        f"gpu_memory_utilization {pl.gpu_memory_utilization}",
        f"weights from {pl.weights_source}",
        "",
    ]
    rows = [
        ["GPU memory (runtime total)", "", f"{pl.gpu_memory_bytes:,}", _gib(pl.gpu_memory_bytes)],
        [
            f"requested (× {pl.gpu_memory_utilization})",
            "",
            f"{pl.requested_bytes:,}",
            _gib(pl.requested_bytes),
        ],
        [f"− weights ({pl.weight_format})", "~", f"{pl.weights_bytes:,}", _gib(pl.weights_bytes)],
        ["− rotary cos/sin cache", "~", f"{pl.buffers_bytes:,}", _gib(pl.buffers_bytes)],
        ["− activation peak", "~", f"{pl.activation_bytes:,}", _gib(pl.activation_bytes)],
        ["− non-torch (CUDA context, NCCL)", "~", f"{pl.non_torch_bytes:,}", _gib(pl.non_torch_bytes)],
        ["− CUDA graphs", "~", f"{pl.cudagraph_bytes:,}", _gib(pl.cudagraph_bytes)],
        ["= KV cache budget", "", f"{pl.kv_budget_bytes:,}", _gib(pl.kv_budget_bytes)],
    ]
    out = head + [_table(["per GPU", "", "bytes", "GiB"], rows), ""]
    if pl.bytes_per_block:
        out += [
            f"KV blocks: {pl.num_blocks:,} × {pl.bytes_per_block:,} bytes "
            f"({pl.group_size} layers × {pl.page_bytes:,}-byte pages)",
            f"one request at {pl.max_model_len:,} tokens: {pl.blocks_per_request:,} blocks, "
            f"{pl.per_request_bytes:,} bytes ({_gib(pl.per_request_bytes)} GiB)",
            f"maximum concurrency: {pl.max_concurrency:.2f}× · GPU KV cache size: {pl.kv_tokens:,} tokens",
            f"range from the published overhead spread: budget {_gib(pl.kv_budget_range[0])}–"
            f"{_gib(pl.kv_budget_range[1])} GiB, {pl.kv_tokens_range[0]:,}–{pl.kv_tokens_range[1]:,} tokens",
            f"max batch at {pl.max_model_len:,} tokens: {pl.max_batch:,} · max context for one request: "
            f"{pl.max_context:,} tokens",
        ]
    out += ["", ("✔ " if pl.fits else "✘ ") + pl.message]
    out += [f"note: {n}" for n in pl.notes]
    out.append("~ = estimate (see kvcalc.deploy.plan); GiB = 2^30 bytes")
    return "\n".join(out)


def _register_recommend(sub: Any) -> None:
    p = sub.add_parser(
        "recommend",
        help="smallest GPU configurations that fit",
        description="For each GPU type, the fewest GPUs (tensor parallel) that fit under vLLM.",
    )
    p.add_argument("model", help="preloaded name, config.json path, or Hugging Face id")
    p.add_argument("--max-model-len", type=_tokens, help=f"{TOKENS_HELP}; default: the model's maximum")
    p.add_argument("--gpus", help="comma-separated GPU names (default: the whole catalog)")
    p.add_argument(
        "--max-gpus", type=_positive, default=64, help="largest tensor-parallel size tried (default 64)"
    )
    _plan_options(p)
    p.set_defaults(func=_run_recommend)


def _run_recommend(args: argparse.Namespace) -> int:
    from kvcalc.deploy.plan import recommend

    model = resolve_model(args.model)
    ck, _ = _checkpoint(args, model)
    gpus = [g for g in (args.gpus or "").split(",") if g.strip()] or None
    plans = recommend(
        model, max_model_len=args.max_model_len, gpus=gpus, max_gpus=args.max_gpus, checkpoint=ck,
        **_plan_kw(args),
    )  # fmt: skip
    rows = [
        [
            p.num_gpus,
            p.gpu_name,
            _gib(p.weights_bytes),
            _gib(p.kv_budget_bytes),
            f"{p.kv_tokens:,}",
            f"{p.max_concurrency:.2f}",
        ]
        for p in plans
    ]
    length = plans[0].max_model_len if plans else args.max_model_len

    def text() -> str:
        if not plans:
            return f"{model.name}: no configuration in the catalog fits"
        head = f"{model.name} · vLLM · max_model_len {_tokens_label(length)} · per GPU, GiB = 2^30 bytes"
        table = _table(["GPUs", "GPU", "weights GiB", "KV budget GiB", "KV tokens", "concurrency"], rows)
        return f"{head}\n\n{table}"

    return _emit(args, [p.as_dict() for p in plans], text)


# ------------------------------------------------------------------------------------------------
# kvcalc compare / models / config


def _register_compare(sub: Any) -> None:
    p = sub.add_parser("compare", help="KV cache of several models side by side")
    p.add_argument("models", nargs="+", help="preloaded names, config.json paths, or Hugging Face ids")
    p.add_argument("--seq-len", type=_tokens, help=TOKENS_HELP + " (required, except with -c for llama.cpp)")
    p.add_argument("--batch-size", type=_positive, default=1, help="concurrent sequences (default 1)")
    p.add_argument("--kv-dtype", default="auto", help="cache dtype (default auto = each model's dtype)")
    p.add_argument("--engine", default="ideal", choices=kvcalc.ENGINES, help="accounting (default ideal)")
    _add_json(p)
    p.set_defaults(func=_run_compare)


def _run_compare(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for spec in args.models:
        try:
            rows.append(_compare_row(args, resolve_model(spec)))
        except KVCalcError as exc:  # one model that fails never blanks the others
            rows.append({"model": spec, "error": str(exc)})
            print(f"kvcalc compare: error: {spec}: {exc}", file=sys.stderr)
    good = [r for r in rows if "error" not in r]
    table = [
        [
            r["model"],
            r["attention"],
            r["layers"],
            f"{r['params'] / 1e9:,.2f}",
            r["kv_dtype"],
            fmt_token_bytes(r["bytes_per_token_short"], r["bytes_per_token"]),
            f"{r['bytes']:,}",
            _gib(r["bytes"]),
        ]
        for r in good
    ]
    head = (
        f"{_tokens_label(args.seq_len)} tokens × batch {args.batch_size} · engine {args.engine} · "
        "params in billions · GiB = 2^30 bytes"
    )
    headers = ["model", "attention", "layers", "params B", "kv dtype", "bytes/token", "KV bytes", "KV GiB"]
    _emit(args, rows, lambda: f"{head}\n\n{_table(headers, table)}")
    return 1 if len(good) < len(rows) else 0


def _compare_row(args: argparse.Namespace, m: kvcalc.Model) -> dict[str, Any]:
    """One model's row of ``kvcalc compare``."""
    from kvcalc.core.facts import attention_label
    from kvcalc.core.params import count_params

    dtype = m.dtype if args.kv_dtype.strip().lower() == "auto" else args.kv_dtype
    size = kvcalc.kv_cache_bytes(
        m, args.seq_len, batch_size=args.batch_size, kv_dtype=dtype, engine=args.engine
    )
    params = count_params(m)
    return {
        "model": m.name,
        "attention": attention_label(m),
        "layers": len(m.layers),
        "params": params.total_with_towers,
        "active_params": params.active,
        "kv_dtype": kvcalc.get_dtype(dtype).name,
        "bytes_per_token": kvcalc.kv_bytes_per_token(m, dtype),
        "bytes_per_token_short": kv_bytes_per_token_short(m, dtype),
        "bytes": size,
        "gib": size / GIB,
    }


def _register_models(sub: Any) -> None:
    p = sub.add_parser("models", help="list the preloaded models")
    _add_json(p)
    p.set_defaults(func=_run_models)


def _run_models(args: argparse.Namespace) -> int:
    from kvcalc.core.facts import attention_label
    from kvcalc.core.params import count_params

    catalog = _catalog()
    if catalog is None:
        raise KVCalcError("models: model_configs.json not found (set KVCALC_MODEL_CONFIGS)")
    rows = []
    for e in catalog:
        m = e.model()
        params = count_params(m)
        rows.append(
            {
                "name": e.name,
                "id": e.id,
                "family": e.family,
                "model_type": m.model_type,
                "attention": attention_label(m),
                "layers": len(m.layers),
                "params": params.total_with_towers,
                "active_params": params.active,
                "dtype": m.dtype,
                "bytes_per_token": kvcalc.kv_bytes_per_token(m, m.dtype),
                "bytes_per_token_short": kv_bytes_per_token_short(m, m.dtype),
                "max_position_embeddings": m.max_position_embeddings,
                "hash_verified": e.verified,
            }
        )
    table = [
        [
            r["name"],
            r["family"],
            r["attention"],
            f"{r['params'] / 1e9:,.2f}",
            f"{r['active_params'] / 1e9:,.2f}",
            fmt_token_bytes(r["bytes_per_token_short"], r["bytes_per_token"]),
            f"{r['max_position_embeddings'] or 0:,}",
            "yes" if r["hash_verified"] else "no",
        ]
        for r in rows
    ]
    headers = [
        "model",
        "family",
        "attention",
        "params B",
        "active B",
        "KV bytes/token",
        "max context",
        "hash ok",
    ]
    foot = "KV bytes/token in the model dtype (ideal); 'hash ok' = config matched the upstream file's sha256"
    return _emit(args, rows, lambda: f"{_table(headers, table)}\n{foot}")


def _register_config(sub: Any) -> None:
    p = sub.add_parser("config", help="print a catalog entry for a Hugging Face id or folder")
    p.add_argument("model", help="Hugging Face id or a directory with config.json")
    p.add_argument("--revision", help="hub revision")
    p.add_argument("--trust-remote-code", action="store_true", help="let AutoConfig run the repo's code")
    p.add_argument("--offline", action="store_true", help="never touch the network (HF_HUB_OFFLINE=1)")
    p.set_defaults(func=_run_config)


def _run_config(args: argparse.Namespace) -> int:
    from kvcalc.generate_config import main as generate

    argv = ["--model", args.model] + (["--revision", args.revision] if args.revision else [])
    argv += ["--trust-remote-code"] * args.trust_remote_code + ["--offline"] * args.offline
    return generate(argv)


def _register_measure(sub: Any) -> None:
    """``kvcalc measure`` lives in kvcalc.cli.measure (issue 7); registered only when that module exists."""
    try:
        module = importlib.import_module("kvcalc.cli.measure")
    except ModuleNotFoundError as exc:
        if exc.name != "kvcalc.cli.measure":
            raise
        return
    module.register(sub)


# ------------------------------------------------------------------------------------------------
# kvcalc explain


def _register_explain(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="re-derive every memory number of a vLLM start-up log",
        description="Read a vLLM start-up log (V1, or V0's '# GPU blocks') and re-derive each printed memory "
        "number: 'reproduced exactly', 'within range' (estimates) or the difference and its likeliest cause. "
        "Exit 0: everything reproduced; 1: something differs or nothing could be checked; 2: bad arguments.",
    )
    p.add_argument("log", help="log file, or - for stdin")
    p.add_argument("--model", help="config.json path, preloaded name or HF id (default: the log's model)")
    p.add_argument("--gpu", help="GPU name when the log does not say (default: from its total memory)")
    _add_json(p)
    p.set_defaults(func=_run_explain)


def _read_log(spec: str) -> str:
    if spec == "-":
        return sys.stdin.read()
    try:
        with open(spec, encoding="utf-8", errors="replace") as fh:
            return fh.read(4 * 1024 * 1024)
    except OSError as exc:
        raise KVCalcError(f"log: cannot read {spec!r} ({exc.strerror})") from None


def _run_explain(args: argparse.Namespace) -> int:
    from kvcalc.deploy.explain import explain

    model = resolve_model(args.model) if args.model else None
    catalog = _catalog()

    def resolve(name: str) -> kvcalc.Model:
        if catalog is None:
            raise KVCalcError("model: no preloaded catalog")
        return catalog.model(name)

    from kvcalc.deploy.gpus import get_gpu

    gpu = get_gpu(args.gpu) if args.gpu else None  # a bad name is an error, not a silent "unknown"
    result = explain(_read_log(args.log), model=model, gpu=gpu, resolve=resolve)
    _emit(args, result.as_dict(), result.text)
    return result.exit_code


#: (name, register) pairs; each register(subparsers) adds its parser with ``set_defaults(func=...)``.
COMMANDS: list[tuple[str, Callable[[Any], None]]] = [
    ("kv", _register_kv),
    ("plan", _register_plan),
    ("recommend", _register_recommend),
    ("compare", _register_compare),
    ("models", _register_models),
    ("config", _register_config),
    ("explain", _register_explain),
    ("measure", _register_measure),
]


def build_parser() -> argparse.ArgumentParser:
    """The ``kvcalc`` parser with every registered subcommand."""
    parser = _Parser(prog="kvcalc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"kvcalc {kvcalc.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for _name, register in COMMANDS:
        register(sub)
    return parser


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except KVCalcError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `kvcalc models | head`
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``kvcalc`` / ``python -m kvcalc``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return _run(parser, args)


# ------------------------------------------------------------------------------------------------
# seed-compatible kv-cache-calc


def seed_main(argv: Sequence[str] | None = None) -> int:
    """``kv-cache-calc --num-layers 32 --hidden-size 4096 --num-heads 32 --seq-len 2048 …``: the command
    of kv-cache-calculator (also ``python -m kvcalc.compat``). Experts are accepted and do not change
    the cache (attention runs once per token, before the experts)."""
    from kvcalc.compat import ModelVariant, kv_cache_bytes

    parser = _Parser(
        prog="kv-cache-calc",
        description="KV cache size: 2 · layers · batch · tokens · kv heads · head_dim · bits / 8 bytes.",
    )
    parser.add_argument("--num-layers", type=_positive, required=True)
    parser.add_argument("--hidden-size", type=_positive, required=True)
    parser.add_argument("--num-heads", type=_positive, required=True)
    parser.add_argument("--num-kv-heads", type=_positive, help="default: --num-heads (multi-head attention)")
    parser.add_argument("--head-dim", type=_positive, help="default: hidden-size / num-heads")
    parser.add_argument("--seq-len", type=_tokens, required=True, help=TOKENS_HELP)
    parser.add_argument("--batch-size", type=_positive, default=1)
    parser.add_argument("--num-experts", type=_positive, help="MoE experts (no effect on the cache)")
    parser.add_argument("--active-experts", type=_positive, help="experts per token (no effect on the cache)")
    parser.add_argument("--precision", "--precision-bits", dest="precision_bits", type=_positive, default=16,
                        help="bits per element (default 16; 32 for fp32, 8 for fp8)")  # fmt: skip
    _add_json(parser)
    args = parser.parse_args(argv)
    try:
        variant = ModelVariant(
            num_layers=args.num_layers,
            hidden_size=args.hidden_size,
            num_attention_heads=args.num_heads,
            num_kv_heads=args.num_kv_heads,
            head_dim=args.head_dim,
            num_experts=args.num_experts,
            active_experts=args.active_experts,
        )
        size = kv_cache_bytes(variant, args.seq_len, args.batch_size, args.precision_bits)
    except KVCalcError as exc:
        print(f"kv-cache-calc: error: {exc}", file=sys.stderr)
        return 2
    data = {
        "num_layers": args.num_layers,
        "num_kv_heads": variant.kv_heads,
        "head_dim": variant.dim_per_head,
        "seq_len": args.seq_len,
        "batch_size": args.batch_size,
        "precision_bits": args.precision_bits,
        "bytes": size,
        "mib": size / (1 << 20),
        "gib": size / GIB,
    }

    def text() -> str:
        return (
            f"KV Cache Size: {size / GIB:,.3f} GiB ({size:,} bytes = {size / (1 << 20):,.2f} MiB)\n"
            f"  2 (K,V) × {args.num_layers} layers × {variant.kv_heads} kv heads × {variant.dim_per_head} "
            f"head_dim × {args.seq_len:,} tokens × batch {args.batch_size} × {args.precision_bits} bits / 8"
            + ("\n  experts do not change the KV cache" if args.num_experts else "")
        )

    return _emit(args, data, text)


if __name__ == "__main__":
    sys.exit(main())
