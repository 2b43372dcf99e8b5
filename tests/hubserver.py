"""A local stand-in for the Hugging Face Hub (tests only: no internet).

Serves ``/{org}/{name}/resolve/{revision}/{file}`` like the Hub does: ``X-Repo-Commit`` and ``ETag`` on
every answer, ``X-Error-Code`` on errors (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo),
HTTP Range (206 + Content-Range), and — for files marked ``lfs`` — a 302 to ``/cdn/…`` that carries the
commit and ``X-Linked-Etag``, as the Hub's redirects to its CDN do. Also writes safetensors files.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import struct
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: bytes per element of the dtypes the tests write (sub-byte F4 counts half a byte: see nbytes()).
ITEMSIZE = {"BF16": 2, "F16": 2, "F32": 4, "F8_E4M3": 1, "I32": 4, "U8": 1, "I64": 8, "F8_E8M0": 1}


@dataclass
class Repo:
    """One model repository: files per commit and the refs pointing at commits."""

    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit -> filename -> bytes
    refs: dict[str, str] = field(default_factory=dict)  # revision -> commit
    gated_token: str | None = None  # set: gated, and only this token gets the files
    lfs: set[str] = field(default_factory=set)  # files answered by a redirect to /cdn/


@dataclass
class Hub:
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # path, range, auth

    def add(self, repo_id: str, files: Mapping[str, bytes], *, revision: str = "main",
            commit: str | None = None, **kw: Any) -> str:  # fmt: skip
        """Put files at a revision; returns the commit hash."""
        repo = self.repos.setdefault(repo_id, Repo(**kw))
        commit = commit or hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()
        repo.files.setdefault(commit, {}).update(files)
        repo.refs[revision] = commit
        return commit


def _etag(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    hub: Hub

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _fail(self, status: int, code: str, commit: str | None = None) -> None:
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.hub.requests.append((self.path, self.headers.get("Range"), self.headers.get("Authorization")))
        cdn = re.fullmatch(r"/cdn/([^/]+)/([^/]+)/([0-9a-f]{40})/(.+)", self.path)
        if cdn:
            org, name, commit, filename = cdn.groups()
            data = self.hub.repos[f"{org}/{name}"].files[commit][filename]
            return self._send(data, {})
        match = re.fullmatch(r"/([^/]+)/([^/]+)/resolve/([^/]+)/(.+)", self.path)
        if not match:
            return self._fail(404, "RepoNotFound")
        org, name, revision, filename = (_unquote(g) for g in match.groups())
        repo = self.hub.repos.get(f"{org}/{name}")
        if repo is None:
            return self._fail(404, "RepoNotFound")
        if repo.gated_token is not None:
            auth = self.headers.get("Authorization")
            if auth is None:
                return self._fail(401, "GatedRepo")
            if auth != f"Bearer {repo.gated_token}":
                return self._fail(403, "GatedRepo")
        commit = repo.refs.get(revision, revision if revision in repo.files else None)
        if commit is None:
            return self._fail(404, "RevisionNotFound")
        data = repo.files[commit].get(filename)
        if data is None:
            return self._fail(404, "EntryNotFound", commit)
        if filename in repo.lfs:
            self.send_response(302)
            self.send_header("Location", f"/cdn/{org}/{name}/{commit}/{filename}")
            self.send_header("X-Repo-Commit", commit)
            self.send_header("X-Linked-Etag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        return self._send(data, {"X-Repo-Commit": commit, "ETag": f'"{_etag(data)}"'})

    def _send(self, data: bytes, headers: Mapping[str, str]) -> None:
        rng = self.headers.get("Range")
        status, body = 200, data
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-(\d+)", rng)
            assert m, rng
            start, end = int(m[1]), min(int(m[2]), len(data) - 1)
            status, body = 206, data[start : end + 1]
            headers = {**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"}
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _unquote(text: str) -> str:
    from urllib.parse import unquote

    return unquote(text)


@contextmanager
def serve(hub: Hub) -> Iterator[str]:
    """Serve `hub` on 127.0.0.1 (a free port); yields the endpoint URL."""
    handler = type("Handler", (_Handler,), {"hub": hub})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------------------------------
# safetensors files written by the tests


def nbytes(dtype: str, shape: tuple[int, ...]) -> int:
    """Bytes of one tensor, by hand: elements × bytes per element."""
    n = 1
    for d in shape:
        n *= d
    return n * ITEMSIZE[dtype]


def safetensors_bytes(tensors: Mapping[str, tuple[str, tuple[int, ...]]], metadata: Mapping[str, str] | None
                      = None) -> bytes:  # fmt: skip
    """A whole safetensors file (zero data) for {name: (dtype, shape)}, header padded to 8 bytes."""
    header: dict[str, Any] = {"__metadata__": dict(metadata or {"format": "pt"})}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = nbytes(dtype, shape)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(offset)


def write_safetensors(path: Path, tensors: Mapping[str, tuple[str, tuple[int, ...]]]) -> int:
    """Write a safetensors file whose data is a sparse hole; returns the data bytes."""
    header = safetensors_bytes({n: (d, s) for n, (d, s) in tensors.items()})
    data = sum(nbytes(d, s) for d, s in tensors.values())
    head = header[: len(header) - data]
    with path.open("wb") as fh:
        fh.write(head)
        fh.truncate(len(head) + data)
    return data


def index_json(weight_map: Mapping[str, str], total: int) -> bytes:
    """model.safetensors.index.json for a tensor → shard map."""
    return json.dumps({"metadata": {"total_size": total}, "weight_map": dict(weight_map)}).encode()
