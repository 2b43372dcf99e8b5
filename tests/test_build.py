"""build.py: the wheel, the page context, the built site and the dev server."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import threading
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import build
import kvcalc
from tools import devenv


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build.build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build.build_site(tmp_path_factory.mktemp("site"))


def test_version_matches_package() -> None:
    assert build.package_version() == kvcalc.__version__


def test_wheel_name_and_modules(wheel: Path) -> None:
    assert wheel.name == f"kvcalc-{kvcalc.__version__}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(build.ROOT).as_posix() for p in build.PACKAGE.rglob("*.py")}
    assert {"kvcalc/__init__.py", "kvcalc/web/__init__.py", "kvcalc/engines/vllm.py"} <= modules <= names
    dist_info = f"kvcalc-{kvcalc.__version__}.dist-info"
    assert {f"{dist_info}/{f}" for f in ("METADATA", "WHEEL", "RECORD")} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_wheel_record_hashes(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        dist_info = f"kvcalc-{kvcalc.__version__}.dist-info"
        rows = [line.split(",") for line in zf.read(f"{dist_info}/RECORD").decode().splitlines()]
        assert {row[0] for row in rows} == set(zf.namelist())
        for name, digest, size in rows:
            if name.endswith("RECORD"):
                assert digest == size == ""
                continue
            data = zf.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(data))
        assert "Tag: py3-none-any" in zf.read(f"{dist_info}/WHEEL").decode()
        assert f"Version: {kvcalc.__version__}" in zf.read(f"{dist_info}/METADATA").decode()


def test_wheel_is_deterministic() -> None:
    assert build.wheel_bytes("0.0.1") == build.wheel_bytes("0.0.1")


def test_wheel_imports_in_a_fresh_interpreter(wheel: Path, tmp_path: Path) -> None:
    code = (
        "import kvcalc, kvcalc.web, json; "
        'print(json.dumps([kvcalc.__file__, json.loads(kvcalc.web.compute(\'{"op": "version"}\'))]))'
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(wheel)!r}); {code}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    where, answer = json.loads(out)
    assert where.startswith(str(wheel))
    assert answer == {"ok": True, "version": kvcalc.__version__}


def test_embed_json_cannot_close_the_script_element() -> None:
    text = build.embed_json({"x": "</script><script>alert(1)</script> & <!--"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"x": "</script><script>alert(1)</script> & <!--"}


def test_site_context_without_and_with_model_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "MODEL_CONFIGS", tmp_path / "model_configs.json")
    context = build.site_context("kvcalc-9-py3-none-any.whl")
    assert context["wheel_url"] == "wheels/kvcalc-9-py3-none-any.whl"
    empty = json.loads(context["data_json"])
    assert empty["models"] == [] and empty["defaults"] == {"models": []} and empty["initial"]["models"] == []
    llama = {"model_type": "llama", "hidden_size": 4096, "num_attention_heads": 32, "num_hidden_layers": 32}
    entry = {"id": "meta-llama/Llama-3.1-8B", "name": "Llama-3.1-8B", "family": "Llama", "config": llama}
    (tmp_path / "model_configs.json").write_text(json.dumps({"models": [{**entry, "provenance": {}}]}))
    data = json.loads(build.site_context("kvcalc-9-py3-none-any.whl")["data_json"])
    assert data["models"] == [entry] and data["defaults"] == {"models": [entry["id"]]}
    assert data["initial"]["ok"] and [m["id"] for m in data["initial"]["models"]] == [entry["id"]]
    assert data["catalog"]["default_request"]["seq_len"] == data["initial"]["settings"]["seq_len"]
    html = build.render_index(build.site_context("kvcalc-9-py3-none-any.whl"))
    assert '<script type="application/json" id="kvcalc-data">' in html


def test_site_data_embeds_compact_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(build, "MODEL_CONFIGS", tmp_path / "model_configs.json")
    monkeypatch.setattr(build, "VALIDATION_JSON", tmp_path / "validation.json")
    monkeypatch.setattr(build, "VALIDATION_MD", tmp_path / "validation.md")
    context = build.site_context("kvcalc-9-py3-none-any.whl")
    assert "validation" not in json.loads(context["data_json"]) and context["validation_url"] == ""
    assert build.render_docs(tmp_path) == []
    assert 'id="validation-link"' not in build.render_index(context)

    cache = [{"seq_len": 1, "dtype": "bf16", "kvcalc": 2, "transformers": 2, "exact": True}]
    full = {
        "torch": "2.13.0+cpu", "transformers": "5.23.0", "seq_lens": [1, 300], "dtypes": ["bf16"],
        "models": {
            "a/A": {"name": "A", "model_type": "llama", "exact": True, "cache_exact": True,
                    "params_exact": True, "seq_lens": [1, 300], "dtypes": ["bf16"], "batches": [1, 2],
                    "decode_steps": [0, 1], "cache": cache},
            "b/B": {"name": "B", "model_type": "llama", "exact": False, "cache_exact": False,
                    "params_exact": True, "seq_lens": [1], "dtypes": ["fp32"], "cache": cache},
        },
        "summary": {"models": 2, "exact": 1},
    }  # fmt: skip
    (tmp_path / "validation.json").write_text(json.dumps(full))
    (tmp_path / "validation.md").write_text("# validation\n")
    context = build.site_context("kvcalc-9-py3-none-any.whl")
    assert json.loads(context["data_json"])["validation"] == {
        "torch": "2.13.0+cpu",
        "transformers": "5.23.0",
        "url": "validation.html",
        "models": {
            "a/A": {"exact": True, "seq_lens": [1, 300], "dtypes": ["bf16"], "batches": [1, 2],
                    "decode_steps": [0, 1]},
            "b/B": {"exact": False, "seq_lens": [1], "dtypes": ["fp32"], "batches": [1], "decode_steps": [0]},
        },
    }
    assert context["validation_url"] == "validation.html"
    assert build.render_docs(tmp_path) == ["validation.html"]
    page = (tmp_path / "validation.html").read_text(encoding="utf-8")
    assert '<meta charset="utf-8">' in page and '<h1 id="validation">validation</h1>' in page
    assert 'id="validation-link" class="section-link" href="validation.html"' in build.render_index(context)


def test_real_validation_covers_every_preloaded_model() -> None:
    validation = build.validation_data()
    assert validation is not None and validation["transformers"]
    assert set(validation["models"]) == {e["id"] for e in build.model_entries()}


def test_built_site_is_complete_and_self_contained(site: Path) -> None:
    html = (site / "index.html").read_text()
    wheel = f"wheels/kvcalc-{kvcalc.__version__}-py3-none-any.whl"
    assert f'data-wheel-url="{wheel}"' in html and (site / wheel).is_file()
    assert '<main id="app" data-state="loading"' in html and 'id="kvcalc-version"' in html
    assets = [build.PLOTLY_URL, "app.js", "worker.js", "validation.html"]
    for rel in [*(f"pyodide/{f}" for f in build.PYODIDE_FILES), *assets]:
        assert (site / rel).is_file(), rel
    assert not re.search(r"<(script|link)\b[^>]*\b(src|href)=[\"']?(https?:)?//", html), "external asset"
    for js in site.glob("*.js"):
        assert not re.search(
            r"(\bfrom|\bimport\s*\(|importScripts\s*\()\s*[\"'`](https?:)?//", js.read_text()
        ), js
    assert not re.search(r"<script(?![^>]*\b(src=|type=\"application/json\"))[^>]*>", html), (
        "CSP forbids inline JS"
    )


#: build.STDLIB_DROP as one pattern (tools/pyodide_bytecode.mjs joins it the same way).
DROP = re.compile("|".join(f"(?:{p})" for p in build.STDLIB_DROP))


def _imported_modules(path: Path) -> set[str]:
    """Top-level module names a source file imports anywhere (functions included)."""
    import ast

    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module.split(".")[0])
    return out


#: Imports made only off the page: the Hub client's urllib path runs outside Pyodide (in the browser it
#: uses the page's XMLHttpRequest, see kvcalc.core.hub._pyodide_get).
NATIVE_ONLY = {"kvcalc/core/hub.py": {"http"}}


def _source_of(pyc: str) -> str:
    """kvcalc/web/__pycache__/series.cpython-314.pyc → kvcalc/web/series.py"""
    folder, _, name = pyc.rpartition("/__pycache__/")
    return f"{folder}/{name.split('.')[0]}.py"


def test_page_modules_never_import_what_the_site_leaves_out(site: Path) -> None:
    with zipfile.ZipFile(site / "wheels" / build.wheel_name(kvcalc.__version__)) as zf:
        pycs = [n for n in zf.namelist() if n.endswith(".pyc")]
    sources = {build.ROOT / _source_of(n) for n in pycs}
    for source in sources:
        bad = {m for m in _imported_modules(source) if DROP.fullmatch(f"{m}/x") or DROP.fullmatch(f"{m}.py")}
        bad -= NATIVE_ONLY.get(source.relative_to(build.ROOT).as_posix(), set())
        assert not bad, f"{source.name} imports {bad}, which the site leaves out (build.STDLIB_DROP)"


def _modules(names: list[str]) -> set[str]:
    return {n.removesuffix("c") for n in names if n.endswith((".py", ".pyc"))}


def test_site_stdlib_is_pyodides_with_startup_modules_precompiled(site: Path) -> None:
    """Pyodide's own modules but STDLIB_DROP; what the page imports ships as bytecode."""
    with zipfile.ZipFile(build.PYODIDE_DIR / build.STDLIB_ZIP) as zf:
        upstream = zf.namelist()
    with zipfile.ZipFile(site / "pyodide" / build.STDLIB_ZIP) as zf:
        shipped = zf.namelist()
        magic = {zf.read(n)[:4] for n in shipped if n.endswith(".pyc")}
        flags = {zf.read(n)[4:8] for n in shipped if n.endswith(".pyc")}
    missing = _modules(upstream) - _modules(shipped)
    assert missing and all(DROP.fullmatch(n) for n in missing)
    assert "encodings/utf_8.pyc" in shipped and "encodings/cp1252.py" not in shipped
    compiled = {n for n in shipped if n.endswith(".pyc")}
    needed = {"json/__init__.pyc", "dataclasses.pyc", "typing.pyc", "_pyodide/_base.pyc", "asyncio/tasks.pyc"}
    assert needed <= compiled, needed - compiled
    assert len(compiled) < len(shipped) / 2  # only what is imported, the rest stays source
    assert len(magic) == 1 and flags == {(1).to_bytes(4, "little")}  # one interpreter; unchecked hash


def test_site_wheel_carries_bytecode_for_the_modules_the_page_imports(site: Path) -> None:
    wheel = site / "wheels" / build.wheel_name(kvcalc.__version__)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        with zipfile.ZipFile(site / "pyodide" / build.STDLIB_ZIP) as stdlib:
            magic = stdlib.read("json/__init__.pyc")[:4]
        pycs = [n for n in names if n.endswith(".pyc")]
        assert {zf.read(n)[:4] for n in pycs} == {magic}
    tags = {re.fullmatch(r"kvcalc/(?:\w+/)*__pycache__/(\w+)\.(cpython-3\d+)\.pyc", n).group(2) for n in pycs}  # type: ignore[union-attr]
    assert len(tags) == 1
    imported = {_source_of(n) for n in pycs}
    wanted = {"__init__.py", "web/__init__.py", "core/layers.py", "core/config.py", "engines/vllm.py"}
    assert {f"kvcalc/{n}" for n in wanted} <= imported
    assert not [n for n in imported if n.startswith("kvcalc/measure/")]  # torch-side: never on the page


def test_page_preloads_every_module_app_js_imports(site: Path) -> None:
    graph = build.module_graph()
    assert graph[0] == "app.js" and {"boot.js", "charts.js", "pyodide-client.js"} <= set(graph)  # transitive
    assert "worker.js" not in graph  # the worker's own module map: preloading it here would be wasted
    html = (site / "index.html").read_text()
    preloaded = re.findall(r'<link rel="modulepreload" href="([^"]+)">', html)
    assert sorted(preloaded) == sorted(graph[1:])
    assert all((site / m).is_file() for m in preloaded)


def test_rebuild_prunes_stale_outputs_only(site: Path) -> None:
    stale = site / "wheels" / "kvcalc-0.0.0-py3-none-any.whl"
    stale.write_bytes(b"old")
    manifest = site / build.MANIFEST
    manifest.write_text(manifest.read_text() + "wheels/kvcalc-0.0.0-py3-none-any.whl\n")
    mine = site / "notes.txt"
    mine.write_text("not produced by the build")
    build.build_site(site)
    assert not stale.exists() and mine.exists()


@pytest.fixture
def server(site: Path) -> Iterator[str]:
    httpd = build.make_server(site, port=0, quiet=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    ("path", "mime"),
    [
        ("/pyodide/pyodide.asm.wasm", "application/wasm"),
        ("/pyodide/pyodide.mjs", "text/javascript"),
        ("/worker.js", "text/javascript"),
        ("/validation.html", "text/html"),
        ("/", "text/html"),
    ],
)
def test_server_mime_types(server: str, path: str, mime: str) -> None:
    with urllib.request.urlopen(server + path) as response:
        assert response.headers.get_content_type() == mime


def test_stamp_follows_file_contents(tmp_path: Path) -> None:
    req = tmp_path / "dev.txt"
    req.write_text("pytest==9.2.0\n")
    first = devenv.files_hash([req])
    assert not devenv.stamp_ok(tmp_path, first)
    (tmp_path / devenv.STAMP_NAME).write_text(first + "\n")
    assert devenv.stamp_ok(tmp_path, first)
    req.write_text("pytest==9.2.1\n")
    assert not devenv.stamp_ok(tmp_path, devenv.files_hash([req]))


# ------------------------------------------------------------------------------------------------
# build.py installs what the build needs; test.py everything (issue 12)


def requested_packages(files: list[Path]) -> set[str]:
    """Package names of requirements files, following nested ``-r`` lines."""
    names: set[str] = set()
    for path in files:
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("-r"):
                names |= requested_packages([path.parent / line[2:].strip()])
            elif line:
                names.add(re.split(r"[=<>~!\[ ;]", line, maxsplit=1)[0].lower())
    return names


@pytest.fixture
def fake_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """A venv under tmp_path whose pip calls are recorded instead of run; returns the record."""
    venv = tmp_path / "venv"
    monkeypatch.setattr(devenv, "VENV", venv)
    calls: list[list[str]] = []

    def run(cmd: list[object], env: object = None) -> None:
        calls.append([str(c) for c in cmd])
        if "venv" in calls[-1]:  # python -m venv DIR
            devenv.venv_python().parent.mkdir(parents=True)
            devenv.venv_python().touch()

    monkeypatch.setattr(devenv, "run", run)
    return calls


def pip_files(call: list[str]) -> list[Path]:
    return [Path(call[i + 1]) for i, arg in enumerate(call) if arg == "-r"]


def test_build_installs_no_torch_and_test_completes_the_venv(fake_pip: list[list[str]]) -> None:
    devenv.ensure_venv(devenv.BUILD_REQUIREMENTS)
    venv, pip = fake_pip
    assert "venv" in venv and pip[1:4] == ["-m", "pip", "install"]
    build_only = requested_packages(pip_files(pip))
    assert build_only == {"jinja2"}
    devenv.ensure_venv(devenv.BUILD_REQUIREMENTS)  # stamp matches: no pip
    assert len(fake_pip) == 2
    devenv.ensure_venv(devenv.REQUIREMENTS)  # test.py upgrades the venv build.py made
    assert len(fake_pip) == 3
    everything = requested_packages(pip_files(fake_pip[2]))
    assert {"torch", "transformers", "pytest", "ruff", "jinja2"} <= everything
    devenv.ensure_venv(devenv.BUILD_REQUIREMENTS)  # a venv test.py made covers build.py
    devenv.ensure_venv(devenv.REQUIREMENTS)
    assert len(fake_pip) == 3


def test_changed_requirements_file_reinstalls(fake_pip: list[list[str]], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    build_txt = tmp_path / "build.txt"
    build_txt.write_text("jinja2==3.1.6\n")
    measure = tmp_path / "measure.txt"
    measure.write_text("torch==2.13.0\n")
    devenv.ensure_venv((build_txt, measure))
    build_txt.write_text("jinja2==3.1.7\n")
    devenv.ensure_venv((build_txt,))
    assert pip_files(fake_pip[-1]) == [build_txt]  # only the changed file; measure.txt stays stamped
    devenv.ensure_venv((build_txt, measure))
    assert len(fake_pip) == 3


@pytest.mark.parametrize(("script", "wanted"), [("build", "BUILD_REQUIREMENTS"), ("test", "REQUIREMENTS")])
def test_scripts_ask_for_their_requirements(script: str, wanted: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: E501
    """build.py bootstraps with build.txt only; test.py with everything."""
    import importlib

    module = importlib.import_module(script)
    asked: list[tuple[Path, ...]] = []

    class Stop(Exception):
        pass

    def bootstrap(_script: str, requirements: tuple[Path, ...]) -> None:
        asked.append(tuple(requirements))
        raise Stop

    monkeypatch.setattr(devenv, "bootstrap", bootstrap)
    with pytest.raises(Stop):
        module.main([])
    assert asked == [tuple(getattr(devenv, wanted))]
    torch_wanted = "torch" in requested_packages(list(asked[0]))
    assert torch_wanted is (script == "test")


def test_pyproject_extras_match_the_pins() -> None:
    """`pip install 'kvcalc[measure]'` gets what test.py measures with; `[site]` what build.py uses."""
    import tomllib

    extras = tomllib.loads((build.ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]

    def pins(name: str) -> set[str]:
        lines = (devenv.REQUIREMENTS_DIR / name).read_text().splitlines()
        return {line.strip() for line in lines if line.strip() and not line.startswith("#")}

    assert set(extras["measure"]) == pins("measure.txt")
    assert set(extras["site"]) == pins("build.txt")
    assert pins("measure.txt").isdisjoint(extras["dev"]) and pins("measure.txt").isdisjoint(extras["site"])


@pytest.fixture
def no_browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A machine with no Playwright browser and no /usr/bin/chromium (yet)."""
    chromium = tmp_path / "chromium"
    # setenv first, so that the choice ensure_browser() caches in os.environ is undone afterwards
    # (a bare delenv of an unset variable records nothing, and later browser tests would inherit it).
    monkeypatch.setenv(devenv.BROWSER_ENV, "")
    monkeypatch.delenv(devenv.BROWSER_ENV)
    monkeypatch.setattr(devenv, "playwright_browser_installed", lambda: False)
    monkeypatch.setattr(devenv, "SYSTEM_CHROMIUM", chromium)
    return chromium


def test_browser_order_playwright_first(no_browser: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_browser.touch()
    monkeypatch.setattr(devenv, "playwright_browser_installed", lambda: True)
    assert devenv.ensure_browser() == devenv.PLAYWRIGHT


def test_browser_system_chromium(no_browser: Path) -> None:
    no_browser.touch()
    assert devenv.ensure_browser() == str(no_browser)


def test_browser_apt_installs_chromium_as_root(no_browser: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devenv, "can_apt_install", lambda: True)
    monkeypatch.setattr(devenv, "apt_install_chromium", no_browser.touch)
    assert devenv.ensure_browser() == str(no_browser)


def test_browser_missing_says_what_to_install(no_browser: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devenv, "can_apt_install", lambda: False)
    with pytest.raises(SystemExit, match="playwright install --with-deps chromium.*apt-get install chromium"):
        devenv.ensure_browser()


def test_bytecode_step_failure_is_one_clear_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "broken.mjs"
    script.write_text('console.error("pyodide_bytecode: warm-up failed: boom"); process.exit(1);\n')
    monkeypatch.setattr(build, "BYTECODE_SCRIPT", script)
    monkeypatch.setattr(build, "BYTECODE_CACHE", tmp_path / "cache")
    with pytest.raises(SystemExit, match="precompiling Python for Pyodide failed: .*boom"):
        build.pyodide_bytecode(b"not a wheel", [])
    assert not list((tmp_path / "cache").rglob("done"))  # a failed run is redone next time
