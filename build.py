#!/usr/bin/env python3
"""Build the kvcalc static site into _site/ and optionally serve it.

    python3 build.py [--serve] [--port N] [--out DIR]

Sets itself up first (tools/devenv.py: .venv with requirements/build.txt only — jinja2, no torch —
and node_modules, each redone only when its inputs changed), re-execs inside .venv, then: writes the
kvcalc wheel, renders site/index.html.j2 with jinja2, and copies site assets, the Pyodide core and
Plotly next to it. Nothing is fetched from a CDN at run time: the site is self-contained.
Importable: `build.build_site(out_dir) -> Path`.
"""

from __future__ import annotations

import argparse
import base64
import functools
import hashlib
import http.server
import io
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

from tools import devenv, md_html

ROOT = Path(__file__).resolve().parent
PACKAGE = ROOT / "kvcalc"
SITE_SRC = ROOT / "site"
DEFAULT_OUT = ROOT / "_site"
TEMPLATE = "index.html.j2"
MODEL_CONFIGS = ROOT / "model_configs.json"
VALIDATION_JSON = ROOT / "docs" / "validation.json"  # scripts/gen_validation.py writes both
VALIDATION_MD = ROOT / "docs" / "validation.md"
VALIDATION_URL = "validation.html"  # where the page links to the table (docs/validation.md rendered to HTML)
MANIFEST = ".kvcalc-manifest"
SITE_DIR_ENV = "KVCALC_SITE_DIR"  # test.py sets it to the built site; the browser tests serve that

PYODIDE_DIR = devenv.NODE_MODULES / "pyodide"
# What loadPyodide fetches from indexURL (the npm package ships the core only).
PYODIDE_FILES = (
    "pyodide.mjs",
    "pyodide.asm.mjs",
    "pyodide.asm.wasm",
    "python_stdlib.zip",
    "pyodide-lock.json",
)
# Plotly's official partial bundle: bar and scatter traces only (the charts use nothing else), 1.2 MB
# instead of the full 4.8 MB, same library and API.
PLOTLY = devenv.NODE_MODULES / "plotly.js-basic-dist-min" / "plotly-basic.min.js"
BYTECODE_SCRIPT = ROOT / "tools" / "pyodide_bytecode.mjs"
BYTECODE_CACHE = ROOT / ".cache" / "bytecode"  # one entry per input hash; the newest only is kept
STDLIB_ZIP = "python_stdlib.zip"
#: Standard-library entries the page never needs (network, e-mail, XML, UI, debugging, testing, and
#: legacy 8-bit codec tables), left out of the shipped zip to keep the download under budget. Only
#: entries nothing imported are left out (see tools/pyodide_bytecode.mjs), and
#: tests/test_build.py checks kvcalc never imports them.
STDLIB_DROP = (
    r"(email|http|xml|xmlrpc|multiprocessing|unittest|_pyrepl|wsgiref|ctypes|html)/.*",
    r"(pdb|doctest|pydoc|imaplib|mailbox|smtplib|ftplib|poplib)\.py",
    r"encodings/(cp\d+|iso8859_\d+|mac_\w+|koi8_\w+|kz1048|ptcp154|tis_620|hp_roman8|palmos)\.py",
)

# Site layout (relative URLs, so the site also works under a sub-path such as GitHub Pages').
WHEEL_DIR = "wheels"
PYODIDE_URL = "pyodide/"
PLOTLY_URL = "vendor/plotly.min.js"

MIME_TYPES = {
    ".wasm": "application/wasm",  # anything else makes loadPyodide hang
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".json": "application/json",
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".md": "text/markdown; charset=utf-8",
}
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: same sources, same wheel bytes


# ---------------------------------------------------------------- wheel


def package_version() -> str:
    """kvcalc.__version__, read from kvcalc/__init__.py without importing it."""
    text = (PACKAGE / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.MULTILINE)
    if match is None:
        raise SystemExit("[kvcalc] no __version__ = '...' line in kvcalc/__init__.py")
    return match.group(1)


def wheel_name(version: str) -> str:
    """The pure-Python wheel's file name."""
    return f"kvcalc-{version}-py3-none-any.whl"


def package_files() -> list[Path]:
    """Every file of the kvcalc package (sources and package data), without caches or dotfiles."""
    return sorted(
        p
        for p in PACKAGE.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(PACKAGE).parts)
        and p.suffix not in {".pyc", ".pyo"}
    )


def _metadata(version: str) -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return (
        "Metadata-Version: 2.1\n"
        f"Name: {project['name']}\nVersion: {version}\n"
        f"Summary: {project.get('description', '')}\n"
        f"License: {project.get('license', '')}\n"
        f"Requires-Python: {project.get('requires-python', '>=3.11')}\n"
    )


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def wheel_bytes(version: str, extra: dict[str, bytes] | None = None) -> bytes:
    """A py3-none-any wheel of kvcalc/ as bytes (deterministic); `extra` adds files by name
    (the site's wheel carries Pyodide bytecode: see :func:`pyodide_bytecode`)."""
    dist_info = f"kvcalc-{version}.dist-info"
    entries = [(p.relative_to(ROOT).as_posix(), p.read_bytes()) for p in package_files()]
    entries += sorted((extra or {}).items())
    entries += [
        (f"{dist_info}/METADATA", _metadata(version).encode()),
        (
            f"{dist_info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: kvcalc-build.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
    ]
    record = "\n".join([*(_record_line(n, d) for n, d in entries), f"{dist_info}/RECORD,,"]) + "\n"
    entries.append((f"{dist_info}/RECORD", record.encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buffer.getvalue()


def write_if_changed(path: Path, data: bytes) -> None:
    """Write bytes unless the file already holds them (keeps mtimes, so HTTP caches stay valid)."""
    if not (path.is_file() and path.read_bytes() == data):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def build_wheel(out_dir: Path, extra: dict[str, bytes] | None = None) -> Path:
    """Write the kvcalc wheel (plus `extra` files) into out_dir, only if its bytes changed."""
    version = package_version()
    path = out_dir / wheel_name(version)
    write_if_changed(path, wheel_bytes(version, extra))
    return path


# ---------------------------------------------------------------- bytecode for Pyodide


def warmup_requests(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests that walk kvcalc.web's code paths (each engine, several dtypes, TP, a GPU, errors),
    so every module the page can import at run time is imported while bytecode is made."""
    from kvcalc.deploy import hardware
    from kvcalc.engines import ENGINES

    models = [{k: e[k] for k in ("id", "name", "config")} for e in entries]
    compare = {
        "op": "compare", "models": models, "seq_len": 131072, "batch_size": 2,
        "kv_dtypes": ["bf16", "fp8", "int8"], "tensor_parallel_size": 8, "gpu": hardware.DEFAULT_GPU,
    }  # fmt: skip
    return [
        {"op": "version"},
        {"op": "catalog"},
        *({**compare, "engine": engine} for engine in ("ideal", "vllm", "transformers")),
        {"op": "load", "models": [{"id": "a", "config_text": "{"}, {"id": "b", "config_text": "{}"}]},
        {"op": "no-such-op", "expect_ok": False},
        # the panels (site/panels.js): engines side by side, local mode, a pasted vLLM log
        {**compare, "models": models[:1], "engines": list(ENGINES), "tensor_parallel_size": 1},
        {"op": "local_catalog"},
        {
            "op": "local",
            "models": [],
            "model": models[0] if models else None,
            "quant": "Q4_K_M",
            "machine": {"gpu": "rtx-4090"},
            "n_ctx": 4096,
            "expect_ok": False,
        },
        {"op": "explain", "log": "Available KV cache memory: 1.00 GiB\nGPU KV cache size: 100 tokens"},
    ]


def pyodide_bytecode(plain_wheel: bytes, entries: list[dict[str, Any]]) -> tuple[Path, dict[str, bytes]]:
    """Run tools/pyodide_bytecode.mjs (Pyodide in Node) once per input change.

    Returns the standard-library zip to ship (modules the page imports precompiled, STDLIB_DROP
    left out) and the kvcalc .pyc files to add to the site's wheel. Precompiled, Pyodide starts in
    ~0.4 s instead of ~2.3 s on a 2-core machine: its npm package ships the stdlib as sources only.
    """
    job = {"requests": warmup_requests(entries), "drop": list(STDLIB_DROP)}
    requests = json.dumps(job, sort_keys=True).encode()
    lock = (PYODIDE_DIR / "package.json").read_bytes()
    key = hashlib.sha256(b"\0".join([plain_wheel, requests, lock, BYTECODE_SCRIPT.read_bytes()])).hexdigest()
    cache = BYTECODE_CACHE / key[:16]
    if not (cache / "done").is_file():
        shutil.rmtree(BYTECODE_CACHE, ignore_errors=True)
        cache.mkdir(parents=True)
        (cache / "kvcalc.whl").write_bytes(plain_wheel)
        (cache / "requests.json").write_bytes(requests)
        node = shutil.which("node")
        if node is None:
            raise SystemExit("[kvcalc] node not found: install Node.js 20+ and retry")
        args = [BYTECODE_SCRIPT, PYODIDE_DIR, cache / "kvcalc.whl", cache / "requests.json", cache]
        result = subprocess.run([node, *map(str, args)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            why = result.stderr.strip()[-2000:]
            raise SystemExit(f"[kvcalc] precompiling Python for Pyodide failed: {why}")
        (cache / "done").write_text("ok\n")
    compiled = json.loads((cache / "kvcalc-pyc.json").read_text(encoding="utf-8"))
    return cache / STDLIB_ZIP, {name: base64.b64decode(data) for name, data in compiled["files"].items()}


# ---------------------------------------------------------------- page


def embed_json(value: Any) -> str:
    """JSON that is safe inside a <script type="application/json"> element."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


#: The page's default selection (issue 6), matched against the preloaded entries' names.
DEFAULT_MODELS = (
    "DeepSeek-V3", "Kimi-K2-Instruct", "GLM-5", "MiniMax-M2.7", "Qwen3-235B-A22B",
    "Qwen3-Next-80B-A3B-Thinking", "Qwen2.5-7B-Instruct", "gpt-oss-120b", "Mixtral-8x7B-v0.1",
    "Mistral-7B-v0.1", "Llama-3.1-70B", "Llama-3.1-8B",
)  # fmt: skip


def model_entries() -> list[dict[str, Any]]:
    """The preloaded models of model_configs.json as {id, name, family, config} (as stored: JSON-safe)."""
    if not MODEL_CONFIGS.is_file():
        return []
    raw = json.loads(MODEL_CONFIGS.read_text(encoding="utf-8"))
    models = raw.get("models", []) if isinstance(raw, dict) else raw
    return [{k: m.get(k) for k in ("id", "name", "family", "config")} for m in models]


def default_ids(entries: list[dict[str, Any]]) -> list[str]:
    """Ids of DEFAULT_MODELS present among the entries, in DEFAULT_MODELS order."""
    by_name = {str(e["name"]).lower(): e["id"] for e in entries}
    return [by_name[n.lower()] for n in DEFAULT_MODELS if n.lower() in by_name]


def validation_data() -> dict[str, Any] | None:
    """What the page needs of docs/validation.json: the versions measured against and, per preloaded
    model id, {exact, seq_lens, dtypes, batches, decode_steps} (decode_steps [0, 1]: measured right after
    the prefill and after one decode step). None when the file is missing (the page then shows no badges)."""
    if not VALIDATION_JSON.is_file():
        return None
    raw = json.loads(VALIDATION_JSON.read_text(encoding="utf-8"))
    return {
        "torch": raw.get("torch"),
        "transformers": raw.get("transformers"),
        "url": VALIDATION_URL,
        "models": {
            model_id: {
                "exact": bool(m.get("exact")),
                "seq_lens": m.get("seq_lens", raw.get("seq_lens", [])),
                "dtypes": m.get("dtypes", raw.get("dtypes", [])),
                "batches": m.get("batches", raw.get("batches", [1])),
                "decode_steps": m.get("decode_steps", raw.get("decode_steps", [0])),
            }
            for model_id, m in raw.get("models", {}).items()
        },
    }


def site_data(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """What the page starts from: the preloaded models, the controls' catalog, and the first charts,
    computed here by the same door the browser uses (kvcalc.web.compute) with the default request;
    plus `validation` (see :func:`validation_data`) when docs/validation.json exists."""
    from kvcalc import web

    def ask(request: dict[str, Any]) -> dict[str, Any]:
        answer = json.loads(web.compute(json.dumps(request)))
        if not answer.get("ok"):
            raise SystemExit(f"[kvcalc] build-time {request['op']} failed: {answer.get('error')}")
        return answer

    ids = default_ids(entries)
    by_id = {e["id"]: e for e in entries}
    initial = ask(
        {**web.DEFAULT_REQUEST, "models": [{k: by_id[i][k] for k in ("id", "name", "config")} for i in ids]}
    )
    if initial["errors"]:
        raise SystemExit(f"[kvcalc] default models failed to compute: {initial['errors']}")
    data = {
        "models": entries,
        "catalog": ask({"op": "catalog"}),
        "defaults": {"models": ids},
        "initial": initial,
    }
    validation = validation_data()
    if validation is not None:
        data["validation"] = validation
    return data


def site_context(wheel_file: str) -> dict[str, Any]:
    """Everything index.html.j2 sees.

    Keys: version, wheel_url, pyodide_url, plotly_url (relative URLs), modules (what app.js
    imports: :func:`module_graph`), validation_url (docs/validation.md rendered to HTML, "" without
    one), data_json (a JSON string safe to put in
    <script type="application/json" id="kvcalc-data">: see :func:`site_data`).
    """
    return {
        "validation_url": VALIDATION_URL if VALIDATION_MD.is_file() else "",
        "version": package_version(),
        "wheel_url": f"{WHEEL_DIR}/{wheel_file}",
        "pyodide_url": PYODIDE_URL,
        "plotly_url": PLOTLY_URL,
        "modules": module_graph()[1:],
        "data_json": embed_json(site_data(model_entries())),
    }


IMPORT_RE = re.compile(r"""^\s*(?:import|export)\b[^;]*?\bfrom\s*["'](\./[\w.-]+\.js)["']""", re.MULTILINE)


def module_graph(entry: str = "app.js") -> list[str]:
    """site/ modules `entry` imports, directly or not (static `./x.js` imports), entry first.
    The page preloads them all at once (<link rel="modulepreload">) instead of discovering them
    import by import."""
    order: list[str] = []
    todo = [entry]
    while todo:
        name = todo.pop(0)
        if name in order:
            continue
        order.append(name)
        text = (SITE_SRC / name).read_text(encoding="utf-8")
        todo += [m.removeprefix("./") for m in IMPORT_RE.findall(text)]
    return order


def render_index(context: dict[str, Any]) -> str:
    """Render site/index.html.j2 (jinja2 is imported here: it lives in .venv)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(SITE_SRC),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template(TEMPLATE).render(**context)


# ---------------------------------------------------------------- assets


def asset_sources() -> dict[str, Path]:
    """Static files to copy: site-relative path -> source file."""
    sources = {p.name: p for p in sorted(SITE_SRC.iterdir()) if p.is_file() and p.name != TEMPLATE}
    sources |= {f"{PYODIDE_URL}{name}": PYODIDE_DIR / name for name in PYODIDE_FILES if name != STDLIB_ZIP}
    sources[PLOTLY_URL] = PLOTLY
    missing = [str(p) for p in sources.values() if not p.is_file()]
    if missing:
        raise SystemExit(f"[kvcalc] missing build inputs (run `npm ci`?): {', '.join(missing)}")
    return sources


def copy_if_changed(src: Path, dst: Path) -> None:
    """Copy src to dst unless dst already has the same size and mtime."""
    if dst.is_file():
        a, b = src.stat(), dst.stat()
        if a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns:
            return
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)


def prune(out_dir: Path, produced: set[str]) -> None:
    """Delete files a previous build wrote that this one did not (only those: see MANIFEST)."""
    manifest = out_dir / MANIFEST
    old = set(manifest.read_text().split()) if manifest.is_file() else set()
    for rel in sorted(old - produced):
        (out_dir / rel).unlink(missing_ok=True)
    manifest.write_text("\n".join(sorted(produced)) + "\n")


def render_docs(out_dir: Path) -> list[str]:
    """docs/validation.md as a UTF-8 HTML page next to index.html (tools/md_html.py); the written paths."""
    if not VALIDATION_MD.is_file():
        return []
    text = VALIDATION_MD.read_text(encoding="utf-8")
    title = next(
        (line[2:].strip() for line in text.splitlines() if line.startswith("# ")), "kvcalc validation"
    )
    page = md_html.page(text, title=title, stylesheets=("style.css", "panels.css"), back="index.html")
    write_if_changed(out_dir / VALIDATION_URL, page.encode("utf-8"))
    return [VALIDATION_URL]


def build_site(out_dir: Path = DEFAULT_OUT) -> Path:
    """Build the whole static site into out_dir and return out_dir."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    devenv.ensure_node_modules()
    with devenv.step("wheel and Pyodide bytecode"):
        stdlib, pyc = pyodide_bytecode(wheel_bytes(package_version()), model_entries())
        wheel = build_wheel(out_dir / WHEEL_DIR, pyc)
    with devenv.step(f"render {TEMPLATE}"):
        html = render_index(site_context(wheel.name))
        write_if_changed(out_dir / "index.html", html.encode("utf-8"))
    with devenv.step("copy assets (site, pyodide, plotly)"):
        sources = asset_sources() | {f"{PYODIDE_URL}{STDLIB_ZIP}": stdlib}
        for rel, src in sources.items():
            copy_if_changed(src, out_dir / rel)
    docs = render_docs(out_dir)
    prune(out_dir, {*sources, *docs, "index.html", f"{WHEEL_DIR}/{wheel.name}"})
    devenv.log(f"site ready: {out_dir} (kvcalc {package_version()}, {wheel.name})")
    return out_dir


# ---------------------------------------------------------------- serve


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the MIME types Pyodide needs and no caching (edit, rebuild, reload)."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}
    quiet = False

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        if not self.quiet:
            super().log_message(format, *args)


class SiteServer(http.server.ThreadingHTTPServer):
    """Threaded server that ignores clients hanging up mid-response (browsers do that)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def make_server(
    directory: Path, host: str = "127.0.0.1", port: int = 8000, quiet: bool = False
) -> SiteServer:
    """An HTTP server for `directory` (port 0 picks a free port; see .server_address)."""
    handler = type("Handler", (SiteHandler,), {"quiet": quiet})
    return SiteServer((host, port), functools.partial(handler, directory=str(directory)))


def serve(directory: Path, port: int) -> None:
    """Serve directory on localhost until Ctrl-C."""
    with make_server(directory, port=port) as server:
        devenv.log(f"serving {directory} on http://localhost:{server.server_address[1]}/ (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            devenv.log("stopped")


def main(argv: list[str] | None = None) -> int:
    """Command line: set up, build, optionally serve."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help="serve the site after building it")
    parser.add_argument("--port", type=int, default=8000, help="port for --serve (default 8000)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default _site/)")
    args = parser.parse_args(argv)
    devenv.bootstrap(__file__, devenv.BUILD_REQUIREMENTS)  # jinja2 only: serving needs no torch
    with devenv.step("build site"):
        out = build_site(args.out)
    if args.serve:
        serve(out, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
