"""One model under several engines, side by side, and how each engine names what it is asked.

The compare op with ``engines: [...]`` answers each engine at the same context, batch, cache dtype,
tensor-parallel size and GPU (:func:`kvcalc.web._compare` once per engine) and gives each its launch
line in its own vocabulary, with the defaults kvcalc assumes:

- vLLM ``vllm serve --max-model-len --max-num-seqs --kv-cache-dtype --block-size --gpu-memory-utilization``
  (vllm/engine/arg_utils.py EngineArgs; block_size 16, utilization :data:`DEFAULT_GPU_MEMORY_UTILIZATION`);
- SGLang ``--context-length --max-running-requests --kv-cache-dtype --page-size --mem-fraction-static``
  (python/sglang/srt/server_args.py; page_size and the GPU's default fraction from
  :mod:`kvcalc.engines.sglang`);
- TensorRT-LLM ``trtllm-serve --max_seq_len --max_batch_size --tp_size`` and ``KvCacheConfig``
  ``tokens_per_block`` / ``free_gpu_memory_fraction`` (tensorrt_llm/llmapi/llm_args.py);
- llama.cpp ``llama-server -c -np -ctk -ctv`` (common/arg.cpp). Its ``-c`` is the context of all
  ``-np`` slots together (each slot gets ``-c / -np``), so "batch b at L tokens each" is ``-c b·L -np b``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from typing import Any

from kvcalc.core.model import Model
from kvcalc.deploy.gpus import get_gpu
from kvcalc.deploy.plan import DEFAULT_GPU_MEMORY_UTILIZATION
from kvcalc.engines import ENGINES
from kvcalc.engines import sglang as sg
from kvcalc.engines import trtllm as trt
from kvcalc.engines import vllm as vl
from kvcalc.errors import KVCalcError

_FP8 = ("fp8", "fp8_e4m3", "fp8_e5m2")
_GGML = {"bf16": "bf16", "fp16": "f16", "fp32": "f32", "q8_0": "q8_0", "q4_0": "q4_0"}


def engines_of(value: Any) -> list[str]:
    """The request's ``engines``: a list of distinct registry names (at least one)."""
    if not isinstance(value, list) or not value or len(value) > len(ENGINES):
        raise KVCalcError(f"engines: expected a list of 1 to {len(ENGINES)} engine names")
    unknown = [e for e in value if e not in ENGINES]
    if unknown:
        raise KVCalcError(f"engines: unknown engine {unknown[0]!r}; choose from {', '.join(ENGINES)}")
    return list(dict.fromkeys(value))


def engine_seq_len(engine: str, seq_len: int, batch_size: int) -> int:
    """The ``seq_len`` kvcalc's engine module takes for ``batch_size`` sequences of ``seq_len`` tokens
    each: llama.cpp's ``-c`` counts all slots (llama-context.cpp: n_ctx_seq = n_ctx / n_seq_max)."""
    return seq_len * batch_size if engine == "llama.cpp" else seq_len


def _vllm_dtype(d: str) -> str:
    return d if d in _FP8 else "auto"


def _sglang_dtype(d: str) -> str:
    return "fp8_e4m3" if d == "fp8" else d if d in sg.KV_CACHE_DTYPES else "auto"


def _mem_fraction(model: Model, gpu: str | None, tp: int) -> str:
    """SGLang's default ``--mem-fraction-static`` on this GPU (memory_hook.py), or why not known."""
    if gpu is None:
        return "(its default for the GPU)"
    g = get_gpu(gpu)
    try:
        mib = sg.gpu_memory_mib(g.key, g.memory_bytes, g.memory_source)
        return str(sg.gpu_defaults(mib, tp, mla=model.architecture in sg.MLA_ARCHS).mem_fraction_static)
    except KVCalcError:
        return "(its default for the GPU)"


def _page_size(model: Model) -> str:
    try:
        return str(sg.page_size(model, sg.Options()))
    except (KVCalcError, TypeError):
        return "(its default)"


def vocabulary(engine: str, model_id: str, model: Model, s: Any, d: str) -> dict[str, Any]:
    """The engine's launch line for this comparison and what its own terms mean (``s``: Settings)."""
    L, b, tp = s.seq_len, s.batch_size, s.tensor_parallel_size
    if engine == "vllm":
        block = vl.OPTIONS["block_size"]
        return {
            "command": f"vllm serve {model_id} --max-model-len {L} --max-num-seqs {b} "
            f"--kv-cache-dtype {_vllm_dtype(d)} --block-size {block} --tensor-parallel-size {tp} "
            f"--gpu-memory-utilization {DEFAULT_GPU_MEMORY_UTILIZATION}",
            "terms": {
                "--max-model-len": "tokens per request (prompt + output)",
                "--block-size": f"tokens per KV block ({block}); a request holds whole blocks",
                "gpu_memory_utilization": "share of the GPU's total memory vLLM may use; the KV cache gets "
                "what is left after weights, activations and CUDA graphs",
            },
        }
    if engine == "sglang":
        return {
            "command": f"python -m sglang.launch_server --model-path {model_id} --context-length {L} "
            f"--max-running-requests {b} --kv-cache-dtype {_sglang_dtype(d)} --page-size {_page_size(model)} "
            f"--tp {tp} --mem-fraction-static {_mem_fraction(model, s.gpu, tp)}",
            "terms": {
                "--context-length": "tokens per request",
                "page_size": "tokens per KV page (1 by default: no rounding)",
                "--mem-fraction-static": "share of GPU memory for weights + KV pool (SGLang picks it from "
                "the GPU size, tp and chunked prefill)",
            },
        }
    if engine == "trtllm":
        return {
            "command": f"trtllm-serve {model_id} --max_seq_len {L} --max_batch_size {b} --tp_size {tp} "
            f"--kv_cache_free_gpu_memory_fraction {trt.FREE_GPU_MEMORY_FRACTION}",
            "terms": {
                "tokens_per_block": f"tokens per KV block (KvCacheConfig, {trt.TOKENS_PER_BLOCK})",
                "free_gpu_memory_fraction": "share of the memory still free after loading that the KV "
                "cache takes",
                "kv_cache_dtype": f"{d} (KvCacheConfig.dtype)",
            },
        }
    if engine == "llama.cpp":
        t = _GGML.get(d, d)
        return {
            "command": f"llama-server -m {model_id.split('/')[-1]}.gguf -c {engine_seq_len(engine, L, b)} "
            f"-np {b} -ctk {t} -ctv {t}",
            "terms": {
                "-c": "context of all slots together (each of the -np slots gets -c / -np tokens)",
                "-np": "parallel slots (sequences decoded at once)",
                "-ctk / -ctv": "K / V cache types (f16, q8_0, q4_0, …)",
            },
        }
    if engine == "transformers":
        return {
            "command": f"AutoModelForCausalLM.from_pretrained({model_id!r}).generate(…, max_length={L}) "
            f"with {b} sequence(s)",
            "terms": {"DynamicCache": "grows token by token in the model dtype, on one device"},
        }
    return {
        "command": None,
        "terms": {"ideal": "bytes per token × tokens: no blocks, no pages, no reserve"},
    }


def side_by_side(req: Mapping[str, Any], compare: Any, settings: Any, model_of: Any) -> dict[str, Any]:
    """``compare`` (kvcalc.web._compare) once per engine of ``req["engines"]`` for its one model, each
    with its launch line per cache dtype (``model_of(id)``: the parsed model, once compare loaded it)."""
    engines = engines_of(req["engines"])
    items = req.get("models")
    if not isinstance(items, list) or len(items) != 1:
        raise KVCalcError("models: engines side by side compares one model (send exactly one)")
    base, _ = settings({**req, "engine": "ideal"})
    out = []
    model_row: dict[str, Any] | None = None
    for engine in engines:
        sub = {k: v for k, v in req.items() if k != "engines"}
        sub |= {"engine": engine, "lines": False}  # compare itself asks llama.cpp for -c b·L -np b
        entry: dict[str, Any] = {"engine": engine, "row": None, "error": None, "notices": [], "launch": {}}
        entry["room_rule"] = None
        if engine == "llama.cpp":
            kept = [d for d in base.kv_dtypes if d in _GGML]
            if not kept:
                entry["error"] = f"kv_dtypes: llama.cpp's -ctk/-ctv take none of {', '.join(base.kv_dtypes)}"
                out.append(entry)
                continue
            sub["kv_dtypes"] = kept
            if len(kept) < len(base.kv_dtypes):
                dropped = ", ".join(d for d in base.kv_dtypes if d not in kept)
                entry["notices"].append(f"llama.cpp's -ctk/-ctv take no {dropped}: not shown.")
        try:
            resp = compare(sub)
        except KVCalcError as exc:
            entry["error"] = str(exc)
            out.append(entry)
            continue
        entry["notices"] += resp["notices"]
        entry["room_rule"] = resp["room_rule"]
        if resp["errors"]:
            entry["error"] = resp["errors"][0]["error"]
        if resp["models"]:
            row = resp["models"][0]
            entry["row"] = row
            model_row = model_row or row
        model_id = (row := (resp["models"] or resp["errors"] or [{}])[0]).get("id")
        model = model_of(model_id) if model_id else None
        if model is not None:
            s = replace(base, tensor_parallel_size=resp["settings"]["tensor_parallel_size"])
            dtypes = resp["settings"]["kv_dtypes"]
            entry["launch"] = {d: vocabulary(engine, model_id, model, s, d) for d in dtypes}
        out.append(entry)
    return {
        "settings": {**asdict(base), "engine": None, "engines": engines},
        "model": model_row,
        "engines": out,
    }
