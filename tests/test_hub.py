"""Hugging Face ids without the internet: a local HTTP server plays the Hub (tests/hubserver.py)."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kvcalc
from kvcalc.core import hub
from kvcalc.errors import KVCalcError
from tests.hubserver import Hub, serve

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"
QWEN = "Qwen/Qwen3-0.6B"
LLAMA = "meta-llama/Llama-2-7b-hf"
#: Real configs served under test-only repository names: preloaded names resolve without the network,
#: so the callers' tests (CLI, compat) use ids that only the fake Hub knows.
SERVED = "hub-test/served-Qwen3-0.6B-config"
GATED = "hub-test/gated-Llama-2-7b-hf-config"


def real_config(repo_id: str) -> bytes:
    return (CONFIGS / repo_id / "config.json").read_bytes()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clean Hub environment under tmp_path (no token, online, an empty cache)."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_TOKEN_PATH",
                 "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    return tmp_path / "hub-cache"


@pytest.fixture
def fake_hub(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    """The configs of two real models and one gated copy, served on 127.0.0.1 as HF_ENDPOINT."""
    state = Hub()
    state.add(QWEN, {"config.json": real_config(QWEN)})
    state.add(QWEN, {"config.json": real_config(QWEN)}, revision="v1", commit="1" * 40)
    state.add(LLAMA, {"config.json": real_config(LLAMA)}, gated_token="hf_good")
    state.add(SERVED, {"config.json": real_config(QWEN)})
    state.add(GATED, {"config.json": real_config(LLAMA)}, gated_token="hf_good")
    with serve(state) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        yield state


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------------------------------
# ids, environment


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("Qwen/Qwen3-0.6B", ("Qwen", "Qwen3-0.6B", "main")),
        ("meta-llama/Llama-2-7b-hf@v1.0", ("meta-llama", "Llama-2-7b-hf", "v1.0")),
        ("org/name@refs/pr/1", ("org", "name", "refs/pr/1")),
        ("DeepSeek-V3", None),
        ("configs/x.json", None),
        ("a/b/c", None),
        ("../etc", None),
        ('{"model_type": "llama"}', None),
    ],
)
def test_parse_hub_id(spec: str, parsed: tuple[str, str, str] | None) -> None:
    hid = hub.parse_hub_id(spec)
    assert (None if hid is None else (hid.org, hid.name, hid.revision)) == parsed


def test_environment(env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert hub.endpoint() == "https://huggingface.co"
    assert hub.cache_dir() == env
    monkeypatch.delenv("HF_HUB_CACHE")
    assert hub.cache_dir() == tmp_path / "hf-home" / "hub"
    assert hub.token() is None
    (tmp_path / "hf-home").mkdir()
    (tmp_path / "hf-home" / "token").write_text("hf_from_file\n")
    assert hub.token() == "hf_from_file"
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert hub.token() == "hf_env"
    for value, offline in (("1", True), ("true", True), ("ON", True), ("0", False), ("", False)):
        monkeypatch.setenv("HF_HUB_OFFLINE", value)
        assert hub.is_offline() is offline
    url = hub.file_url(hub.parse_hub_id("org/name@refs/pr/1"), "config.json")
    assert url == "https://huggingface.co/org/name/resolve/refs%2Fpr%2F1/config.json"


# ------------------------------------------------------------------------------------------------
# config fetch and the cache


def test_load_model_by_id_matches_the_file(fake_hub: Hub) -> None:
    model = kvcalc.load_model(QWEN)
    local = kvcalc.load_model(CONFIGS / QWEN / "config.json")
    assert model.name == QWEN
    assert model.layers == local.layers
    assert kvcalc.kv_cache_bytes(model, 32768) == kvcalc.kv_cache_bytes(local, 32768)
    assert [p for p, _, _ in fake_hub.requests] == [f"/{QWEN}/resolve/main/config.json"]


def test_cache_layout_is_the_hubs(fake_hub: Hub, env: Path) -> None:
    data = hub.hub_file(QWEN, "config.json")
    assert data == real_config(QWEN)
    repo = env / "models--Qwen--Qwen3-0.6B"
    commit = (repo / "refs" / "main").read_text()
    assert commit == fake_hub.repos[QWEN].refs["main"]
    link = repo / "snapshots" / commit / "config.json"
    assert link.is_symlink() and os.readlink(link).startswith("../../blobs/")
    blobs = list((repo / "blobs").iterdir())
    assert len(blobs) == 1 and blobs[0].read_bytes() == data and link.resolve() == blobs[0].resolve()
    assert hub.cached_file(QWEN, "config.json") == link


def test_offline_second_call_uses_the_cache(fake_hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    first = kvcalc.load_model(QWEN)
    count = len(fake_hub.requests)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    second = kvcalc.load_model(QWEN)
    assert second.layers == first.layers and len(fake_hub.requests) == count


def test_revision_is_cached_under_its_ref(fake_hub: Hub, env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kvcalc.load_model(f"{QWEN}@v1")
    assert fake_hub.requests[-1][0] == f"/{QWEN}/resolve/v1/config.json"
    assert (env / "models--Qwen--Qwen3-0.6B" / "refs" / "v1").read_text() == "1" * 40
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert kvcalc.load_model(f"{QWEN}@{'1' * 40}").name == f"{QWEN}@{'1' * 40}"  # by commit, from the cache
    with pytest.raises(KVCalcError, match="HF_HUB_OFFLINE is set and config.json is not in the Hub cache"):
        kvcalc.load_model(f"{QWEN}@v2")


def test_reuses_a_cache_transformers_wrote(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub's layout written by hand (refs/main, snapshots/<commit> → blobs/<etag>): no server
    at all, offline and online-but-unreachable both answer from it."""
    repo = env / "models--meta-llama--Llama-2-7b-hf"
    commit = "01c7f73d771dfac7d292323805ebc428287df4f9"
    (repo / "blobs").mkdir(parents=True)
    (repo / "blobs" / "8a5f9d7bd6a1c0f1b0ad1fba2d0ad1c3c0ae13b2").write_bytes(real_config(LLAMA))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").symlink_to(
        "../../blobs/8a5f9d7bd6a1c0f1b0ad1fba2d0ad1c3c0ae13b2"
    )
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    assert kvcalc.load_model(LLAMA).name == LLAMA
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert len(kvcalc.load_model(LLAMA).layers) == 32


# ------------------------------------------------------------------------------------------------
# errors say what to do


@pytest.mark.parametrize(
    ("spec", "token", "message"),
    [
        (LLAMA, None, r"gated \(HTTP 401\): accept the license on the model page .* set HF_TOKEN"),
        (LLAMA, "hf_wrong", r"gated \(HTTP 403\): accept the license on the model page .* set HF_TOKEN"),
        ("nobody/no-such-model", None, "no such model on http://127.0.0.1"),
        (f"{QWEN}@no-such-branch", None, "no such revision 'no-such-branch'"),
    ],
)
def test_http_errors(fake_hub: Hub, monkeypatch: pytest.MonkeyPatch, spec: str, token: str | None,
                     message: str) -> None:  # fmt: skip
    if token:
        monkeypatch.setenv("HF_TOKEN", token)
    with pytest.raises(KVCalcError, match=message):
        kvcalc.load_model(spec)


def test_missing_file_is_a_404(fake_hub: Hub) -> None:
    with pytest.raises(hub.HubFileMissing, match="the repository has no tokenizer.json"):
        hub.hub_file(QWEN, "tokenizer.json")


def test_gated_with_a_token(fake_hub: Hub, tmp_path: Path) -> None:
    (tmp_path / "hf-home").mkdir()
    (tmp_path / "hf-home" / "token").write_text("hf_good\n")  # what `huggingface-cli login` writes
    assert kvcalc.load_model(LLAMA).name == LLAMA
    assert fake_hub.requests[-1][2] == "Bearer hf_good"


def test_unreachable_endpoint_fails_fast(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    start = time.perf_counter()
    with pytest.raises(KVCalcError, match=r"offline: pass a local path or set HF_HUB_OFFLINE=1"):
        kvcalc.load_model(QWEN)
    assert time.perf_counter() - start < 3


def test_silent_endpoint_times_out(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that accepts connections and never answers: the error comes after TIMEOUT, no retries."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setattr(hub, "TIMEOUT", 0.5)
        start = time.perf_counter()
        with pytest.raises(KVCalcError, match=r"cannot reach .* offline: pass a local path"):
            kvcalc.load_model(QWEN)
        assert time.perf_counter() - start < 3


def test_offline_with_an_empty_cache(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(KVCalcError, match="HF_HUB_OFFLINE is set and config.json is not in the Hub cache"):
        kvcalc.load_model(QWEN)


def test_a_local_folder_wins_over_an_id(fake_hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: E501
    folder = tmp_path / "Qwen" / "Qwen3-0.6B"
    folder.mkdir(parents=True)
    (folder / "config.json").write_bytes(real_config(QWEN))
    monkeypatch.chdir(tmp_path)
    kvcalc.load_model(QWEN)
    assert fake_hub.requests == []


# ------------------------------------------------------------------------------------------------
# the callers: CLI, compat, compare


def test_cli_accepts_hub_ids(fake_hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    from kvcalc.cli.main import main

    assert main(["kv", SERVED, "--seq-len", "32k", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    local = kvcalc.load_model(CONFIGS / QWEN / "config.json")
    assert out["bytes"] == kvcalc.kv_cache_bytes(local, 32768)


def test_cli_compare_keeps_the_models_that_worked(fake_hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    from kvcalc.cli.main import main

    code = main(["compare", SERVED, "nobody/no-such-model", GATED, "--seq-len", "4k", "--json"])
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert code == 1
    assert [r["model"] for r in rows] == [SERVED, "nobody/no-such-model", GATED]
    assert rows[0]["bytes"] > 0 and "error" not in rows[0]
    assert "no such model" in rows[1]["error"] and "accept the license" in rows[2]["error"]
    assert "error: nobody/no-such-model: model:" in captured.err


def test_compat_calculate_memory_by_id(fake_hub: Hub) -> None:
    from kvcalc import compat

    report = compat.calculate_memory(SERVED, batch_size=1, seq_length=4096)
    local = compat.calculate_memory(kvcalc.load_model(CONFIGS / QWEN / "config.json"), 1, 4096)
    assert report.model == "served-Qwen3-0.6B-config" and report.kv_cache_bytes == local.kv_cache_bytes


def test_compat_compare_models_keeps_the_models_that_worked(fake_hub: Hub) -> None:
    from kvcalc import compat

    rows = compat.compare_models([SERVED, "nobody/no-such-model"], seq_length=1024)
    assert "error" not in rows[0]
    assert rows[1]["model_id"] == "nobody/no-such-model" and "no such model" in rows[1]["error"]


# ------------------------------------------------------------------------------------------------
# Pyodide: a synchronous XMLHttpRequest instead of urllib


class _FakeXHR:
    """The parts of the browser's XMLHttpRequest kvcalc uses, answered by a real request to the server."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}
        self.status = 0
        self.response: bytes | None = None
        self._raw = ""

    @classmethod
    def new(cls) -> _FakeXHR:
        return cls()

    def open(self, method: str, url: str, asynchronous: bool) -> None:
        assert method == "GET" and asynchronous is False
        self.url = url

    def setRequestHeader(self, key: str, value: str) -> None:  # noqa: N802 - the browser's name
        assert key not in ("User-Agent", "Accept-Encoding"), "forbidden header in a browser"
        self.headers[key] = value

    def send(self) -> None:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(urllib.request.Request(self.url, headers=self.headers)) as r:
                self.status, self.response, head = r.status, r.read(), r.headers
        except urllib.error.HTTPError as exc:
            self.status, self.response, head = exc.code, b"", exc.headers
        except urllib.error.URLError:
            raise RuntimeError("NetworkError: Failed to execute 'send' on 'XMLHttpRequest'") from None
        self._raw = "".join(f"{k}: {v}\r\n" for k, v in head.items())

    def getAllResponseHeaders(self) -> str:  # noqa: N802 - the browser's name
        return self._raw


class _FakeUint8Array:
    @staticmethod
    def new(buffer: bytes) -> _FakeUint8Array:
        out = _FakeUint8Array()
        out.data = buffer
        return out

    def to_py(self) -> memoryview:
        return memoryview(self.data)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    js = types.ModuleType("js")
    js.XMLHttpRequest = _FakeXHR  # type: ignore[attr-defined]
    js.Uint8Array = _FakeUint8Array  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "js", js)
    monkeypatch.setattr(hub, "_in_browser", lambda: True)


@pytest.mark.usefixtures("browser")
def test_pyodide_fetch_goes_through_xhr(fake_hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    assert kvcalc.load_model(QWEN).name == QWEN
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    assert kvcalc.load_model(LLAMA).name == LLAMA and fake_hub.requests[-1][2] == "Bearer hf_good"
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(KVCalcError, match=r"gated \(HTTP 403\)"):
        kvcalc.load_model(LLAMA)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(KVCalcError, match="offline: pass a local path or set HF_HUB_OFFLINE=1"):
        kvcalc.load_model(f"{QWEN}@v1")


_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True).filter(
    lambda n: ".." not in n and not n.endswith(".json")
)


@given(_NAME, _NAME, st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_.-]{1,12}(/[A-Za-z0-9_-]{1,5})?",
                                                       fullmatch=True).filter(lambda r: ".." not in r)))
def test_hub_id_round_trip(org: str, name: str, revision: str | None) -> None:
    """str(HubId) parses back to itself; the URL quotes the revision into one path segment."""
    spec = f"{org}/{name}" + (f"@{revision}" if revision else "")
    hid = hub.parse_hub_id(spec)
    assert hid is not None and hub.parse_hub_id(str(hid)) == hid
    assert (hid.org, hid.name, hid.revision) == (org, name, revision or "main")
    assert hub.file_url(hid, "config.json").count("/") == hub.endpoint().count("/") + 5
