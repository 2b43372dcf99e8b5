"""``kvcalc measure``: run a real transformers model (random weights, CPU) and check kvcalc against it.

MODEL is a preloaded name, a config.json path, or a preset ``small|medium|large|xlarge`` (decoder-only
Llama, hidden 512/1024/2048/4096, 8/16/32/64 heads of 64, max context 1K/2K/4K/8K, 4 layers unless
``--layers``). For each prompt length of a small sweep it greedily generates ``--new-tokens`` tokens
twice — with the cache and with ``use_cache=False`` — and reports:

1. the bytes of the cache ``generate()`` returned, per layer kind, against
   ``kv_cache_bytes(engine="transformers")`` (exact match expected; a difference is printed loudly and
   the exit status is 1);
2. tokens/s with and without the cache, and the speedup at each length;
3. the peak RSS of the process before and after;
4. the scaling: cache memory grows linearly with tokens; decoding without a cache costs quadratically
   more compute in total.

MiniLLM's benchmark flags work too: ``--config small|medium|large|xlarge|custom`` instead of MODEL;
``custom`` starts from ``small`` and takes ``--max-seq-len`` (the model's max context),
``--max-kv-cache-len`` (the longest cache of the run: prompts up to it minus ``--new-tokens``),
``--dim-model``, ``--num-heads`` (heads of dim-model / num-heads) and ``--vocab-size``.

``--layers N`` keeps the first N layers of a real config with its layer pattern (see kvcalc.measure.shallow);
big MoE models keep only the experts the router picks (cache and per-token compute unchanged) when
their weights would exceed WEIGHTS_BUDGET. Timings use one CPU thread by default (``--threads``):
on a shared machine more threads make the numbers noisy. Needs the ``measure`` extra
(``pip install kvcalc[measure]``); torch and transformers are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import kvcalc
from kvcalc.cli.common import _positive, _table, _tokens, parse_tokens, resolve_model
from kvcalc.errors import KVCalcError
from kvcalc.measure.shallow import PRESETS, expert_counts, fewer_experts, preset_config, shallow_config

__all__ = ["register", "run"]

DTYPES = ("auto", "bf16", "fp16", "fp32")
_DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
_CONFIG_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "bf16": "bf16", "fp32": "fp32"}
WEIGHTS_BUDGET = 4 << 30  # above this, MoE models keep only the router's top-k experts (unless --experts)
MEMORY_SHARE = 0.6  # refuse to build weights larger than this share of the available memory
MIB = 1 << 20


def register(sub: Any) -> None:
    """Add ``kvcalc measure`` to the CLI's subparsers."""
    p = sub.add_parser(
        "measure",
        help="run a transformers model (random weights, CPU): real cache bytes and decoding speedup",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "model", nargs="?", help=f"preloaded name, config.json path, or a preset: {'|'.join(PRESETS)}"
    )
    p.add_argument("--seq-len", type=_tokens, help="prompt tokens (default 512)")
    p.add_argument("--new-tokens", type=_positive, default=16, help="tokens to generate (default 16)")
    p.add_argument("--batch-size", type=_positive, default=1, help="sequences (default 1)")
    p.add_argument("--dtype", default="auto", choices=DTYPES, help="model dtype (default: the config's)")
    p.add_argument("--layers", type=_positive, help="keep the first N layers (layer pattern kept)")
    p.add_argument("--experts", type=_experts, help="routed experts per MoE layer: N or all (default auto)")
    p.add_argument("--sweep", type=_sweep, help="prompt lengths, e.g. 64,128,256 (default seq-len/8…seq-len)")
    p.add_argument(
        "--threads", type=_positive, default=1, help="torch CPU threads (default 1: steady timings)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    mini = p.add_argument_group("MiniLLM's benchmark flags (run_benchmark.py)")
    mini.add_argument("--config", choices=(*PRESETS, "custom"), help="a preset instead of MODEL; custom = "
                      "small with the flags below")  # fmt: skip
    mini.add_argument("--max-seq-len", type=_tokens, help="custom: max context (max_position_embeddings)")
    mini.add_argument("--max-kv-cache-len", type=_tokens, help="custom: longest cache of the run (tokens)")
    mini.add_argument("--dim-model", type=_positive, help="custom: hidden size")
    mini.add_argument("--num-heads", type=_positive, help="custom: attention heads (= KV heads)")
    mini.add_argument("--vocab-size", type=_positive, help="custom: vocabulary size")
    p.set_defaults(func=run)


_CUSTOM_FLAGS = ("max_seq_len", "max_kv_cache_len", "dim_model", "num_heads", "vocab_size")
DEFAULT_SEQ_LEN = 512


ALL_EXPERTS = 0


def _experts(text: str) -> int:
    """A positive expert count, or ALL_EXPERTS for "all"."""
    return ALL_EXPERTS if text.strip().lower() == "all" else _positive(text)


def _sweep(text: str) -> list[int]:
    try:
        values = [parse_tokens(t) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected token counts ≥ 1 separated by commas, got {text!r}")
    return values


# ------------------------------------------------------------------------------------------------
# what to run


@dataclass
class Target:
    """The config that will really run, and how it was derived."""

    name: str
    source: str  # "preset" | "model"
    config: dict[str, Any]
    dtype: str
    notes: list[str] = field(default_factory=list)


def _custom(config: dict[str, Any], args: argparse.Namespace) -> None:
    """MiniLLM's ``--config custom``: the small preset with its geometry flags applied."""
    if args.dim_model:
        config["hidden_size"] = args.dim_model
        config["intermediate_size"] = 4 * args.dim_model  # MiniLLM's feed-forward is a plain 2-layer MLP
    heads = args.num_heads or config["num_attention_heads"]
    if config["hidden_size"] % heads:
        raise KVCalcError(f"num_heads: {heads} does not divide dim_model {config['hidden_size']}")
    head_dim = config["hidden_size"] // heads
    config.update(num_attention_heads=heads, num_key_value_heads=heads, head_dim=head_dim)
    if args.max_seq_len:
        config["max_position_embeddings"] = args.max_seq_len
    if args.vocab_size:
        config["vocab_size"] = args.vocab_size
    config["_name_or_path"] = "kvcalc-preset-custom"


def _prompt_length(args: argparse.Namespace) -> int:
    """--seq-len, else --max-kv-cache-len minus the tokens generated (the cache ends that long), else 512."""
    if args.seq_len is not None:
        return args.seq_len
    longest = getattr(args, "max_kv_cache_len", None)
    if longest:
        if longest <= args.new_tokens:
            new = args.new_tokens
            raise KVCalcError(f"max_kv_cache_len: {longest} leaves no prompt before {new} new tokens")
        return longest - args.new_tokens
    return DEFAULT_SEQ_LEN


def _target(args: argparse.Namespace) -> Target:
    """Resolve MODEL or --config, --layers, --dtype and --experts into the config to build (and the
    prompt length into ``args.seq_len``)."""
    spec = args.model
    custom = [f"--{k.replace('_', '-')}" for k in _CUSTOM_FLAGS if getattr(args, k, None)]
    if getattr(args, "config", None) and spec:
        raise KVCalcError(f"model: give MODEL or --config, not both ({spec!r} and --config {args.config})")
    if custom and getattr(args, "config", None) != "custom":
        raise KVCalcError(f"{custom[0].lstrip('-')}: only with --config custom")
    if not spec and not getattr(args, "config", None):
        raise KVCalcError("model: give MODEL (a preloaded name, a config.json path or a preset) or --config")
    args.seq_len = _prompt_length(args)
    if getattr(args, "config", None):
        config = preset_config("small" if args.config == "custom" else args.config, args.layers)
        notes: list[str] = []
        if args.config == "custom":
            _custom(config, args)
            longest = args.seq_len + args.new_tokens
            if longest > config["max_position_embeddings"]:
                limit = config["max_position_embeddings"]
                notes.append(
                    f"max_seq_len {limit:,} < {longest:,} cached tokens: the model's context is raised to "
                    f"{longest:,} (MiniLLM's cache may outgrow its max_seq_len)"
                )
                config["max_position_embeddings"] = longest
        target = Target(f"{args.config} preset", "preset", config, "fp32", notes)
    elif spec in PRESETS and not os.path.exists(spec):
        target = Target(f"{spec} preset", "preset", preset_config(spec, args.layers), "fp32")
    else:
        model = resolve_model(spec)
        config = copy.deepcopy(dict(model.config))
        notes: list[str] = []
        if args.layers:
            config, notes = shallow_config(config, args.layers)
        target = Target(model.name, "model", config, _config_dtype(model), notes)
    if args.dtype != "auto":
        target.dtype = args.dtype
    _fit_experts(target, args.experts)
    return target


def _config_dtype(model: kvcalc.Model) -> str:
    text = model.text_config
    for value in (text.get("torch_dtype"), text.get("dtype"), model.config.get("torch_dtype")):
        if isinstance(value, str) and value.lower() in _CONFIG_DTYPES:
            return _CONFIG_DTYPES[value.lower()]
    return "bf16"


def _weights_bytes(config: dict[str, Any], dtype: str) -> tuple[int, int]:
    """(parameters kvcalc counts, their bytes in dtype)."""
    params = kvcalc.count_params(kvcalc.load_model(config)).total
    return params, params * _DTYPE_BYTES[dtype]


def _fit_experts(target: Target, experts: int | None) -> None:
    """Apply --experts N, or (default) keep only the router's top-k when weights exceed WEIGHTS_BUDGET."""
    counts = expert_counts(target.config)
    if counts is None or experts == ALL_EXPERTS:
        return
    if experts is not None:
        target.config, notes = fewer_experts(target.config, experts)
    elif _weights_bytes(target.config, target.dtype)[1] > WEIGHTS_BUDGET:
        target.config, notes = fewer_experts(target.config, counts[1])
        notes = [
            f"{n}; done because the weights exceed {WEIGHTS_BUDGET >> 30} GiB (--experts all)" for n in notes
        ]
    else:
        return
    target.notes += notes


def _available_memory() -> int | None:
    """MemAvailable from /proc/meminfo, else physical memory, else None."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_fits(target: Target, args: argparse.Namespace, model: kvcalc.Model) -> None:
    """One-line errors for contexts past the model's maximum and weights that would not fit."""
    longest = max(_lengths(args)) + args.new_tokens
    limit = model.max_position_embeddings
    if limit and longest > limit:
        raise KVCalcError(
            f"--seq-len {max(_lengths(args)):,} + --new-tokens {args.new_tokens} = {longest:,} tokens "
            f"exceeds {target.name}'s maximum context of {limit:,}"
        )
    params, size = _weights_bytes(target.config, target.dtype)
    available = _available_memory()
    if available and size > MEMORY_SHARE * available:
        raise KVCalcError(
            f"{target.name}: {params / 1e9:,.2f}B parameters = {size / (1 << 30):,.1f} GiB of {target.dtype} "
            f"weights, more than {MEMORY_SHARE:.0%} of the {available / (1 << 30):,.1f} GiB available"
            + _layers_hint(target, int(MEMORY_SHARE * available))
        )


def _layers_hint(target: Target, budget: int) -> str:
    """Suggest --layers K (the first of n/2, n/4, ... whose weights fit in budget), or say none does."""
    if target.source == "preset":
        return " (try fewer --layers or a smaller preset)"
    fits = [k for k in _halvings(len(kvcalc.load_model(target.config).layers)) if _fits(target, k, budget)]
    return f" (try --layers {fits[0]})" if fits else "; even one layer does not fit"


def _halvings(n: int) -> list[int]:
    """n//2, n//4, ..., 1."""
    out = []
    while n > 1:
        n //= 2
        out.append(n)
    return out


def _fits(target: Target, layers: int, budget: int) -> bool:
    config, _ = shallow_config(target.config, layers)
    return _weights_bytes(config, target.dtype)[1] <= budget


def _lengths(args: argparse.Namespace) -> list[int]:
    """Prompt lengths to run: --sweep (plus --seq-len), else seq-len/8, /4, /2 and seq-len."""
    if args.sweep:
        return sorted(set(args.sweep) | {args.seq_len})
    return sorted({max(1, args.seq_len // d) for d in (8, 4, 2, 1)})


# ------------------------------------------------------------------------------------------------
# progress


class Progress:
    """A one-line progress bar on stderr (only when stderr is a terminal), weighted by token-forwards."""

    def __init__(self, total: int, enabled: bool | None = None) -> None:
        self.total, self.done, self.start = max(total, 1), 0, time.perf_counter()
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.label = ""

    def advance(self, units: int, label: str | None = None) -> None:
        """Add finished units and redraw."""
        self.done = min(self.total, self.done + units)
        self.label = label or self.label
        if not self.enabled:
            return
        frac = self.done / self.total
        elapsed = time.perf_counter() - self.start
        eta = f"~{elapsed / frac - elapsed:,.0f}s left" if frac > 0.02 else ""
        bar = "█" * int(frac * 24) + "·" * (24 - int(frac * 24))
        sys.stderr.write(f"\r  {bar} {frac:4.0%} {self.label:<28} {eta:<14}")
        sys.stderr.flush()

    def note(self, text: str) -> None:
        """A status line (terminal only)."""
        if self.enabled:
            sys.stderr.write(f"\r{text:<80}\n")
            sys.stderr.flush()

    def close(self) -> None:
        """Clear the bar."""
        if self.enabled:
            sys.stderr.write("\r" + " " * 80 + "\r")
            sys.stderr.flush()


def _cost(prompt: int, new: int, use_cache: bool) -> int:
    """Token-forwards of one greedy generation: L + N - 1 with the cache, N·L + N(N-1)/2 without."""
    return prompt + new - 1 if use_cache else new * prompt + new * (new - 1) // 2


# ------------------------------------------------------------------------------------------------
# running


def run(args: argparse.Namespace) -> int:
    """Entry point of ``kvcalc measure``; returns 1 when kvcalc and transformers disagree."""
    target = _target(args)
    model = kvcalc.load_model(target.config, name=target.name)
    _check_fits(target, args, model)
    from kvcalc.measure import bench_decode

    torch, transformers = bench_decode.backend()
    lengths = _lengths(args)
    progress = Progress(sum(_cost(n, args.new_tokens, c) for n in lengths for c in (True, False)))
    rss = {"start": bench_decode.peak_rss_bytes()}
    params, weights = _weights_bytes(target.config, target.dtype)
    progress.note(f"building {target.name}: {params / 1e6:,.1f}M parameters, random weights ({target.dtype})")
    try:
        loaded = bench_decode.build_model(target.config, target.dtype, args.threads)
        rss["built"] = bench_decode.peak_rss_bytes()
        bench_decode.warm_up(loaded, args.batch_size)
        cases = _run_all(bench_decode, loaded, model, lengths, args, progress, rss)
    except KVCalcError:
        raise
    except Exception as exc:  # model code raises anything; keep it to one line
        first = (str(exc).strip().splitlines() or [""])[0]
        raise KVCalcError(
            f"transformers could not run {target.name}: {type(exc).__name__}: {first}"
        ) from None
    finally:
        progress.close()
    report = _report(target, model, args, cases, rss, loaded, weights, torch, transformers)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else _text(report))
    return 0 if report["exact"] else 1


def _generate(bench: Any, loaded: Any, prompt: int, use_cache: bool, args: argparse.Namespace,
              progress: Progress) -> Any:  # fmt: skip
    """One timed generation, advancing the progress bar by token-forwards at every step."""
    progress.advance(0, f"{prompt:,} tokens, {'cached' if use_cache else 'no cache'}")
    done = [0]

    def tick(length: int) -> None:
        k, done[0] = done[0], done[0] + 1
        progress.advance((prompt if k == 0 else 1) if use_cache else prompt + k)

    return bench.generate(
        loaded, prompt, args.new_tokens, use_cache=use_cache, batch_size=args.batch_size, on_step=tick
    )


def _run_all(bench: Any, loaded: Any, model: kvcalc.Model, lengths: list[int], args: argparse.Namespace,
             progress: Progress, rss: dict[str, int]) -> list[dict[str, Any]]:  # fmt: skip
    """Every cached run (measuring each returned cache), then every uncached run; one case per length."""
    cached, caches = {}, {}
    for n in lengths:
        cached[n] = _generate(bench, loaded, n, True, args, progress)
        caches[n] = bench.cache_layers(cached[n].cache)
        cached[n].cache = None
    rss["cached"] = bench.peak_rss_bytes()
    uncached = {n: _generate(bench, loaded, n, False, args, progress) for n in lengths}
    rss["uncached"] = bench.peak_rss_bytes()
    return [_case(model, loaded.dtype, args, cached[n], uncached[n], *caches[n]) for n in lengths]


def _case(model: kvcalc.Model, dtype: str, args: argparse.Namespace, cached: Any, uncached: Any,
          measured_layers: list[Any], measured: int) -> dict[str, Any]:  # fmt: skip
    """One prompt length: cache bytes compared, and the two generations timed."""
    prompt, new = cached.prompt_len, args.new_tokens
    held = prompt + new - 1  # the last generated token is never fed back
    kw = {"batch_size": args.batch_size, "kv_dtype": dtype, "engine": "transformers"}
    predicted = kvcalc.layer_bytes(model, held, **kw)
    next_token = kvcalc.kv_cache_bytes(model, held + 1, **kw) - sum(predicted)
    return {
        "seq_len": prompt,
        "new_tokens": new,
        "cache_tokens": held,
        "measured_bytes": measured,
        "predicted_bytes": sum(predicted),
        "exact": measured == sum(predicted),
        "bytes_per_next_token": next_token,
        "by_kind": _by_kind(model, predicted, measured_layers),
        "cached": _timing(cached),
        "uncached": _timing(uncached),
        "speedup": uncached.seconds / cached.seconds,
        "decode_speedup": _ratio(cached.decode_tokens_per_s, uncached.decode_tokens_per_s),
        "same_tokens": cached.tokens == uncached.tokens,
        "token_forwards": {"cached": _cost(prompt, new, True), "uncached": _cost(prompt, new, False)},
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _timing(run: Any) -> dict[str, Any]:
    steps = run.step_seconds
    return {
        "seconds": run.seconds,
        "cpu_seconds": run.cpu_seconds,
        "tokens_per_s": run.tokens_per_s,
        "decode_tokens_per_s": run.decode_tokens_per_s,
        "median_step_seconds": statistics.median(steps[1:]) if len(steps) > 1 else None,
    }


def _by_kind(model: kvcalc.Model, predicted: list[int], measured: list[Any]) -> dict[str, dict[str, Any]]:
    """Per kvcalc layer kind: layer count, predicted and measured bytes, transformers classes."""
    out: dict[str, dict[str, Any]] = {}
    aligned = len(measured) == len(predicted)
    for i, layer in enumerate(model.layers):
        row = out.setdefault(
            layer.kind, {"layers": 0, "predicted_bytes": 0, "measured_bytes": 0, "transformers": []}
        )
        row["layers"] += 1
        row["predicted_bytes"] += predicted[i]
        if aligned:
            row["measured_bytes"] += measured[i].bytes
            if measured[i].kind not in row["transformers"]:
                row["transformers"].append(measured[i].kind)
    if not aligned:
        for row in out.values():
            row["measured_bytes"] = None
    return out


# ------------------------------------------------------------------------------------------------
# report


def _report(target: Target, model: kvcalc.Model, args: argparse.Namespace, cases: list[dict[str, Any]],
            rss: dict[str, int], loaded: Any, weights: int, torch: Any, transformers: Any,
            ) -> dict[str, Any]:  # fmt: skip
    main = next(c for c in cases if c["seq_len"] == args.seq_len)
    kv_params = kvcalc.count_params(model).total
    return {
        "model": target.name,
        "source": target.source,
        "model_type": model.model_type,
        "layers": len(model.layers),
        "kinds": model.kinds(),
        "notes": target.notes,
        "dtype": target.dtype,
        "batch_size": args.batch_size,
        "seq_len": args.seq_len,
        "new_tokens": args.new_tokens,
        "threads": args.threads,
        "attn_implementation": loaded.attn_implementation,
        "params": loaded.params,
        "params_kvcalc": kv_params,
        "weights_bytes": weights,
        "cache_tokens": main["cache_tokens"],
        "measured_bytes": main["measured_bytes"],
        "predicted_bytes": main["predicted_bytes"],
        "exact": all(c["exact"] for c in cases),
        "speedup": main["speedup"],
        "cases": cases,
        "rss_bytes": rss,
        "scaling": _scaling(cases, _fixed_parts(model)),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
    }


def _fixed_parts(model: kvcalc.Model) -> str:
    """What in this model's cache stops growing: "recurrent state", "sliding windows", or both."""
    leaves = [leaf for layer in model.layers for leaf in layer.leaves()]
    parts = ["recurrent state"] * any(leaf.state for leaf in leaves)
    parts += ["full sliding windows"] * any(leaf.kind in ("sliding", "chunked") for leaf in leaves)
    return " and ".join(parts) or "fixed parts"


def _scaling(cases: list[dict[str, Any]], fixed_parts: str = "fixed parts") -> str:
    """The honest line: linear cache memory, quadratic total compute without a cache, with numbers."""
    last = cases[-1]
    forwards = last["token_forwards"]
    return (
        f"cache memory grows linearly with tokens{_growth(cases, fixed_parts)}; decoding without a cache "
        "recomputes the whole prefix at every step, so its total compute grows quadratically: "
        f"{last['new_tokens']} tokens "
        f"after {last['seq_len']:,} cost {forwards['uncached']:,} token-forwards without the cache vs "
        f"{forwards['cached']:,} with it."
    )


def _growth(cases: list[dict[str, Any]], fixed_parts: str) -> str:
    """The growth clause: +X bytes per token at the longest run, on top of Y bytes that no longer grow."""
    last = cases[-1]
    per_token, held = last["bytes_per_next_token"], last["cache_tokens"]
    if per_token <= 0:
        return " in attention layers; this model's cache no longer grows at this length (fixed-size state)"
    fixed = last["measured_bytes"] - per_token * held
    tail = f", on top of {fixed:,} bytes that no longer grow: {fixed_parts})"
    return f" (+{per_token:,} bytes per token at {held:,} tokens" + (tail if fixed > 0 else ")")


def _mib(n: int) -> str:
    return f"{n / MIB:,.1f} MiB"


def _speed(x: float | None) -> str:
    return f"{x:,.1f}×" if x else "n/a"


def _text(r: dict[str, Any]) -> str:
    """The human-readable report."""
    out = _header(r) + [""] + _cache_section(r) + [""] + _speed_section(r) + [""] + _memory_section(r)
    out += ["", f"4. scaling: {r['scaling']}"]
    return "\n".join(out)


def _header(r: dict[str, Any]) -> list[str]:
    kinds = " + ".join(f"{n}× {k}" for k, n in r["kinds"].items())
    params = f"{r['params']:,} parameters" + (
        "" if r["params"] == r["params_kvcalc"] else f" (kvcalc counts {r['params_kvcalc']:,})"
    )
    lines = [
        f"kvcalc measure · {r['model']} ({r['model_type']}, {r['layers']} layers: {kinds})",
        f"{params}, random weights · {r['dtype']} · batch {r['batch_size']} · "
        f"{r['new_tokens']} new tokens (greedy) · {r['attn_implementation']} attention · "
        f"CPU, {r['threads']} thread{'s' * (r['threads'] > 1)} · "
        f"torch {r['versions']['torch']}, transformers {r['versions']['transformers']}",
    ]
    return lines + [f"note: {n}" for n in r["notes"]]


def _cache_section(r: dict[str, Any]) -> list[str]:
    main = next(c for c in r["cases"] if c["seq_len"] == r["seq_len"])
    rows = [
        [kind, v["layers"], ", ".join(v["transformers"]) or "?", _num(v["measured_bytes"]),
         f"{v['predicted_bytes']:,}", _verdict(v["measured_bytes"], v["predicted_bytes"])]
        for kind, v in main["by_kind"].items()
    ]  # fmt: skip
    rows.append(["total", r["layers"], "", f"{main['measured_bytes']:,}", f"{main['predicted_bytes']:,}",
                 _verdict(main["measured_bytes"], main["predicted_bytes"])])  # fmt: skip
    head = (
        f"1. cache bytes held after generating ({main['seq_len']:,}-token prompt + {main['new_tokens']} "
        f'new = {main["cache_tokens"]:,} tokens cached): transformers vs kvcalc (engine="transformers")'
    )
    headers = ["kind", "layers", "transformers class", "measured", "kvcalc", "match"]
    out = [head, _table(headers, rows)]
    bad = [c for c in r["cases"] if not c["exact"]]
    lengths = ", ".join(f"{c['cache_tokens']:,}" for c in r["cases"])
    if bad:
        out += [
            f"!!! MISMATCH at {c['cache_tokens']:,} tokens: transformers holds {c['measured_bytes']:,} "
            f"bytes, kvcalc predicts {c['predicted_bytes']:,} "
            f"({c['predicted_bytes'] - c['measured_bytes']:+,}) !!!"
            for c in bad
        ]
    else:
        out.append(f"✔ exact to the byte at every length measured ({lengths} tokens cached)")
    return out


def _num(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def _verdict(measured: int | None, predicted: int) -> str:
    if measured is None:
        return "?"
    return "exact" if measured == predicted else f"DIFF {predicted - measured:+,}"


def _speed_section(r: dict[str, Any]) -> list[str]:
    rows = [
        [f"{c['seq_len']:,}", f"{c['measured_bytes']:,}", "exact" if c["exact"] else "DIFF",
         f"{c['cached']['tokens_per_s']:,.1f}", f"{c['uncached']['tokens_per_s']:,.1f}", _speed(c["speedup"]),
         _speed(c["decode_speedup"])]
        for c in r["cases"]
    ]  # fmt: skip
    headers = ["prompt", "cache bytes", "match", "cached tok/s", "no-cache tok/s", "speedup", "per step"]
    same = sum(c["same_tokens"] for c in r["cases"])
    return [
        f"2. greedy decoding of {r['new_tokens']} tokens with the cache vs use_cache=False "
        "(tok/s over the whole generate() call; 'per step' excludes the prefill)",
        _table(headers, rows),
        f"greedy tokens identical with and without the cache at {same} of {len(r['cases'])} lengths"
        + ("" if same == len(r["cases"]) else f" ({r['dtype']} rounding differs between the two paths)"),
    ]


def _memory_section(r: dict[str, Any]) -> list[str]:
    rss = r["rss_bytes"]
    main = next(c for c in r["cases"] if c["seq_len"] == r["seq_len"])
    rows = [
        ["before building the model", _mib(rss["start"]), ""],
        ["after building it (random weights)", _mib(rss["built"]),
         f"+{_mib(rss['built'] - rss['start'])}; weights {_mib(r['weights_bytes'])}"],
        ["after generating with the cache", _mib(rss["cached"]),
         f"+{_mib(rss['cached'] - rss['built'])}; the cache holds {_mib(main['measured_bytes'])}"],
        ["after generating without it", _mib(rss["uncached"]), f"+{_mib(rss['uncached'] - rss['cached'])}"],
    ]  # fmt: skip
    return [
        "3. memory: peak RSS of this process (includes activations and allocator slack)",
        _table(["", "peak RSS", ""], rows),
    ]
