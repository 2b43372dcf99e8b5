#!/usr/bin/env python3
"""Run SGLang 0.5.23's own sizing code on CPU for every config in configs/ and store the results.

Opt-in (not part of test.py): ``python3 scripts/validate_sglang.py`` creates ``.cache/sglang-venv``
(CPU torch 2.13.0 — the only torch this project uses — transformers 5.19.0 as SGLang pins, a few
light pure-Python dependencies, and the ``sglang==0.5.23`` wheel from PyPI installed ``--no-deps``),
then re-runs itself inside that venv and writes ``docs/sglang_validation.json``.

What runs as SGLang code (imported from the wheel, unmodified):
  * ``configs.model_config.ModelConfig`` on each config directory: dtype, context_len, KV heads,
    head_dim / v_head_dim, attention arch, is_hybrid_swa, hybrid layer ids;
  * ``mem_cache.kv_cache_dtype.configure_kv_cache_dtype`` and, for DSA models,
    ``arg_groups.overrides._dsa_kv_cache_dtype_default`` (with the GPU reported as SM90);
  * ``model_executor.pool_configurator.create_memory_pool_configurator`` and the configurator it
    picks (DefaultPoolConfigurator / HybridSWAPoolConfigurator): the cell size and
    ``calculate_pool_sizes`` for two budgets;
  * ``configs.hybrid_arch.mambaish_config(...).mamba2_cache_params.mamba_cache_per_req``,
    ``KVCacheConfigurator._handle_max_mamba_cache`` and ``KVCacheConfigurator.resolve_max_num_reqs``;
  * ``arg_groups.memory_hook.handle_gpu_memory_settings`` for the default mem_fraction_static,
    chunked_prefill_size and decode cuda-graph max_bs of each GPU size and tp.

What is patched because it needs a GPU or a launched server (stated per field in the JSON):
  * the runtime-context accessors (``get_parallel``, ``get_schedule``, ``get_memory``, ``get_exec``,
    ``get_disagg``, ``get_spec``, ``get_context``) return plain namespaces holding SGLang's defaults
    for one rank (attn_tp_size = tp, no DCP/PP/speculative decoding, radix cache on, overlap on);
  * the KVCacheConfigurator instance is a namespace: ``layer_info.num_effective_layers`` is the
    model's ``num_hidden_layers`` (read from ``model_runner_components/layer_setup.py``: end_layer −
    start_layer with pp 1), the SWA/full layer ids come from SGLang's ``get_hybrid_layer_ids``;
  * ``ModelConfig._verify_quantization`` is skipped (mxfp4 is registered only on CUDA);
  * ``page_size`` is SGLang's default read from the source: 1, or 64 for DSA models;
  * GPU-only modules (kernels, flashinfer, …) are import stubs; transformers is told torchvision is
    absent.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The venv (``SGLANG_VALIDATE_VENV`` overrides, e.g. to try a fresh set-up elsewhere).
VENV = Path(os.environ.get("SGLANG_VALIDATE_VENV") or ROOT / ".cache" / "sglang-venv")
OUT = ROOT / "docs" / "sglang_validation.json"
OUT_MD = ROOT / "docs" / "sglang_validation.md"
SGLANG = "sglang==0.5.23"
#: pip packages SGLang's config / pool modules import (everything else is stubbed).
DEPS = [
    "torch==2.13.0",
    "transformers==5.19.0",
    "msgspec",
    "numpy",
    "pydantic",
    "psutil",
    "packaging",
    "requests",
    "orjson",
    "einops",
    "regex",
    "pyyaml",
    "pybase64",
    "triton",
    "pillow",
    "starlette",
    "pyzmq",
    "IPython",
    "aiohttp",
    "dill",
]
TPS = (1, 2, 8)
DTYPES = ("auto", "fp8_e4m3")
#: Budgets (bytes per rank available to the pools) each config is sized for.
BUDGETS = (8 * (1 << 30) + 12_345, 40 * (1 << 30) + 777)
#: GPU sizes for the mem_fraction_static table: nvidia-smi MiB (H100 SXM, H200, B200, A100-40GB, L40S,
#: RTX 4090, L4); mla False/True; tp 1, 2, 4, 8.
GPU_MIB = (81559.0, 143771.0, 183359.0, 40960.0, 46068.0, 24564.0, 23034.0)


def _venv_python() -> Path:
    return VENV / "bin" / "python"


def setup() -> None:
    """Create the venv with CPU torch and the sglang wheel (no dependencies)."""
    py = _venv_python()
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q"]
    have = subprocess.run(
        [str(py), "-c", "import sglang, torch; print(torch.__version__)"], capture_output=True, text=True
    )
    if have.returncode == 0 and have.stdout.startswith("2.13.0"):
        return
    subprocess.run([*pip, *DEPS], check=True)
    subprocess.run([*pip, "--no-deps", SGLANG], check=True)
    torch = subprocess.run(
        [str(py), "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True, check=True
    ).stdout
    if not torch.startswith("2.13.0"):
        raise SystemExit(f"expected CPU torch 2.13.0 in {VENV}, found {torch.strip()}")


# ----------------------------------------------------------------------------------------------
# Everything below runs inside the venv (``--inner``).
# ----------------------------------------------------------------------------------------------

STUB = {
    "gguf",
    "torchvision",
    "tvm_ffi",
    "sgl_kernel",
    "flashinfer",
    "vllm",
    "deep_gemm",
    "deep_ep",
    "flash_mla",
    "cuda",
    "pynvml",
    "decord",
    "soundfile",
    "xgrammar",
    "outlines",
    "llguidance",
    "triton_kernels",
    "torch_memory_saver",
    "quack",
    "cutlass",
    "tilelang",
    "flash_attn",
    "openai_harmony",
    "partial_json_parser",
    "compressed_tensors",
    "mistral_common",
    "kernels",
    "humming_kernels",
    "interegular",
    "timm",
    "tiktoken",
    "sentencepiece",
    "modelscope",
    "blobfile",
    "datasets",
    "uvloop",
    "setproctitle",
}


def _install_stubs() -> None:
    import importlib.abc
    import importlib.machinery
    import types

    class Dummy(type):
        def __getattr__(cls, name: str) -> object:
            if name.startswith("__") and name.endswith("__"):
                raise AttributeError(name)
            return Any_

        def __or__(cls, other: object) -> object:
            return cls

        def __ror__(cls, other: object) -> object:
            return cls

        def __getitem__(cls, key: object) -> object:
            return cls

    class Any_(metaclass=Dummy):
        def __init__(self, *a: object, **k: object) -> None:
            pass

        def __call__(self, *a: object, **k: object) -> object:
            return Any_()

    class Module(types.ModuleType):
        def __getattr__(self, name: str) -> object:
            if name.startswith("__") and name.endswith("__"):
                raise AttributeError(name)
            return Any_

    class Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
            if name.split(".")[0] in STUB:
                return importlib.machinery.ModuleSpec(name, self, is_package=True)
            return None

        def create_module(self, spec):  # type: ignore[no-untyped-def]
            module = Module(spec.name)
            module.__path__ = []
            return module

        def exec_module(self, module):  # type: ignore[no-untyped-def]
            pass

    sys.meta_path.insert(0, Finder())
    import transformers.utils as tu
    import transformers.utils.import_utils as iu

    for m in (iu, tu):
        m.is_torchvision_available = lambda: False
        m.is_torchvision_v2_available = lambda: False
    iu.is_torchvision_greater_or_equal = lambda *a, **k: False


def _ns(**kw):  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    return SimpleNamespace(**kw)


class _Runtime:
    """SGLang's runtime-context bags for one rank, holding the server defaults."""

    def __init__(self, tp: int, page_size: int) -> None:
        self.parallel = _ns(
            attn_tp_size=tp,
            attn_dcp_size=1,
            pp_size=1,
            launch_world_size=1,
            tp_size=tp,
            attn_cp_size=1,
            enable_dsa_cache_layer_split=False,
        )
        self.schedule = _ns(
            swa_full_tokens_ratio=0.8,
            mamba_full_memory_ratio=0.9,
            max_total_tokens=None,
            page_size=page_size,
            max_running_requests=None,
            max_mamba_cache_size=None,
            chunked_prefill_size=8192,
            disable_overlap_schedule=False,
            _swa_full_tokens_ratio_explicitly_set=False,
        )
        self.memory = _ns(
            enable_unified_memory=False,
            enable_hisparse=False,
            disable_radix_cache=False,
            enable_hierarchical_cache=False,
            enable_unified_cache_external_linker=False,
        )
        self.exec = _ns(
            mamba=_ns(
                enable_mamba_extra_buffer=True,
                enable_mamba_extra_buffer_lazy=False,
                enable_linear_replayssm_spec=False,
            ),
            kernel=_ns(dsa_prefill_backend=None, dsa_decode_backend=None),
        )
        self.disagg = _ns(disaggregation_mode="null")
        self.spec = _ns(speculative_algorithm=None, speculative_num_draft_tokens=None)

    def override(self, _name: str, **fields: object) -> None:
        for key, value in fields.items():
            setattr(self.schedule, key, value)

    def patch(self, *modules) -> None:  # type: ignore[no-untyped-def]
        for m in modules:
            for name, value in (
                ("get_parallel", lambda: self.parallel),
                ("get_schedule", lambda: self.schedule),
                ("get_memory", lambda: self.memory),
                ("get_exec", lambda: self.exec),
                ("get_disagg", lambda: self.disagg),
                ("get_spec", lambda: self.spec),
                ("get_context", lambda: self),
            ):
                if hasattr(m, name):
                    setattr(m, name, value)


def _spec_algorithm():  # type: ignore[no-untyped-def]
    false = lambda: False  # noqa: E731
    return _ns(
        is_eagle=false, is_standalone=false, is_dflash_family=false, is_none=lambda: True, is_dspark=false
    )


def _model_config(path: Path):  # type: ignore[no-untyped-def]
    from sglang.srt.configs.model_config import ModelConfig

    ModelConfig._verify_quantization = lambda self: None
    return ModelConfig(str(path), trust_remote_code=False)


def _kv_dtype(mc, want: str, runtime: _Runtime):  # type: ignore[no-untyped-def]
    """SGLang's cache dtype: the DSA default pass (on SM90), then configure_kv_cache_dtype."""
    import torch
    from sglang.srt.arg_groups import overrides
    from sglang.srt.configs.model_config import is_deepseek_dsa
    from sglang.srt.mem_cache.kv_cache_dtype import configure_kv_cache_dtype

    if is_deepseek_dsa(mc.hf_config):
        overrides.model_config_of = lambda view: mc
        overrides.get_platform = lambda: _ns(is_npu=False, is_xpu=False, is_hip=False)
        torch.cuda.get_device_capability = lambda *a: (9, 0)
        view = _ns(kv_cache_dtype=want, dsa_prefill_backend=None, dsa_decode_backend=None)
        want = overrides._dsa_kv_cache_dtype_default(view).get("kv_cache_dtype", want)
    _, dtype = configure_kv_cache_dtype(
        server_args_kv_cache_dtype=want,
        model=None,
        model_dtype=mc.dtype,
        is_draft_worker=False,
        is_dflash=False,
        speculative_draft_attention_backend=None,
    )
    return dtype, want


def _case(path: Path, tp: int, want: str) -> dict:
    """One config, tp and --kv-cache-dtype through SGLang's configurators."""
    import torch
    from sglang.srt.configs import hybrid_arch, qwen3_next
    from sglang.srt.configs.model_config import AttentionArch, get_hybrid_layer_ids, is_deepseek_dsa
    from sglang.srt.mem_cache import kv_cache_configurator as kcc
    from sglang.srt.model_executor import pool_configurator as pc

    mc = _model_config(path)
    page = 64 if is_deepseek_dsa(mc.hf_config) else 1
    rt = _Runtime(tp, page)
    import sglang.srt.configs.mamba_utils as mu
    import sglang.srt.layers.cp.utils as cpu_utils
    import sglang.srt.runtime_context as runtime_context

    modules = [pc, kcc, hybrid_arch, qwen3_next, mu, cpu_utils, runtime_context]
    for name in ("qwen3_5", "nemotron_h"):
        with contextlib.suppress(ImportError):
            modules.append(__import__(f"sglang.srt.configs.{name}", fromlist=["x"]))
    modules += [
        m for n, m in list(sys.modules.items()) if n.startswith("sglang.srt.configs.") and m is not None
    ]
    rt.patch(*modules)
    for m in modules:
        if hasattr(m, "linear_attn_tp_size"):
            m.linear_attn_tp_size = lambda: tp
    from sglang.srt.arg_groups import overrides

    arch = mc.hf_config.architectures[0]
    # overrides.py::_mamba_radix_cache_resolution with strategy auto, overlap on, triton backend.
    rt.exec.mamba.enable_mamba_extra_buffer = (
        arch in overrides._MAMBA_RADIX_CACHE_ARCHS and arch in overrides._MAMBA_EXTRA_BUFFER_ARCHS
    )
    dtype, resolved = _kv_dtype(mc, want, rt)
    swa_ids, full_ids = (None, None)
    if mc.is_hybrid_swa:
        swa_ids, full_ids = get_hybrid_layer_ids(mc.hf_config.architectures, mc.hf_text_config)
    layer_info = _ns(
        num_effective_layers=mc.num_hidden_layers,
        start_layer=0,
        end_layer=mc.num_hidden_layers,
        full_attention_layer_ids=full_ids or [],
        swa_attention_layer_ids=swa_ids or [],
        is_hybrid_swa_mtp_draft=False,
    )
    kvc = _ns(
        model_config=mc,
        kv_cache_dtype=dtype,
        kv_cache_dtype_str=resolved,
        model_dtype=mc.dtype,
        page_size=page,
        layer_info=layer_info,
        server_args=_ns(enable_hisparse=False),
        is_draft_worker=False,
        spec_algorithm=_spec_algorithm(),
        use_mla_backend=mc.attention_arch == AttentionArch.MLA,
        is_hybrid_swa=mc.is_hybrid_swa,
        sliding_window_size=getattr(mc.hf_text_config, "sliding_window", None),
        pp_size=1,
        attn_dp_size=1,
        fused_entry_bytes=lambda name: None,
        extra_mamba_cache_bytes_per_req=0,
        device="cpu",
    )
    pc.compute_page_shard_scratch_bytes = lambda *a, **k: 0
    kvc.mambaish_config = hybrid_arch.mambaish_config(mc)
    kvc.hybrid_gdn_config = hybrid_arch.hybrid_gdn_config(mc)
    kvc.hybrid_kda_config = None
    kvc._calculate_mamba_ratio = lambda: kcc.KVCacheConfigurator._calculate_mamba_ratio(kvc)
    conf = pc.create_memory_pool_configurator(kvc)
    row: dict = {
        "config": str(path.relative_to(ROOT / "configs")),
        "tp": tp,
        "kv_cache_dtype": want,
        "resolved_kv_cache_dtype": str(dtype).replace("torch.", ""),
        "model_dtype": str(mc.dtype).replace("torch.", ""),
        "context_len": mc.context_len,
        "page_size": page,
        "configurator": type(conf).__name__,
        "attention_arch": mc.attention_arch.name,
        "architecture": mc.hf_config.architectures[0],
        "servable": _servable(mc.hf_config.architectures[0]),
        "qkv_divisible": _qkv_divisible(mc, tp),
    }
    if isinstance(conf, pc.HybridSWAPoolConfigurator):
        row["cell_bytes"] = {
            "full": conf._full_per_token * conf._full_layers_num,
            "swa": conf._swa_per_token * conf._swa_layers_num,
        }
        row["cell_size"] = conf._cell_size
    else:
        row["cell_bytes"] = {"full": conf._cell_size}
        row["cell_size"] = conf._cell_size
    slot = None
    if kvc.mambaish_config is not None:
        slot = kvc.mambaish_config.mamba2_cache_params.mamba_cache_per_req
        row["cell_bytes"]["mamba"] = slot
        row["mamba_cap_ratio"] = kcc.KVCacheConfigurator._calculate_mamba_ratio(kvc)
    row["budgets"] = []
    for budget in BUDGETS:
        rt.schedule.max_mamba_cache_size = None
        try:
            rest = budget / (1 << 30)
            if kvc.mambaish_config is not None:
                rest = kcc.KVCacheConfigurator._handle_max_mamba_cache(kvc, rest)
            available = int(rest * (1 << 30))
            sizes = conf.calculate_pool_sizes(available, page)
            reqs = kcc.KVCacheConfigurator.resolve_max_num_reqs(kvc, sizes.max_total_num_tokens)
            row["budgets"].append(
                {
                    "available_bytes": budget,
                    "max_total_num_tokens": sizes.max_total_num_tokens,
                    "swa_max_total_num_tokens": sizes.swa_max_total_num_tokens,
                    "max_mamba_cache_size": rt.schedule.max_mamba_cache_size,
                    "max_running_requests": reqs,
                }
            )
        except Exception as exc:  # SGLang's own refusal (e.g. SWA pool too small)
            row["budgets"].append({"available_bytes": budget, "error": f"{type(exc).__name__}: {exc}"})
    del torch
    return row


def _qkv_divisible(mc, tp: int) -> bool:  # type: ignore[no-untyped-def]
    """Whether QKVParallelLinear (layers/linear.py) can split the heads: divide(heads, tp), and
    divide(kv, tp) or divide(tp, kv) — SGLang's own ``divide``; MHA models only."""
    from sglang.srt.configs.model_config import AttentionArch
    from sglang.srt.distributed.utils import divide

    if mc.attention_arch != AttentionArch.MHA:
        return True
    try:
        divide(mc.num_attention_heads, tp)
        kv = mc.get_total_num_kv_heads()
        divide(tp, kv) if tp >= kv else divide(kv, tp)
    except (AssertionError, ValueError, ZeroDivisionError):
        return False
    return True


def _servable(arch: str) -> bool:
    """Whether SGLang has a model class for ``arch`` (a ``class <arch>`` in srt/models/*.py)."""
    import re

    import sglang

    models = Path(sglang.__file__).parent / "srt" / "models"
    pattern = re.compile(rf"^class {re.escape(arch)}\b", re.MULTILINE)
    return any(pattern.search(f.read_text(errors="ignore")) for f in models.glob("*.py"))


def _mem_fraction(gpu_mib: float, tp: int, mla: bool) -> dict:
    """handle_gpu_memory_settings on a namespace ServerArgs for a text model."""
    from sglang.srt.arg_groups import cuda_graph_hook, memory_hook
    from sglang.srt.arg_groups.model_overrides import qwen3_vl
    from sglang.srt.model_executor.cuda_graph_config import default_cuda_graph_config

    cfg = _ns(
        device="cuda",
        cuda_graph_config=default_cuda_graph_config(),
        chunked_prefill_size=None,
        tp_size=tp,
        pp_size=1,
        max_running_requests=None,
        mem_fraction_static=None,
        max_total_tokens=None,
        model_path="model",
        language_only=False,
        language_model_only=False,
        disaggregation_mode="null",
        max_prefill_tokens=16384,
        speculative_num_draft_tokens=None,
        enable_symm_mem=False,
        disable_cuda_graph_padding=False,
        speculative_algorithm=None,
        torch_compile_max_bs=None,
        attn_dp_size=1,
        moe_a2a_backend="none",
        _cuda_graph_config_locked=set(),
    )
    cfg.cuda_graph_config.prefill.backend = "breakable"  # default_prefill_backend() on CUDA

    def declare(server_args, source, **fields):  # type: ignore[no-untyped-def]
        for key, value in fields.items():
            setattr(cfg, key, value)

    for m in (memory_hook, cuda_graph_hook):
        m.resolving_view = lambda sa: cfg
        m.resolved_view = lambda sa: cfg
        m.declare_resolution = declare
    memory_hook.model_config_of = lambda sa: _ns(is_multimodal=False, hf_config=_ns())
    memory_hook.post_capture_kv_sizing_planned = lambda sa: False
    memory_hook.use_mla_backend = lambda sa: mla
    memory_hook.attn_dp_enabled_of = lambda view: False
    memory_hook.get_platform = lambda: _ns(is_xpu=False)
    memory_hook.get_device_memory_capacity = lambda device=None: gpu_mib
    qwen3_vl.expand_multimodal_decode_graph_to_running_limit = lambda *a, **k: None
    memory_hook.handle_gpu_memory_settings(cfg)
    return {
        "gpu_mem_mib": gpu_mib,
        "tp": tp,
        "mla": mla,
        "mem_fraction_static": cfg.mem_fraction_static,
        "chunked_prefill_size": cfg.chunked_prefill_size,
        "cuda_graph_max_bs": cfg.cuda_graph_config.decode.max_bs,
    }


def inner() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _install_stubs()
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    rows, refused = [], []
    for cfg in sorted((ROOT / "configs").glob("*/*/config.json")):
        for tp in TPS:
            for want in DTYPES:
                try:
                    rows.append(_case(cfg.parent, tp, want))
                except Exception as exc:
                    refused.append(
                        {
                            "config": str(cfg.parent.relative_to(ROOT / "configs")),
                            "tp": tp,
                            "kv_cache_dtype": want,
                            "error": f"{type(exc).__name__}: {exc}"[:400],
                        }
                    )
    fractions = [_mem_fraction(g, tp, mla) for g in GPU_MIB for tp in (1, 2, 4, 8) for mla in (False, True)]
    doc = {
        "sglang": "0.5.23",
        "how": __doc__,
        "budgets": list(BUDGETS),
        "rows": rows,
        "refused": refused,
        "mem_fraction_static": fractions,
    }
    OUT.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    OUT_MD.write_text(markdown(doc))
    print(f"{len(rows)} rows, {len(refused)} refused, {len(fractions)} mem_fraction rows -> {OUT}")


def markdown(doc: dict) -> str:
    """docs/sglang_validation.md: one line per config at tp 1 / 8, auto dtype, plus the refusals."""
    out = [
        "# SGLang 0.5.23: its own sizing code on every config",
        "",
        "Written by `scripts/validate_sglang.py` (opt-in; see its docstring for what ran as SGLang code",
        "and what was patched). Full data: `sglang_validation.json` (tp 1/2/8 × auto/fp8_e4m3,",
        "two budgets each);",
        "`tests/test_sglang.py` checks kvcalc against every row. Cells are bytes per token per rank",
        f"(mamba: per state slot); tokens for a budget of {doc['budgets'][1]:,} bytes per rank.",
        "",
        "kvcalc refuses, with the reason, the rows SGLang cannot serve (no model class: Jamba, T5, Falcon)",
        "and",
        "the ones it does not model under SGLang (Whisper's encoder-decoder buffers, pure-SSM Mamba;",
        "`state-spaces/mamba2-2.7b` has no `architectures` and SGLang reads it as MambaForCausalLM).",
        "",
        "| config | tp | kv dtype | configurator | cell bytes | context_len | max_total_num_tokens "
        "| max_running_requests |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        if r["kv_cache_dtype"] != "auto" or r["tp"] == 2:
            continue
        b = r["budgets"][1]
        cells = ", ".join(f"{k} {v:,}" for k, v in r["cell_bytes"].items())
        tokens = b.get("max_total_num_tokens", b.get("error", ""))
        served = "" if r["servable"] else " (no SGLang model class)"
        if not r["qkv_divisible"]:
            served += " (tp does not split the heads: model cannot be built)"
        out.append(
            f"| {r['config']}{served} | {r['tp']} | {r['resolved_kv_cache_dtype']} | {r['configurator']} "
            f"| {cells} | "
            f"{r['context_len']:,} | {tokens} | {b.get('max_running_requests', '')} |"
        )
    out += ["", "Configs SGLang's code could not size on CPU:", ""]
    if not doc["refused"]:
        out.append("- none")
    seen = set()
    for r in doc["refused"]:
        if r["config"] not in seen:
            seen.add(r["config"])
            out.append(f"- {r['config']}: {r['error']}")
    out += [
        "",
        "Default mem_fraction_static (handle_gpu_memory_settings, text models):",
        "",
        "| GPU MiB | tp | MLA | mem_fraction_static | chunked_prefill_size | cuda_graph_max_bs |",
        "|---|---|---|---|---|---|",
    ]
    for f in doc["mem_fraction_static"]:
        out.append(
            f"| {f['gpu_mem_mib']:.0f} | {f['tp']} | {f['mla']} | {f['mem_fraction_static']} | "
            f"{f['chunked_prefill_size']} | {f['cuda_graph_max_bs']} |"
        )
    return "\n".join(out) + "\n"


def main() -> None:
    if "--inner" in sys.argv:
        inner()
        return
    setup()
    subprocess.run([str(_venv_python()), __file__, "--inner"], check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
