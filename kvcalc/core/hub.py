"""Files of Hugging Face Hub repositories by id (``org/name[@revision]``), standard library only.

URLs, token and cache follow huggingface_hub (``constants.py``, ``file_download.hf_hub_download``), so
files transformers already downloaded are reused and files fetched here are reused by transformers:

* URL ``{HF_ENDPOINT}/{org}/{name}/resolve/{revision}/{filename}`` (``HF_ENDPOINT`` defaults to
  https://huggingface.co, the revision to ``main``; the revision is URL-quoted, so ``refs/pr/1`` works);
* token: ``HF_TOKEN``, else the file ``huggingface-cli login`` writes (``HF_TOKEN_PATH``, else
  ``$HF_HOME/token``; ``HF_HOME`` defaults to ``$XDG_CACHE_HOME/huggingface`` or ``~/.cache/huggingface``);
* cache ``HF_HUB_CACHE`` (else ``$HF_HOME/hub``): ``models--{org}--{name}/refs/{revision}`` holds the
  commit, ``snapshots/{commit}/{filename}`` links to ``blobs/{etag}``; the commit comes from the
  ``X-Repo-Commit`` header and the etag from ``X-Linked-Etag`` / ``ETag`` (quotes and ``W/`` dropped);
* ``HF_HUB_OFFLINE=1`` (or ``true``/``yes``/``on``): the cache only.

Requests time out after :data:`TIMEOUT` seconds and are not retried: an unreachable Hub is reported in
seconds, and a cached copy is used instead when there is one. In Pyodide (``sys.platform ==
"emscripten"``) requests go through a synchronous ``XMLHttpRequest`` (allowed in the Web Worker the page
runs Python in); the cache is then Pyodide's in-memory file system. Every failure is a
:class:`KVCalcError` that says what to do.
"""

from __future__ import annotations

import os
import re
import sys
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kvcalc.core.fields import parse_json
from kvcalc.errors import KVCalcError

__all__ = [
    "TIMEOUT",
    "HubFileMissing",
    "HubId",
    "Response",
    "cache_dir",
    "cached_file",
    "endpoint",
    "fetch_config",
    "file_url",
    "hub_file",
    "is_offline",
    "parse_hub_id",
    "read_range",
    "token",
]

DEFAULT_ENDPOINT = "https://huggingface.co"
DEFAULT_REVISION = "main"
TIMEOUT = 5.0  # seconds per request; no retries
MAX_FILE_BYTES = 64 * 1024 * 1024  # a config or an index file; more is not what we asked for
USER_AGENT = "kvcalc (+stdlib urllib)"
_NAME = r"[A-Za-z0-9][\w.-]{0,95}"
_ID_RE = re.compile(rf"({_NAME})/({_NAME})(?:@([\w.\-/]{{1,200}}))?")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "on", "yes", "true"}
_BROWSER_SETS = {"User-Agent", "Accept-Encoding"}  # forbidden request headers: the browser sets them


@dataclass(frozen=True)
class HubId:
    """A Hub model repository and a revision (branch, tag or commit)."""

    org: str
    name: str
    revision: str = DEFAULT_REVISION

    @property
    def repo_id(self) -> str:
        """``org/name``."""
        return f"{self.org}/{self.name}"

    def __str__(self) -> str:
        return self.repo_id if self.revision == DEFAULT_REVISION else f"{self.repo_id}@{self.revision}"

    @property
    def page(self) -> str:
        """The model page on the Hub."""
        return f"{endpoint()}/{self.repo_id}"


def parse_hub_id(spec: object) -> HubId | None:
    """``org/name`` or ``org/name@revision`` → HubId; anything else → None."""
    if isinstance(spec, HubId):
        return spec
    if not isinstance(spec, str):
        return None
    match = _ID_RE.fullmatch(spec.strip())
    if match is None:
        return None
    org, name, revision = match.groups()
    if ".." in org + name or name.endswith(".json") or (revision and ".." in revision):
        return None
    return HubId(org, name, revision or DEFAULT_REVISION)


def _hub_id(spec: object) -> HubId:
    hid = parse_hub_id(spec)
    if hid is None:
        raise KVCalcError(f"model: {spec!r} is not a Hugging Face id (org/name or org/name@revision)")
    return hid


# ------------------------------------------------------------------------------------------------
# environment (huggingface_hub/constants.py)


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def endpoint() -> str:
    """``HF_ENDPOINT`` without a trailing slash (default https://huggingface.co)."""
    return (_env("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _hf_home() -> Path:
    xdg = _env("XDG_CACHE_HOME")
    default = Path(xdg) / "huggingface" if xdg else Path.home() / ".cache" / "huggingface"
    return Path(os.path.expanduser(_env("HF_HOME") or str(default)))


def cache_dir() -> Path:
    """The Hub cache: ``HF_HUB_CACHE`` (or the older ``HUGGINGFACE_HUB_CACHE``), else ``$HF_HOME/hub``."""
    explicit = _env("HF_HUB_CACHE") or _env("HUGGINGFACE_HUB_CACHE")
    return Path(os.path.expanduser(explicit)) if explicit else _hf_home() / "hub"


def token() -> str | None:
    """``HF_TOKEN`` (or the older ``HUGGING_FACE_HUB_TOKEN``), else the saved token file, else None."""
    value = _env("HF_TOKEN") or _env("HUGGING_FACE_HUB_TOKEN")
    if value:
        return value.strip()
    path = Path(os.path.expanduser(_env("HF_TOKEN_PATH") or str(_hf_home() / "token")))
    try:
        saved = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return saved or None


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is 1/true/yes/on (huggingface_hub's rule)."""
    return (os.environ.get("HF_HUB_OFFLINE") or "").strip().lower() in _TRUE


def file_url(hid: HubId, filename: str) -> str:
    """The ``resolve`` URL of one file at the id's revision."""
    rev = urllib.parse.quote(hid.revision, safe="")
    return f"{endpoint()}/{hid.repo_id}/resolve/{rev}/{urllib.parse.quote(filename)}"


# ------------------------------------------------------------------------------------------------
# the cache (huggingface_hub/file_download.py layout)


def _repo_dir(hid: HubId) -> Path:
    return cache_dir() / f"models--{hid.org}--{hid.name}"


def cached_file(spec: HubId | str, filename: str) -> Path | None:
    """The cached copy of ``filename`` at the id's revision, or None."""
    hid = _hub_id(spec)
    repo = _repo_dir(hid)
    commit = hid.revision
    if not _COMMIT_RE.fullmatch(commit):
        try:
            commit = (repo / "refs" / hid.revision).read_text(encoding="utf-8").strip()
        except OSError:
            return None
    path = repo / "snapshots" / commit / filename
    return path if path.is_file() else None


def _store(hid: HubId, filename: str, data: bytes, commit: str | None, etag: str | None) -> None:
    """Write a downloaded file into the cache (blob + snapshot link + ref); best effort."""
    if not commit or not _COMMIT_RE.fullmatch(commit) or not etag or not re.fullmatch(r"[\w.-]+", etag):
        return
    repo = _repo_dir(hid)
    try:
        blob = repo / "blobs" / etag
        if not blob.is_file():
            blob.parent.mkdir(parents=True, exist_ok=True)
            tmp = blob.with_name(f"{etag}.{os.getpid()}.incomplete")
            tmp.write_bytes(data)
            os.replace(tmp, blob)
        link = repo / "snapshots" / commit / filename
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_file():
            link.unlink(missing_ok=True)
            try:
                link.symlink_to(os.path.relpath(blob, link.parent))
            except OSError:  # no symlinks (Windows without developer mode): a copy, as huggingface_hub does
                link.write_bytes(data)
        if hid.revision != commit:
            ref = repo / "refs" / hid.revision
            ref.parent.mkdir(parents=True, exist_ok=True)
            ref.write_text(commit, encoding="utf-8")
    except OSError:
        return


# ------------------------------------------------------------------------------------------------
# HTTP


@dataclass(frozen=True)
class Response:
    """What a request returned: status, headers (lower-case names; redirects' headers included,
    the last response's win) and at most the bytes asked for."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class HubFileMissing(KVCalcError):
    """The repository and revision exist (or may), but the file does not (HTTP 404)."""


class _Offline(Exception):
    """The endpoint could not be reached (DNS, refused, timeout)."""


def _redirect_handler(auth: str | None) -> Any:
    """A redirect handler that remembers the redirects' headers (X-Repo-Commit, X-Linked-Etag sit on the
    Hub's 302 to its CDN) and sends the token again only to the endpoint's own host. urllib.request is
    imported here: it pulls in http and email, which the page's Pyodide does not ship."""
    import urllib.request

    class Redirects(urllib.request.HTTPRedirectHandler):
        seen: dict[str, str] = {}

        def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
            self.seen.update({k.lower(): v for k, v in headers.items()})
            new = super().redirect_request(req, fp, code, msg, headers, newurl)
            same_host = urllib.parse.urlsplit(newurl).netloc == urllib.parse.urlsplit(endpoint()).netloc
            if new is not None and auth and same_host:
                new.add_unredirected_header("Authorization", auth)
            return new

    handler = Redirects()
    handler.seen = {}
    return handler


def _urllib_get(url: str, headers: Mapping[str, str], timeout: float, limit: int) -> Response:
    import http.client
    import urllib.error
    import urllib.request

    auth = headers.get("Authorization")
    redirects = _redirect_handler(auth)
    opener = urllib.request.build_opener(redirects)
    request = urllib.request.Request(url, headers={k: v for k, v in headers.items() if k != "Authorization"})
    if auth:
        request.add_unredirected_header("Authorization", auth)
    try:
        with opener.open(request, timeout=timeout) as resp:
            body = resp.read(limit + 1)
            found = {**redirects.seen, **{k.lower(): v for k, v in resp.headers.items()}}
            return Response(resp.status, found, body)
    except urllib.error.HTTPError as exc:
        found = {**redirects.seen, **{k.lower(): v for k, v in (exc.headers or {}).items()}}
        return Response(exc.code, found, b"")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise _Offline(str(reason) or type(reason).__name__) from None


def _pyodide_get(url: str, headers: Mapping[str, str], timeout: float, limit: int) -> Response:
    """A synchronous XMLHttpRequest (Pyodide in a Web Worker); the browser follows redirects."""
    from js import Uint8Array, XMLHttpRequest  # type: ignore[import-not-found]  # Pyodide only

    xhr = XMLHttpRequest.new()
    try:
        xhr.open("GET", url, False)
        xhr.responseType = "arraybuffer"  # allowed for synchronous requests in workers only
        for key, value in headers.items():
            if key not in _BROWSER_SETS:
                xhr.setRequestHeader(key, value)
        xhr.send()
    except Exception as exc:  # noqa: BLE001 - a JsException: network error or CORS refusal
        raise _Offline(str(exc).splitlines()[0] if str(exc) else "network error") from None
    if xhr.status == 0:
        raise _Offline("network error or blocked by CORS")
    names = [line.split(":", 1) for line in str(xhr.getAllResponseHeaders()).splitlines() if ":" in line]
    found = {k.strip().lower(): v.strip() for k, v in names}
    body = bytes(Uint8Array.new(xhr.response).to_py()) if xhr.status < 400 and xhr.response else b""
    return Response(int(xhr.status), found, body[: limit + 1])


def _in_browser() -> bool:
    """True in Pyodide (requests go through the browser)."""
    return sys.platform == "emscripten"


def _get(url: str, extra: Mapping[str, str] | None = None, *, timeout: float | None = None,
         limit: int = MAX_FILE_BYTES) -> Response:  # fmt: skip
    """GET ``url`` with the token (when there is one); raise _Offline when unreachable."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **(extra or {})}
    tok = token()
    if tok:
        headers["Authorization"] = f"Bearer {tok}"
    get = _pyodide_get if _in_browser() else _urllib_get
    return get(url, headers, TIMEOUT if timeout is None else timeout, limit)


def _http_error(hid: HubId, filename: str, resp: Response) -> KVCalcError:
    """The message for an HTTP error status, using the Hub's X-Error-Code when it sends one."""
    code = resp.headers.get("x-error-code", "")
    where = f"model: {hid}"
    if code == "GatedRepo" or (resp.status in (401, 403) and code != "RepoNotFound"):
        why = "gated" if code == "GatedRepo" or resp.status == 403 else "gated or private"
        return KVCalcError(
            f"{where}: {why} (HTTP {resp.status}): accept the license on the model page ({hid.page}) "
            "and set HF_TOKEN (or run `huggingface-cli login`)"
        )
    if code == "RepoNotFound":
        return KVCalcError(f"{where}: no such model on {endpoint()} (a private one needs HF_TOKEN)")
    if code == "RevisionNotFound":
        return KVCalcError(f"{where}: no such revision {hid.revision!r}")
    if code == "EntryNotFound":
        return HubFileMissing(f"{where}: the repository has no {filename}")
    if resp.status == 404:
        return HubFileMissing(f"{where}: no such model or revision, or no {filename} in it (HTTP 404)")
    return KVCalcError(f"{where}: the Hub answered HTTP {resp.status} for {filename}; try again later")


def _offline_error(hid: HubId, reason: str) -> KVCalcError:
    return KVCalcError(
        f"model: {hid}: cannot reach {endpoint()} ({reason}): offline: pass a local path "
        "or set HF_HUB_OFFLINE=1 to use the Hub cache"
    )


def _etag(headers: Mapping[str, str]) -> str | None:
    raw = headers.get("x-linked-etag") or headers.get("etag")
    return raw.removeprefix("W/").strip('"') if raw else None


def hub_file(spec: HubId | str, filename: str, *, timeout: float | None = None) -> bytes:
    """The bytes of ``filename`` in a Hub repository (cache first when offline, cache as fallback)."""
    hid = _hub_id(spec)
    cached = cached_file(hid, filename)
    if is_offline() or (cached is not None and _COMMIT_RE.fullmatch(hid.revision)):
        if cached is None:
            raise KVCalcError(
                f"model: {hid}: HF_HUB_OFFLINE is set and {filename} is not in the Hub cache "
                f"({_repo_dir(hid)}); unset HF_HUB_OFFLINE or pass a local path"
            )
        return cached.read_bytes()
    try:
        resp = _get(file_url(hid, filename), timeout=timeout)
    except _Offline as exc:
        if cached is not None:
            return cached.read_bytes()
        raise _offline_error(hid, str(exc)) from None
    if resp.status >= 400:
        raise _http_error(hid, filename, resp)
    if len(resp.body) > MAX_FILE_BYTES:
        raise KVCalcError(f"model: {hid}: {filename} is larger than {MAX_FILE_BYTES:,} bytes")
    _store(hid, filename, resp.body, resp.headers.get("x-repo-commit"), _etag(resp.headers))
    return resp.body


def fetch_config(spec: HubId | str, *, timeout: float | None = None) -> dict[str, Any]:
    """``config.json`` of a Hub id as a dict (see :func:`hub_file`)."""
    return parse_json(hub_file(spec, "config.json", timeout=timeout))


def read_range(spec: HubId | str, filename: str, start: int, length: int, *,
               timeout: float | None = None) -> bytes:  # fmt: skip
    """``length`` bytes of a Hub file from ``start`` (an HTTP Range request; never cached, never the
    whole file: a server that ignores Range is cut off after ``start + length`` bytes)."""
    hid = _hub_id(spec)
    if is_offline():
        cached = cached_file(hid, filename)
        if cached is None:
            raise KVCalcError(
                f"model: {hid}: HF_HUB_OFFLINE is set and {filename} is not in the Hub cache; "
                "unset HF_HUB_OFFLINE or pass a local folder"
            )
        with cached.open("rb") as fh:
            fh.seek(start)
            return fh.read(length)
    headers = {"Range": f"bytes={start}-{start + length - 1}"}
    try:
        resp = _get(file_url(hid, filename), headers, timeout=timeout, limit=start + length)
    except _Offline as exc:
        raise _offline_error(hid, str(exc)) from None
    if resp.status >= 400:
        raise _http_error(hid, filename, resp)
    body = resp.body if resp.status == 206 else resp.body[start:]
    return body[:length]
