"""kvcalc against published vLLM start-up logs (bench/vllm_logs/NNN-*.txt).

For every stored excerpt: read the settings and memory lines it prints, then

* **exact part** — kvcalc's page arithmetic from the logged ``Available KV cache memory`` (printed to
  0.01 GiB, so every block count in that ±0.005 GiB interval is tried): does it give the logged
  ``GPU KV cache size`` / ``# GPU blocks``, ``Maximum concurrency`` and "KV cache is needed" figures?
* **full prediction** — :func:`kvcalc.deploy.plan.plan` with the logged model, GPU, parallelism and flags
  (and nothing it cannot know from the command line): its ``GPU KV cache size`` against the logged one
  (or, where the source published no token line, against the tokens the logged budget gives).

Runs whose header says the GPU is unknown, or whose weights kvcalc does not model (AWQ checkpoints
without their config, CPU offload), are excluded from the full-prediction statistics, with the reason.

    python bench/vllm_logs.py [--json]
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvcalc.core.model import Model, load_model  # noqa: E402
from kvcalc.deploy.explain import EXACT, explain  # noqa: E402
from kvcalc.deploy.plan import plan  # noqa: E402
from kvcalc.deploy.vllm_kv import kv_layout, num_blocks, report  # noqa: E402
from kvcalc.deploy.vllm_log import GIB, VLLMLog, parse_log  # noqa: E402
from kvcalc.deploy.vllm_versions import get_vllm_version  # noqa: E402
from kvcalc.errors import KVCalcError  # noqa: E402

LOGS = ROOT / "bench" / "vllm_logs"
HALF_STEP = 0.005  # GiB: the log prints two decimals
#: plan() settings a log can name (plan's keyword → the log's setting).
PLAN_KEYS = {
    "gpu_memory_utilization": "gpu_memory_utilization",
    "max_num_batched_tokens": "max_num_batched_tokens",
    "max_num_seqs": "max_num_seqs",
    "block_size": "block_size",
    "enable_prefix_caching": "enable_prefix_caching",
    "pipeline_parallel_size": "pp",
    "kv_cache_memory": "kv_cache_memory",
}


@dataclass
class Run:
    """One stored excerpt and what kvcalc makes of it."""

    name: str
    log: VLLMLog
    model: Model | None = None
    text: str = ""
    exact: dict[str, bool] = field(default_factory=dict)
    exact_note: str = ""
    logged_tokens: int | None = None
    implied: bool = False
    predicted_tokens: int | None = None
    error: float | None = None
    excluded: str = ""
    note: str = ""
    in_range: bool | None = None


def load_config(log: VLLMLog) -> Model | None:
    """The header's ``config:`` (a path under configs/), if it names one."""
    name = log.header.get("config", "").split(" ")[0]
    path = ROOT / "configs" / name / "config.json"
    if not name or not path.is_file():
        return None
    return load_model(path, name=name)


def settings(log: VLLMLog) -> dict[str, Any]:
    """The layout arguments the log names (kvcalc defaults otherwise)."""
    s = log.settings
    version = get_vllm_version(log.version)
    hybrid_pc = s.get("enable_prefix_caching", version.hybrid_prefix_caching)
    return {
        "kv_dtype": s.get("kv_cache_dtype", "auto"),
        "tensor_parallel_size": int(s.get("tp") or log.header.get("tp") or 1),
        "pipeline_parallel_size": int(s.get("pp") or log.header.get("pp") or 1),
        "block_size": int(s.get("block_size", 16)),
        "max_num_batched_tokens": int(
            s.get("max_num_batched_tokens", s.get("max_num_batched_tokens_default", 8192))
        ),
        "enable_prefix_caching": bool(hybrid_pc),
        "draft_layers": 1 if log.header.get("speculative", "").startswith("eagle") else 0,
    }


def exact_part(run: Run) -> None:
    """Re-derive the printed token / block / concurrency / needed numbers from the printed budget
    (kvcalc.deploy.explain does it line by line; the first line of each kind is tallied here)."""
    log, model = run.log, run.model
    length = log.settings.get("max_model_len")
    if model is None or not length:
        run.exact_note = "no config" if model is None else "no max_model_len"
        return
    result = explain(run.text, model=model)
    for check in result.checks:
        if check.kind in ("tokens", "blocks", "concurrency", "needed") and check.kind not in run.exact:
            run.exact[check.kind] = check.status == EXACT
    layout = kv_layout(model, length, **settings(log))
    tokens = [int(x.values[0]) for x in log.lines if x.kind == "tokens"]
    blocks = log.first("blocks")
    avail = log.memory.get("available")
    if tokens:
        run.logged_tokens = min(tokens)  # with several ranks, vLLM keeps the smallest block count
    elif blocks and layout:
        run.logged_tokens = int(blocks.values[0]) * layout.block_size
    elif avail is not None and layout:
        version = get_vllm_version(log.version)
        run.logged_tokens, run.implied = (
            report(layout, num_blocks(round(avail * GIB), layout), length, version)[0],
            True,
        )


def _plan_kwargs(log: VLLMLog, gpu: str) -> dict[str, Any]:
    s, accepted = log.settings, inspect.signature(plan).parameters
    kw: dict[str, Any] = {"gpu": gpu}
    sett = settings(log)
    tp, pp = sett["tensor_parallel_size"], sett["pipeline_parallel_size"]
    kw["num_gpus"] = tp * pp
    if pp > 1 and "pipeline_parallel_size" in accepted:
        kw["pipeline_parallel_size"] = pp
    kw["tensor_parallel_size"] = tp
    kw["max_model_len"] = s.get("max_model_len")
    kw["kv_dtype"] = sett["kv_dtype"]
    if log.header.get("weights"):
        kw["weight_dtype"] = log.header["weights"]
    for key, name in PLAN_KEYS.items():
        if name in s and key in accepted:
            kw[key] = s[name]
    if "vllm_version" in accepted and log.version:
        kw["vllm_version"] = log.version
    if "speculative_config" in accepted and log.header.get("speculative"):
        kw["speculative_config"] = {"method": log.header["speculative"].split()[0]}
    if pp > 1 and "pipeline_parallel_size" not in accepted:
        kw["num_gpus"] = tp
    if s.get("enforce_eager") and "enforce_eager" in accepted:
        kw["enforce_eager"] = True
    return kw


def full_prediction(run: Run) -> None:
    """kvcalc's plan with the logged settings, against the logged (or budget-implied) tokens."""
    log, model = run.log, run.model
    gpu = log.header.get("gpu", "unknown")
    if model is None:
        run.excluded = "no config for this model in configs/"
        return
    if gpu.startswith("unknown"):
        run.excluded = "GPU not named in the log"
        return
    if log.settings.get("cpu_offload_gb") or "cpu_offload" in log.header.get("note", ""):
        run.excluded = "CPU offload"
        return
    unseen = log.header.get("unseen")
    if run.logged_tokens is None:
        run.excluded = "nothing to compare (no budget line)"
        return
    try:
        pl = plan(model, **_plan_kwargs(log, gpu))
    except KVCalcError as exc:
        run.excluded = f"kvcalc refused: {exc}"
        return
    run.predicted_tokens = pl.kv_tokens
    run.in_range = pl.kv_tokens_range[0] <= run.logged_tokens <= pl.kv_tokens_range[1]
    if unseen:
        run.excluded = f"settings the log shows but kvcalc cannot see: {unseen.split(';')[0]}"
    run.error = (run.predicted_tokens - run.logged_tokens) / run.logged_tokens if run.logged_tokens else None


def runs() -> list[Run]:
    """Every stored excerpt, evaluated."""
    out = []
    for path in sorted(LOGS.glob("*.txt")):
        log = parse_log(path.read_text(encoding="utf-8"))
        run = Run(path.stem, log, load_config(log), path.read_text(encoding="utf-8"))
        if (
            run.model is not None
            and "max_model_len" not in log.settings
            and run.model.max_position_embeddings
        ):
            log.settings["max_model_len"] = run.model.max_position_embeddings  # vLLM's default
        exact_part(run)
        full_prediction(run)
        out.append(run)
    return out


def table(rs: list[Run]) -> str:
    """The benchmark table (markdown) and its summary lines."""
    head = "| run | vLLM | exact part | logged tokens | kvcalc tokens | error | in range | note |"
    lines = [head, "|---|---|---|---:|---:|---:|---|---|"]
    for r in rs:
        ex = ", ".join(f"{k} {'✔' if v else '✘'}" for k, v in r.exact.items()) or r.exact_note or "–"
        logged = (
            "–" if r.logged_tokens is None else f"{r.logged_tokens:,}" + (" (implied)" if r.implied else "")
        )
        pred = "–" if r.predicted_tokens is None else f"{r.predicted_tokens:,}"
        err = "–" if r.error is None else f"{100 * r.error:+.1f} %"
        rng = "–" if r.in_range is None else ("yes" if r.in_range else "no")
        row = [r.name, r.log.version or "?", ex, logged, pred, err, rng, r.excluded]
        lines.append("| " + " | ".join(row) + " |")
    checks = [v for r in rs for v in r.exact.values()]
    seen = [v for r in rs if not r.log.header.get("unseen") for v in r.exact.values()]
    errors = [abs(r.error) for r in rs if r.error is not None and not r.excluded]
    ranged = [r.in_range for r in rs if r.in_range is not None and not r.excluded]
    lines.append("")
    lines.append(
        f"exact part: {sum(checks)}/{len(checks)} printed numbers reproduced "
        f"({sum(1 for r in rs if r.exact and all(r.exact.values()))}/{sum(1 for r in rs if r.exact)} runs); "
        f"{sum(seen)}/{len(seen)} without the runs whose log hides a setting"
    )
    if errors:
        within = sum(1 for e in errors if e <= 0.03)
        lines.append(
            f"full prediction: {len(errors)} runs, median |error| {100 * statistics.median(errors):.2f} %, "
            f"max {100 * max(errors):.1f} %, within 3 %: {within}/{len(errors)}; "
            f"logged tokens inside kvcalc's range: {sum(ranged)}/{len(ranged)}"
        )
    lines.append(f"excluded from the full prediction: {sum(1 for r in rs if r.excluded)} runs")
    return "\n".join(lines)


def fit_summary() -> str:
    """Medians and ranges of the published overheads kvcalc/deploy/plan.py uses (GiB)."""
    fit = json.loads((LOGS / "fit.json").read_text(encoding="utf-8"))
    nvlink = {"h100", "h100-nvl", "h200", "b200", "b300", "a100-80gb", "a100-40gb", "mi300x", "mi325x"}
    groups = {
        "non-torch tp 1": [x["gib"] for x in fit["non_torch"] if x["tp"] == 1],
        "non-torch tp > 1, NVLink": [
            x["gib"] for x in fit["non_torch"] if x["tp"] > 1 and x["gpu"] in nvlink
        ],
        "non-torch tp > 1, PCIe": [
            x["gib"] for x in fit["non_torch"] if x["tp"] > 1 and x["gpu"] not in nvlink
        ],
        "CUDA graphs, largest capture ≥ 512": [
            x["gib"] for x in fit["cudagraph"] if (x["largest_capture"] or 0) >= 512
        ],
        "CUDA graphs, smaller captures": [
            x["gib"]
            for x in fit["cudagraph"]
            if x["largest_capture"] is not None and x["largest_capture"] < 512
        ],
        "CUDA graphs, all": [x["gib"] for x in fit["cudagraph"]],
        "activation bytes per logit": [
            x["gib"] * GIB / (x["max_num_seqs"] * x["vocab"]) for x in fit["activation_bytes_per_logit"]
        ],
    }
    lines = ["| part | n | median | min | max |", "|---|---:|---:|---:|---:|"]
    for name, values in groups.items():
        lines.append(f"| {name} | {len(values)} | {statistics.median(values):.3f} | {min(values):.2f} | "
                     f"{max(values):.2f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the table (or JSON with ``--json``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--fit", action="store_true", help="print the overhead fit (bench/vllm_logs/fit.json)")
    args = ap.parse_args(argv)
    if args.fit:
        print(fit_summary())
        return 0
    rs = runs()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "run": r.name,
                        "version": r.log.version,
                        "exact": r.exact,
                        "logged_tokens": r.logged_tokens,
                        "implied": r.implied,
                        "predicted_tokens": r.predicted_tokens,
                        "error": r.error,
                        "excluded": r.excluded,
                    }
                    for r in rs
                ],
                indent=1,
            )
        )
    else:
        print(table(rs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
