#!/usr/bin/env python3
"""Measure llama.cpp's own KV-cache / recurrent-state allocation for real model geometries (opt-in).

Not part of ``test.py``: it downloads the ``llama-cpp-python==0.3.36`` sdist from PyPI (it vendors
llama.cpp 0c1e57098, named in the sdist's CHANGELOG), builds the ``llama`` library with cmake + ninja
on the CPU, compiles ``scripts/llamacpp_probe.cpp`` against it, and for each model:

1. takes the real ``configs/<model>/config.json`` and shrinks only what does not touch the cache
   (hidden size, FFN, vocabulary, query heads, number of experts); layer count, KV heads, head_dim,
   windows, MLA ranks and state sizes stay real;
2. saves a randomly initialised transformers model of that config and converts it with the sdist's own
   ``convert_hf_to_gguf.py`` (tokenizer replaced by llama.cpp's "none" vocabulary: no tokenizer files);
3. creates llama.cpp contexts at several ``-c``, ``-np``, unified/per-stream, ``-ctk/-ctv``, flash
   attention and ``--swa-full`` settings and records the memory module's own log lines plus the exact
   bytes ``llama_get_memory_breakdown`` reports for it.

Most rows use llama.cpp's ``no_alloc`` model mode (what its ``--fit`` logic uses: the memory module
builds every tensor and reports sizes without allocating); ``--alloc-check`` repeats the small rows
with real allocation, and both are recorded. Output: ``docs/llamacpp_validation.json``.

Usage: ``.venv/bin/python scripts/validate_llamacpp.py [--only NAME ...] [--alloc-check]``
(about 15 minutes for all models on 2 busy cores, the build included; reruns reuse .cache/llamacpp).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "llamacpp"
SDIST_VERSION = "0.3.36"
LLAMA_CPP_COMMIT = "0c1e57098"
SDIST = CACHE / f"llama_cpp_python-{SDIST_VERSION}"
SRC = SDIST / "vendor" / "llama.cpp"
BUILD = CACHE / "build"
PROBE_SRC = ROOT / "scripts" / "llamacpp_probe.cpp"
PROBE_BIN = CACHE / "llamacpp_probe"
OUT = ROOT / "docs" / "llamacpp_validation.json"
#: GGUF headers (metadata + tensor infos, no tensor data) of the converted models, for tests/test_gguf.py
HEADERS = ROOT / "tests" / "data" / "llamacpp_gguf"

N_BATCH, N_UBATCH = 2048, 512  # llama.cpp tools' defaults (common/common.h)


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run(cmd, check=True, text=True, **kw)


# ---------------------------------------------------------------- build


def fetch_sdist() -> None:
    """pip-download the sdist (no binaries) and unpack it under .cache/llamacpp."""
    if SRC.is_dir():
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    tgz = CACHE / f"llama_cpp_python-{SDIST_VERSION}.tar.gz"
    if not tgz.exists():
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                f"llama-cpp-python=={SDIST_VERSION}",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                str(CACHE),
            ]
        )
    with tarfile.open(tgz) as tf:
        tf.extractall(CACHE, filter="data")
    changelog = (SDIST / "CHANGELOG.md").read_text()
    if LLAMA_CPP_COMMIT not in changelog:
        raise SystemExit(f"sdist does not name llama.cpp {LLAMA_CPP_COMMIT}")


def build_llama() -> None:
    """cmake + ninja, target ``llama`` (shared), CPU only, niced, two jobs."""
    lib = BUILD / "bin" / "libllama.so"
    if not lib.exists():
        if not (BUILD / "build.ninja").exists():
            run(
                [
                    "nice",
                    "-n",
                    "10",
                    "cmake",
                    "-S",
                    str(SRC),
                    "-B",
                    str(BUILD),
                    "-G",
                    "Ninja",
                    "-DCMAKE_BUILD_TYPE=Release",
                    "-DGGML_NATIVE=OFF",
                    "-DLLAMA_CURL=OFF",
                    "-DLLAMA_BUILD_TESTS=OFF",
                    "-DLLAMA_BUILD_EXAMPLES=OFF",
                    "-DLLAMA_BUILD_TOOLS=OFF",
                    "-DLLAMA_BUILD_SERVER=OFF",
                    "-DBUILD_SHARED_LIBS=ON",
                ]
            )
        run(["nice", "-n", "10", "ninja", "-C", str(BUILD), "-j2", "llama"])
    if not PROBE_BIN.exists() or PROBE_BIN.stat().st_mtime < PROBE_SRC.stat().st_mtime:
        run(
            [
                "nice",
                "-n",
                "10",
                "g++",
                "-std=c++17",
                "-O1",
                str(PROBE_SRC),
                "-o",
                str(PROBE_BIN),
                f"-I{SRC / 'include'}",
                f"-I{SRC / 'ggml' / 'include'}",
                f"-I{SRC / 'src'}",
                f"-L{BUILD / 'bin'}",
                "-lllama",
                "-lggml",
                "-lggml-base",
                f"-Wl,-rpath,{BUILD / 'bin'}",
            ]
        )


# ---------------------------------------------------------------- tiny models


def _real(model: str) -> dict[str, Any]:
    return json.loads((ROOT / "configs" / model / "config.json").read_text())


def _attn_tiny(cfg: dict[str, Any]) -> dict[str, Any]:
    """Keep layers, KV heads and head_dim; query heads = KV heads; tiny hidden/FFN/vocab."""
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
    cfg.update(
        hidden_size=64,
        intermediate_size=32,
        vocab_size=256,
        num_attention_heads=kv,
        num_key_value_heads=kv,
        head_dim=head_dim,
        tie_word_embeddings=False,
    )
    return cfg


def _qwen2_tiny(cfg: dict[str, Any]) -> dict[str, Any]:
    """qwen2.cpp sizes attn_q as n_embd × n_embd: hidden = query heads · head_dim (= KV heads · head_dim)."""
    cfg = _attn_tiny(cfg)
    cfg["hidden_size"] = cfg["num_attention_heads"] * cfg["head_dim"]
    return cfg


def _moe_tiny(cfg: dict[str, Any], experts_key: str, topk_key: str) -> dict[str, Any]:
    cfg = _attn_tiny(cfg)
    cfg[experts_key] = 4
    cfg[topk_key] = 2
    if "moe_intermediate_size" in cfg:
        cfg["moe_intermediate_size"] = 16
    return cfg


def tiny_gpt_oss(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg.pop("quantization_config", None)
    cfg = _moe_tiny(cfg, "num_local_experts", "num_experts_per_tok")
    cfg["experts_per_token"] = 2
    return cfg


def tiny_deepseek_v2(cfg: dict[str, Any]) -> dict[str, Any]:
    """MLA cache = kv_lora_rank + qk_rope_head_dim per layer: query heads do not enter it."""
    cfg.update(
        hidden_size=64,
        intermediate_size=32,
        moe_intermediate_size=16,
        vocab_size=256,
        num_attention_heads=2,
        num_key_value_heads=2,
        n_routed_experts=4,
        num_experts_per_tok=2,
        n_shared_experts=1,
        tie_word_embeddings=False,
    )
    return cfg


def tiny_mamba(cfg: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp's Mamba converter asserts d_inner == 2·d_model: keep d_model; shrink the vocabulary."""
    cfg.update(vocab_size=256)
    return cfg


def tiny_qwen3_next(cfg: dict[str, Any]) -> dict[str, Any]:
    """Gated DeltaNet state = conv (kernel-1)·(2·nk·dk + nv·dv) + nv·dk·dv: hidden does not enter it."""
    cfg.update(
        hidden_size=64,
        intermediate_size=32,
        moe_intermediate_size=16,
        shared_expert_intermediate_size=16,
        vocab_size=256,
        num_experts=4,
        num_experts_per_tok=2,
        tie_word_embeddings=False,
    )
    return cfg


def tiny_deepseek_v3(cfg: dict[str, Any]) -> dict[str, Any]:
    """MLA like V2-Lite; 256 routed experts in 8 groups → 4 in 1 group (routing does not touch the cache)."""
    cfg = tiny_deepseek_v2(cfg)
    # the MTP layer is filtered out of the main context's cache (create_memory, n_layer_nextn): leave it out
    cfg.update(n_group=1, topk_group=1, q_lora_rank=32, num_nextn_predict_layers=0)
    return cfg


def tiny_glm4_moe(cfg: dict[str, Any]) -> dict[str, Any]:
    cfg = _moe_tiny(cfg, "n_routed_experts", "num_experts_per_tok")
    cfg.update(n_shared_experts=1, n_group=1, topk_group=1)
    return cfg


def tiny_falcon(cfg: dict[str, Any]) -> dict[str, Any]:
    """falcon-7b: multi-query (one KV head of 64): one query head of 64 keeps that geometry."""
    cfg.update(hidden_size=64, num_attention_heads=1, vocab_size=256)
    return cfg


def tiny_qwen3_5(cfg: dict[str, Any]) -> dict[str, Any]:
    """The text model of the Qwen3.5 wrapper (its text_config), shrunk like Qwen3-Next."""
    text = {**cfg["text_config"]}
    text.pop("layer_types", None)
    text = tiny_qwen3_next(text)
    text["num_attention_heads"] = text["num_key_value_heads"]
    return text


@dataclass
class Case:
    """One real model, its tiny stand-in and the settings to run it at."""

    model: str
    shrink: Callable[[dict[str, Any]], dict[str, Any]]
    contexts: tuple[int, ...] = (4096, 32768)
    swa: bool = False
    recurrent: bool = False
    extra: list[dict[str, Any]] = field(default_factory=list)
    convert_args: tuple[str, ...] = ()


CASES = [
    Case("meta-llama/Llama-3.1-8B", _attn_tiny, (4096, 32768, 131072)),
    Case("meta-llama/Llama-3.1-70B", _attn_tiny, (8192, 32768)),
    Case("Qwen/Qwen2.5-7B-Instruct", _qwen2_tiny),
    Case("Qwen/Qwen3-8B", _attn_tiny),
    Case("Qwen/Qwen3-30B-A3B", lambda c: _moe_tiny(c, "num_experts", "num_experts_per_tok")),
    Case("mistralai/Mistral-7B-v0.1", _attn_tiny, (4096, 16384)),
    Case("openai/gpt-oss-20b", tiny_gpt_oss, (4096, 32768), swa=True),
    Case("deepseek-ai/DeepSeek-V2-Lite", tiny_deepseek_v2),
    Case("state-spaces/mamba-130m-hf", tiny_mamba, (2048, 8192), recurrent=True),
    # no MTP head: the Qwen3-Next converter insists on one otherwise
    Case("Qwen/Qwen3-Next-80B-A3B-Thinking", tiny_qwen3_next, recurrent=True, convert_args=("--no-mtp",)),
    Case("deepseek-ai/DeepSeek-V3", tiny_deepseek_v3),
    Case("zai-org/GLM-4.5", tiny_glm4_moe, convert_args=("--no-mtp",)),
    Case("tiiuae/falcon-7b", tiny_falcon, (2048, 8192)),
    Case("Qwen/Qwen3.5-27B", tiny_qwen3_5, recurrent=True, convert_args=("--no-mtp",)),
]


def make_gguf(case: Case) -> Path:
    """Save the tiny transformers model and convert it with the sdist's convert_hf_to_gguf.py."""
    slug = case.model.replace("/", "--")
    gguf_path = CACHE / "gguf" / f"{slug}.gguf"
    if gguf_path.exists():
        return gguf_path
    hf_dir = CACHE / "hf" / slug
    if not (hf_dir / "config.json").exists():
        hf_dir.mkdir(parents=True, exist_ok=True)
        code = (
            "import json, sys, torch, transformers\n"
            "cfg = json.loads(sys.argv[1])\n"
            "torch.manual_seed(0)\n"
            "config = transformers.AutoConfig.for_model(**cfg)\n"
            "model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)\n"
            "model.save_pretrained(sys.argv[2])\n"
        )
        tiny = case.shrink(_real(case.model))
        for key in ("architectures", "auto_map", "pad_token_id", "bos_token_id", "eos_token_id"):
            tiny.pop(key, None)  # token ids beyond the tiny vocabulary
        run(["nice", "-n", "10", sys.executable, "-c", code, json.dumps(tiny), str(hf_dir)])
    gguf_path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = (
        "import sys\n"
        f"sys.path.insert(0, {str(SRC)!r}); sys.path.insert(1, {str(SRC / 'gguf-py')!r})\n"
        "import convert_hf_to_gguf as conv\n"
        "def set_vocab(self):\n"
        "    # no tokenizer files: llama.cpp's 'none' vocabulary with the config's vocab_size\n"
        "    self.gguf_writer.add_tokenizer_model('none')\n"
        "    self.gguf_writer.add_vocab_size(self.hparams['vocab_size'])\n"
        "orig = conv.get_model_class\n"
        "def get_model_class(*a, **k):\n"
        "    cls = orig(*a, **k)\n"
        "    cls.set_vocab = set_vocab\n"
        "    return cls\n"
        "conv.get_model_class = get_model_class\n"
        "sys.argv = ['convert_hf_to_gguf.py'] + sys.argv[1:]\n"
        "conv.main()\n"
    )
    run(
        [
            "nice",
            "-n",
            "10",
            sys.executable,
            "-c",
            wrapper,
            str(hf_dir),
            "--outfile",
            str(gguf_path),
            "--outtype",
            "f16",
            *case.convert_args,
        ],
        stdout=subprocess.DEVNULL,
    )
    return gguf_path


def save_header(case: Case, gguf_path: Path) -> None:
    """Keep the converted file's header (what kvcalc.core.gguf reads) for the tests."""
    sys.path.insert(0, str(ROOT))
    from kvcalc.core.gguf import read_file

    g = read_file(gguf_path)
    HEADERS.mkdir(parents=True, exist_ok=True)
    with gguf_path.open("rb") as fh:
        header = fh.read(g.data_offset)
    (HEADERS / f"{case.model.replace('/', '--')}.gguf").write_bytes(header)


# ---------------------------------------------------------------- settings and parsing


def settings_for(case: Case, alloc: bool) -> list[dict[str, Any]]:
    """The grid: contexts × (np 1, np 4 per-stream, np 4 unified) × cache types × flash attention."""
    rows: list[dict[str, Any]] = []
    contexts = (min(case.contexts[0], 4096),) if alloc else case.contexts
    types = [("f16", "f16"), ("q8_0", "q8_0"), ("q4_0", "q4_0"), ("q8_0", "f16")]
    if not alloc:
        types += [
            ("f32", "f32"),
            ("bf16", "bf16"),
            ("q4_1", "q4_1"),
            ("q5_0", "q5_0"),
            ("q5_1", "q5_1"),
            ("iq4_nl", "iq4_nl"),
        ]
    for n_ctx in contexts:
        for n_seq, unified in ((1, False), (4, False), (4, True)):
            for tk, tv in types:
                for fa in ("on", "off"):
                    swa_opts = (False, True) if case.swa else (False,)
                    for swa_full in swa_opts:
                        rows.append(
                            dict(
                                n_ctx=n_ctx,
                                n_seq_max=n_seq,
                                kv_unified=unified,
                                type_k=tk,
                                type_v=tv,
                                flash_attn=fa,
                                swa_full=swa_full,
                                n_batch=N_BATCH,
                                n_ubatch=N_UBATCH,
                            )
                        )
    if not alloc:
        # odd sizes: padding to 256 per stream, -c 0 (training context), fa auto, small ubatch
        base = dict(
            kv_unified=False,
            type_k="f16",
            type_v="f16",
            flash_attn="on",
            swa_full=False,
            n_batch=N_BATCH,
            n_ubatch=N_UBATCH,
        )
        rows.append(dict(base, n_ctx=5000, n_seq_max=3))
        rows.append(dict(base, n_ctx=1000, n_seq_max=1))
        rows.append(dict(base, n_ctx=0, n_seq_max=1))
        rows.append(dict(base, n_ctx=4096, n_seq_max=2, flash_attn="auto", type_v="q8_0"))
        rows.append(dict(base, n_ctx=4096, n_seq_max=1, n_batch=256, n_ubatch=128))
        rows.append(dict(base, n_ctx=4096, n_seq_max=2, kv_unified=True, n_ubatch=256))
    return rows


KV_LINE = re.compile(
    r"(?P<who>llama_kv_cache): size = +(?P<size>[\d.]+) MiB \( *(?P<cells>\d+) cells, +"
    r"(?P<layers>\d+) layers, +(?P<seqs>\d+)/(?P<streams>\d+) seqs\), "
    r"K \((?P<tk>\w+)\): +(?P<k>[\d.]+) MiB, V \((?P<tv>\w+)\): +(?P<v>[\d.]+) MiB"
)
RS_LINE = re.compile(
    r"(?P<who>llama_memory_recurrent): size = +(?P<size>[\d.]+) MiB \( *(?P<cells>\d+) cells, +"
    r"(?P<layers>\d+) layers, +(?P<seqs>\d+) seqs +(?P<rs>\d+) rs_seq\), "
    r"R \((?P<tr>\w+)\): +(?P<r>[\d.]+) MiB, S \((?P<ts>\w+)\): +"
    r"(?P<s>[\d.]+) MiB, P \(\w+\): +(?P<p>[\d.]+) MiB"
)
ERROR_HINTS = ("llama_init_from_model:", "failed to initialize", "error")


def parse_case(lines: list[str]) -> dict[str, Any]:
    """One context's log → caches (in creation order), exact bytes, n_ctx, and any error."""
    caches: list[dict[str, Any]] = []
    out: dict[str, Any] = {"caches": caches, "context_bytes": None}
    errors: list[str] = []
    for line in lines:
        if m := KV_LINE.search(line) or RS_LINE.search(line):
            caches.append({"log": m.group(0), "cells": int(m["cells"]), "layers": int(m["layers"])})
        elif line.startswith("@@N_CTX"):
            _, _, n_ctx, n_ctx_seq = line.split()
            out["n_ctx"], out["n_ctx_seq"] = int(n_ctx), int(n_ctx_seq)
        elif line.startswith("@@CONTEXT_BYTES"):
            context, model, compute = (int(x) for x in line.split()[3:6])
            out["context_bytes"] = (out["context_bytes"] or 0) + context
            out["compute_bytes"] = out.get("compute_bytes", 0) + compute
            out["model_bytes"] = out.get("model_bytes", 0) + model
        elif line.startswith("@@END"):
            out["ok"] = line.split()[2] == "ok"
            if not out["ok"]:
                errors.append(line.split(None, 3)[3] if len(line.split()) > 3 else "")
        elif any(h in line for h in ERROR_HINTS) and "n_ctx_seq" not in line:
            errors.append(line.strip())
    if not out.get("ok"):
        out["error"] = " | ".join(e for e in errors if e)
    return out


def probe(gguf_path: Path, rows: list[dict[str, Any]], alloc: bool) -> list[dict[str, Any]]:
    """Run the probe once over all rows of one model; return rows with llama.cpp's answers."""
    stdin = "".join(
        f"r{i} {r['n_ctx']} {r['n_seq_max']} {int(r['kv_unified'])} {r['type_k']} {r['type_v']} "
        f"{r['flash_attn']} {int(r['swa_full'])} {r['n_batch']} {r['n_ubatch']}\n"
        for i, r in enumerate(rows)
    )
    proc = subprocess.run(
        ["nice", "-n", "10", str(PROBE_BIN), str(gguf_path), "0" if alloc else "1"],
        input=stdin,
        text=True,
        capture_output=True,
        timeout=3600,
    )
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in proc.stdout.splitlines():
        if line.startswith("@@BEGIN "):
            current = blocks.setdefault(line.split()[1], [])
            continue
        if current is not None:
            current.append(line)
    results = []
    for i, row in enumerate(rows):
        got = parse_case(blocks.get(f"r{i}", []))
        if f"r{i}" not in blocks:
            got = {
                "ok": False,
                "error": f"probe exited {proc.returncode}: {proc.stderr[-300:]}",
                "caches": [],
            }
        results.append({"settings": row, "mode": "alloc" if alloc else "no_alloc", **got})
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", help="model ids (substring match)")
    ap.add_argument(
        "--alloc-check", action="store_true", help="also run the first context with real allocation"
    )
    args = ap.parse_args()
    fetch_sdist()
    build_llama()
    doc = json.loads(OUT.read_text()) if OUT.exists() else {}
    doc.update(
        {
            "llama_cpp": f"ggml-org/llama.cpp {LLAMA_CPP_COMMIT} "
            f"(llama-cpp-python {SDIST_VERSION} sdist, CPU build)",
            "method": " ".join(" ".join(p.split()) for p in __doc__.split("\n\n")[1:4]),
            "byte_fields": "context_bytes: exact bytes of the memory module's buffers "
            "(llama_get_memory_breakdown); caches[].log: llama.cpp's own line; model_bytes / compute_bytes: "
            "its weight and CPU compute buffers",
        }
    )
    models = doc.setdefault("models", {})
    for case in CASES:
        if args.only and not any(s in case.model for s in args.only):
            continue
        t0 = time.time()
        entry: dict[str, Any] = {"config": f"configs/{case.model}/config.json"}
        try:
            gguf_path = make_gguf(case)
        except subprocess.CalledProcessError as e:
            entry["error"] = f"conversion failed: {e}"
            models[case.model] = entry
            print(case.model, "FAILED", e, flush=True)
            continue
        save_header(case, gguf_path)
        tiny = case.shrink(_real(case.model))
        entry["tiny_overrides"] = {k: v for k, v in tiny.items() if _real(case.model).get(k) != v}
        rows = probe(gguf_path, settings_for(case, alloc=False), alloc=False)
        if args.alloc_check:
            rows += probe(gguf_path, settings_for(case, alloc=True), alloc=True)
        entry["rows"] = rows
        models[case.model] = entry
        ok = sum(r.get("ok", False) for r in rows)
        print(f"{case.model}: {ok}/{len(rows)} contexts created, {time.time() - t0:.0f} s", flush=True)
        OUT.write_text(dump(doc))
    OUT.write_text(dump(doc))
    write_markdown(doc)


def dump(doc: dict[str, Any]) -> str:
    """The JSON with one row per line (readable diffs, a third of the indented size)."""
    head = {k: v for k, v in doc.items() if k != "models"}
    parts = [json.dumps(head, indent=1)[:-2] + ',\n "models": {']
    models = []
    for name, entry in doc["models"].items():
        meta = {k: v for k, v in entry.items() if k != "rows"}
        rows = ",\n".join("   " + json.dumps(r, separators=(",", ":")) for r in entry.get("rows", []))
        body = json.dumps(meta)[:-1] + (', "rows": [\n' + rows + "\n  ]}" if rows else "}")
        models.append(f"  {json.dumps(name)}: {body}")
    return parts[0] + "\n" + ",\n".join(models) + "\n }\n}\n"


def write_markdown(doc: dict[str, Any]) -> None:
    """docs/llamacpp_validation.md: per model, what was run and kvcalc against llama.cpp."""
    sys.path.insert(0, str(ROOT))
    from kvcalc.core.model import load_model
    from kvcalc.engines import llamacpp as L
    from kvcalc.errors import KVCalcError

    lines = [
        "# llama.cpp validation",
        "",
        f"Measured with {doc['llama_cpp']} by `scripts/validate_llamacpp.py`; raw rows in "
        "`docs/llamacpp_validation.json`, checked by `tests/test_llamacpp.py`.",
        "",
        doc["method"],
        "",
        "| model | contexts (-c) | rows | created | refused by llama.cpp | kvcalc exact | refusals matched |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    examples = []
    for name, entry in doc["models"].items():
        rows = entry.get("rows", [])
        if not rows:
            lines.append(f"| {name} | – | 0 | 0 | 0 | – | – |  failed: {entry.get('error', '')} |")
            continue
        model = load_model(ROOT / entry["config"])
        exact = matched = 0
        for r in rows:
            s = L.Settings.from_cparams(r["settings"])
            try:
                mem = L.memory(model, s)
            except KVCalcError as exc:
                matched += not r["ok"] and r["error"].rsplit(": ", 1)[-1] in str(exc)
                continue
            logs = [c["log"] for c in r["caches"]]
            exact += r["ok"] and mem.bytes == r["context_bytes"] and [c.log for c in mem.caches] == logs
        ok = sum(r["ok"] for r in rows)
        ctxs = sorted({r["settings"]["n_ctx"] for r in rows})
        lines.append(
            f"| {name} | {', '.join(map(str, ctxs))} | {len(rows)} | {ok} | {len(rows) - ok} | "
            f"{exact}/{ok} | {matched}/{len(rows) - ok} |"
        )
        first = next((r for r in rows if r["ok"] and r["settings"]["n_seq_max"] == 4), None)
        if first:
            st = first["settings"]
            flags = (
                f"-c {st['n_ctx']} -np 4{' -kvu' if st['kv_unified'] else ''} -ctk {st['type_k']} "
                f"-ctv {st['type_v']} -fa {st['flash_attn']}"
            )
            examples += [f"{name} `{flags}`: {first['context_bytes']:,} bytes", "```"]
            examples += [c["log"] for c in first["caches"]] + ["```", ""]
    lines += ["", "## Examples (llama.cpp's own lines; kvcalc prints the same)", ""] + examples
    (ROOT / "docs" / "llamacpp_validation.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
