"""Read a vLLM start-up log: the settings it names and every memory line it prints.

Recognised lines (vLLM's own wording, V1 ``v1/worker/gpu_worker.py`` and ``v1/core/kv_cache_utils.py``;
V0 ``worker/worker.py`` and ``executor``)::

    vLLM API server version 0.10.2 | Initializing a V1 LLM engine (v0.10.2) with config: …
    non-default args: {'model': …, 'tensor_parallel_size': 2} | vllm serve MODEL --flag value …
    Using max model len 262144 | Chunked prefill is enabled with max_num_batched_tokens=8192
    Setting attention block size to 544 tokens … | … disabling prefix caching …
    Model loading took 74.2812 GiB … | Loading model weights took 14.9888 GB (V0)
    Available KV cache memory: 44.59 GiB | Memory profiling results: … kv_cache_size=3.81GiB … (V0)
    GPU KV cache size: 973,760 tokens | # GPU blocks: 1952, # CPU blocks: 2048 (V0)
    Maximum concurrency for 262,144 tokens per request: 14.77x
    Graph capturing finished in 25 secs, took 2.37 GiB
    Free memory on device (78.66/79.19 GiB) … Actual usage is 14.08 GiB for weight, …
    (0.95 GiB KV cache is needed, which is larger than the available KV cache memory (0.93 GiB)

A file may start with a header of ``# key: value`` lines closed by a line ``---`` (the excerpts in
``bench/vllm_logs/`` carry their source, GPU and the config to use that way). Nothing here raises on
unknown text: what is not recognised is simply not filled in.
"""

from __future__ import annotations

import ast
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LogLine", "VLLMLog", "parse_log", "parse_tokens"]

GIB = 1 << 30
MAX_LOG_CHARS = 4 * 1024 * 1024

_NUM = r"(-?[0-9][0-9,]*(?:\.[0-9]+)?)"


@dataclass(frozen=True)
class LogLine:
    """One recognised memory line: its number in the text, kind, printed value(s) and text."""

    line_no: int
    kind: str
    values: tuple[float, ...]
    text: str


@dataclass
class VLLMLog:
    """What a start-up log says (``None``: the log does not say)."""

    header: dict[str, str] = field(default_factory=dict)
    version: str | None = None
    engine: str | None = None  # "v0" or "v1"
    model: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    gpu_name: str | None = None
    memory: dict[str, float] = field(default_factory=dict)
    lines: list[LogLine] = field(default_factory=list)

    def first(self, kind: str) -> LogLine | None:
        """The first recognised line of ``kind``."""
        return next((x for x in self.lines if x.kind == kind), None)

    @property
    def recognised(self) -> bool:
        """True when at least one memory line or setting was found."""
        return bool(self.lines or self.settings or self.version or self.model)


def parse_tokens(text: str) -> int:
    """vLLM's human-readable integers: ``32768``, ``32,768``, ``32k`` (×1000), ``32K`` (×1024), ``1M``."""
    s = text.strip().replace(",", "").replace("_", "")
    scale = {"k": 1000, "K": 1024, "m": 1000**2, "M": 1024**2, "g": 1000**3, "G": 1024**3}
    if s and s[-1] in scale:
        return int(float(s[:-1]) * scale[s[-1]])
    return int(float(s))


def _num(text: str) -> float:
    return float(text.replace(",", ""))


# ------------------------------------------------------------------------------------------------
# settings: engine args from the three places a log names them

_FLAG_KEYS = {
    "tensor_parallel_size": "tp", "tp": "tp", "pipeline_parallel_size": "pp", "pp": "pp",
    "data_parallel_size": "dp", "dp": "dp", "max_model_len": "max_model_len",
    "gpu_memory_utilization": "gpu_memory_utilization", "kv_cache_dtype": "kv_cache_dtype",
    "block_size": "block_size", "max_num_seqs": "max_num_seqs",
    "max_num_batched_tokens": "max_num_batched_tokens", "enforce_eager": "enforce_eager",
    "enable_prefix_caching": "enable_prefix_caching", "quantization": "quantization", "dtype": "dtype",
    "speculative_config": "speculative_config", "kv_cache_memory": "kv_cache_memory",
    "kv_cache_memory_bytes": "kv_cache_memory", "enable_expert_parallel": "enable_expert_parallel",
    "cpu_offload_gb": "cpu_offload_gb", "model": "model", "model_tag": "model",
}  # fmt: skip
_BOOL_FLAGS = {"enforce_eager", "enable_prefix_caching", "enable_expert_parallel"}
_INT_SETTINGS = {"tp", "pp", "dp", "block_size", "max_num_seqs", "max_num_batched_tokens", "kv_cache_memory"}


def _setting(out: dict[str, Any], key: str, value: Any) -> None:
    """Store one engine arg under kvcalc's name, converted; unparseable values are skipped."""
    name = _FLAG_KEYS.get(key.strip().lstrip("-").replace("-", "_"))
    if name is None:
        return
    try:
        if name in _INT_SETTINGS or name == "max_model_len":
            out[name] = (
                value if isinstance(value, int) and not isinstance(value, bool) else parse_tokens(str(value))
            )
        elif name == "gpu_memory_utilization" or name == "cpu_offload_gb":
            out[name] = float(value)
        elif name in _BOOL_FLAGS:
            out[name] = value if isinstance(value, bool) else str(value).lower() not in ("false", "0", "none")
        elif name == "speculative_config":
            out[name] = value if isinstance(value, Mapping) else json.loads(str(value))
        elif str(value).strip("'\"") not in ("None", ""):
            out[name] = str(value).strip("'\"")
    except (ValueError, TypeError):
        return


def _serve_command(lines: list[str], start: int) -> str:
    """A ``vllm serve`` / api_server command, with its backslash continuations joined."""
    parts = []
    for line in lines[start : start + 60]:
        parts.append(line.rstrip().rstrip("\\").strip())
        if not line.rstrip().endswith("\\"):
            break
    return " ".join(parts)


def _flags(command: str, out: dict[str, Any]) -> None:
    """Engine args from a command line (``--flag value``, ``--flag=value``, ``--no-flag``)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    if "serve" in words:
        i = words.index("serve")
        if i + 1 < len(words) and not words[i + 1].startswith("-"):
            out.setdefault("model", words[i + 1])
    for i, word in enumerate(words):
        if not word.startswith("-"):
            continue
        key, eq, value = word.partition("=")
        bare = key.lstrip("-").replace("-", "_")
        if bare.startswith("no_") and bare[3:] in _BOOL_FLAGS:
            _setting(out, bare[3:], False)
            continue
        if _FLAG_KEYS.get(bare) in _BOOL_FLAGS and not eq:
            _setting(out, bare, True)
            continue
        if not eq:
            nxt = words[i + 1] if i + 1 < len(words) else ""
            if nxt.startswith("-") and not re.fullmatch(r"-?[0-9.]+", nxt):
                continue
            value = nxt
        _setting(out, bare, value)


_CONFIG_KEYS = frozenset(
    [
        "model",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "data_parallel_size",
        "max_model_len",
        "kv_cache_dtype",
        "enable_prefix_caching",
        "enforce_eager",
        "quantization",
        "dtype",
    ]
)


def _config_line(line: str, out: dict[str, Any]) -> None:
    """``Initializing a V1 LLM engine (vX) with config: model='…', tensor_parallel_size=2, …``."""
    for key, value in re.findall(r"\b([a-z_]+)=('[^']*'|[^,\s]+)", line):
        if key == "max_seq_len":
            key = "max_model_len"
        if key in _CONFIG_KEYS:
            _setting(out, key, value.strip("'").replace("torch.", ""))


def _args_dict(line: str, out: dict[str, Any]) -> None:
    """``non-default args: {'model': …}`` (a Python literal)."""
    text = line.split("non-default args:", 1)[1].strip()
    try:
        args = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return
    if isinstance(args, dict):
        for key, value in args.items():
            _setting(out, str(key), value)


# ------------------------------------------------------------------------------------------------
# memory lines

_MEMORY = (
    ("available", re.compile(r"Available KV cache memory:\s*" + _NUM + r"\s*GiB")),
    ("available", re.compile(r"available_kv_cache_memory\s+" + _NUM + r"\s*GiB")),
    ("available", re.compile(r"\bkv_cache_size=" + _NUM + r"\s*GiB")),
    ("tokens", re.compile(r"GPU KV cache size:\s*" + _NUM + r"\s*tokens")),
    ("concurrency", re.compile(r"Maximum concurrency for\s*" + _NUM + r"\s*tokens per request:\s*" + _NUM)),
    ("blocks", re.compile(r"#?\s*GPU blocks:\s*" + _NUM)),
    ("blocks", re.compile(r"num_gpu_blocks is:\s*" + _NUM)),
    ("weights", re.compile(r"Model loading took\s*" + _NUM + r"\s*GiB")),
    ("weights", re.compile(r"Loading model weights took\s*" + _NUM + r"\s*GB")),
    ("cudagraph", re.compile(r"Graph capturing finished in \S+ secs?, took\s*" + _NUM + r"\s*GiB")),
    ("cudagraph_estimate", re.compile(r"Estimated CUDA graph memory:\s*" + _NUM + r"\s*GiB")),
    ("available", re.compile(r"reserved for KV Cache is\s*" + _NUM + r"\s*GiB")),
    ("weights", re.compile(r"model weights take\s*" + _NUM + r"\s*GiB")),
    ("nontorch", re.compile(r"non_torch_memory takes\s*" + _NUM + r"\s*GiB")),
    ("activation", re.compile(r"PyTorch activation peak memory takes\s*" + _NUM + r"\s*GiB")),
    ("needed", re.compile(r"max seq len \(" + _NUM + r"\),? \(?" + _NUM + r" GiB KV cache is needed.*?"
                          r"available KV cache memory \(" + _NUM + r" GiB\)")),
    ("max_tokens", re.compile(r"maximum number of tokens that can be stored in KV cache \(" + _NUM + r"\)")),
    ("estimated_len", re.compile(r"estimated maximum model length is\s*" + _NUM)),
    ("total", re.compile(r"total_gpu_memory[=\s(]+" + _NUM + r"\s*GiB")),
    ("usage", re.compile(r"Free memory on device \(" + _NUM + "/" + _NUM + r" GiB\).*?Actual usage is "
                         + _NUM + r" GiB for weight, " + _NUM + r" GiB for peak activation, " + _NUM
                         + r" GiB for non-torch memory, and " + _NUM + r" GiB for CUDAGraph")),
    ("free", re.compile(r"Free memory on device (?:\S+ )?\(" + _NUM + "/" + _NUM + r" GiB\) on startup is "
                        r"less than desired GPU memory utilization \(" + _NUM + ", " + _NUM + r" GiB\)")),
    ("profile", re.compile(r"torch peak memory increase:\s*" + _NUM + r"\s*GiB; non-torch forward increase "
                           r"memory:\s*" + _NUM + r"\s*GiB; weights memory:\s*" + _NUM)),
    ("nontorch", re.compile(r"\bnon_torch_memory[=\s]+" + _NUM + r"\s*GiB")),
)  # fmt: skip

_GPU_NAMES = re.compile(
    r"(?:NVIDIA|device_name=NVIDIA_)[ _]?((?:GeForce[ _])?(?:RTX[ _])?(?:PRO[ _])?[A-Z]?[0-9]{2,4}[A-Za-z]*"
    r"(?:[ _-](?:80GB|NVL|SXM|PCIe|Ti|Blackwell|HBM3))?)"
)
_VERSION = (
    re.compile(r"vLLM API server version\s+v?([0-9][0-9A-Za-z.+-]*)"),
    re.compile(r"Initializing an? (?:V1 )?LLM engine \(v([0-9][0-9A-Za-z.+-]*)\)"),
    re.compile(r"^\s*vLLM Version:\s*v?([0-9][0-9A-Za-z.+-]*)"),
)


def _header(text: str) -> tuple[dict[str, str], list[str]]:
    lines = text.splitlines()
    if "---" in lines:
        cut = lines.index("---")
        head = lines[:cut]
        if head and all(x.startswith("#") for x in head) and head[0].startswith("# source:"):
            out = {}
            for x in head:
                key, sep, value = x[1:].partition(":")
                if sep:
                    out.setdefault(key.strip(), value.strip())
            return out, ["" for _ in range(cut + 1)] + lines[cut + 1 :]
    return {}, lines


def _logged_header(log: VLLMLog) -> None:
    """``# logged: weights=… available=…`` — figures a source published as a table, not as log lines."""
    for key, value in re.findall(r"([a-z_]+)=(-?[0-9.]+)", log.header.get("logged", "")):
        log.memory[key] = float(value)
        log.lines.append(LogLine(0, key, (float(value),), f"{key} {value} GiB (published table)"))


def _memory_line(log: VLLMLog, no: int, line: str) -> None:
    for kind, pattern in _MEMORY:
        m = pattern.search(line)
        if not m:
            continue
        values = tuple(_num(g) for g in m.groups())
        log.lines.append(LogLine(no, kind, values, line.strip()))
        if kind == "usage":
            log.memory.setdefault("total", values[1])
            for key, v in zip(("weights", "activation", "non_torch", "cudagraph"), values[2:], strict=True):
                log.memory.setdefault(key, v)
        elif kind == "profile":
            log.memory.setdefault("activation", values[0])
        elif kind == "nontorch":
            log.memory.setdefault("non_torch", values[0])
        elif kind in ("available", "weights", "cudagraph", "total", "activation"):
            log.memory.setdefault(kind, values[0])
        elif kind == "free":
            log.memory.setdefault("total", values[1])
        elif kind == "cudagraph_estimate":
            log.memory["cudagraph"] = values[0]
        if kind == "available" and "kv_cache_size=" in line:
            log.engine = log.engine or "v0"
        if kind in ("concurrency", "needed"):
            log.memory.setdefault("logged_max_model_len", values[0])


def parse_log(text: str) -> VLLMLog:
    """Everything :mod:`kvcalc.deploy.explain` needs from a log (see the module doc)."""
    log = VLLMLog()
    if not isinstance(text, str):
        return log
    log.header, lines = _header(text[:MAX_LOG_CHARS])
    _logged_header(log)
    flags: dict[str, Any] = {}
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        for pattern in _VERSION:
            m = pattern.search(line)
            if m and log.version is None:
                log.version = m.group(1)
        if "with config:" in line:
            log.engine = "v1" if "V1 LLM engine" in line else (log.engine or "v0")
            _config_line(line, flags)
        if "non-default args:" in line:
            _args_dict(line, flags)
        if re.search(r"(?:^|[\s$#>])(?:vllm serve|vllm\.entrypoints\.\S*api_server)\b", line):
            _flags(_serve_command(lines, no - 1), flags)
        m = re.search(r"gpu_memory_utilization[=\s(]+([0-9.]+)", line)
        m = m if m and "non-default args" not in line and "--gpu" not in line else None
        m = m or re.search(
            r"(?:Desired GPU memory utilization is \(|The current --gpu-memory-utilization=)([0-9.]+)", line
        )
        if m:
            flags.setdefault("gpu_memory_utilization", float(m.group(1).rstrip(".")))
        m = re.search(r"Using max model len\s+([0-9]+)", line)
        if m:
            flags.setdefault("max_model_len", int(m.group(1)))
        m = re.search(r"max_num_batched_tokens=([0-9]+)", line)
        if m and "Chunked prefill" in line:
            flags.setdefault("max_num_batched_tokens_default", int(m.group(1)))
        m = re.search(r"Setting attention block size to\s+([0-9]+) tokens", line)
        if m:
            flags["attention_block_size"] = int(m.group(1))
        if "disabling prefix caching" in line:
            flags.setdefault("enable_prefix_caching", False)
        if log.gpu_name is None:
            g = _GPU_NAMES.search(line)
            if g:
                log.gpu_name = g.group(1).replace("_", " ").strip()
        _memory_line(log, no, line)
    log.settings.update({k: v for k, v in flags.items() if k != "model"})
    if "max_model_len" not in log.settings and "logged_max_model_len" in log.memory:
        log.settings["max_model_len"] = int(log.memory["logged_max_model_len"])
    log.model = flags.get("model") or log.header.get("model")
    if log.engine is None and log.lines:
        v1 = any(x.kind in ("tokens",) for x in log.lines) or any(
            "Available KV cache" in x.text for x in log.lines
        )
        log.engine = "v1" if v1 else ("v0" if log.first("blocks") else None)
    if log.version is None and log.header.get("vllm"):
        log.version = log.header["vllm"]
    return log
