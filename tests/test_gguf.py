"""GGUF header reader: a GGUF written here (GGUF v3 layout, several tensor types) gives exact bytes.

Block sizes are ggml's (ggml-common.h static_asserts): Q4_K 144 B / 256 values (4.5 bits per weight),
Q6_K 210 B / 256 (6.5625), Q8_0 34 B / 32 (8.5), IQ4_XS 136 B / 256 (4.25), MXFP4 17 B / 32.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from kvcalc.core import gguf
from kvcalc.engines import llamacpp as L
from kvcalc.errors import KVCalcError

# value type ids (GGUFValueType)
U32, I32, F32, BOOL, STR, ARR, U64 = 4, 5, 6, 7, 8, 9, 10


def _str(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def _value(v: Any) -> tuple[int, bytes]:
    if isinstance(v, bool):
        return BOOL, struct.pack("<?", v)
    if isinstance(v, int):
        return U32, struct.pack("<I", v)
    if isinstance(v, float):
        return F32, struct.pack("<f", v)
    if isinstance(v, str):
        return STR, _str(v)
    if isinstance(v, list):
        t, _ = _value(v[0])
        return ARR, struct.pack("<IQ", t, len(v)) + b"".join(_value(x)[1] for x in v)
    raise TypeError(v)


def write_gguf(path: Path, metadata: dict[str, Any], tensors: list[tuple[str, tuple[int, ...], str]]) -> None:
    """A GGUF v3 header (metadata + tensor infos) followed by zeroed, aligned tensor data."""
    out = bytearray(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata)))
    for key, v in metadata.items():
        t, payload = _value(v)
        out += _str(key) + struct.pack("<I", t) + payload
    offset, sizes = 0, []
    for name, shape, type_name in tensors:
        tid = gguf.TYPE_IDS[type_name]
        _, blck, size = gguf.GGML_TYPES[tid]
        n = 1
        for d in shape:
            n *= d
        nbytes = n // blck * size
        out += _str(name) + struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        out += struct.pack("<IQ", tid, offset)
        sizes.append(nbytes)
        offset += -(-nbytes // 32) * 32
    out += b"\0" * (-len(out) % 32)
    out += b"\0" * offset
    path.write_bytes(bytes(out))


LLAMA_META = {
    "general.architecture": "llama",
    "general.name": "synthetic test model (not a real checkpoint)",
    "general.file_type": 15,
    "llama.block_count": 2,
    "llama.context_length": 8192,
    "llama.embedding_length": 4096,
    "llama.attention.head_count": 32,
    "llama.attention.head_count_kv": 8,
}
TENSORS = [
    ("token_embd.weight", (4096, 1024), "Q6_K"),  # 4096·1024·6.5625/8 = 3,440,640
    ("blk.0.attn_q.weight", (4096, 4096), "Q4_K"),  # 4096·4096·4.5/8 = 9,437,184
    ("blk.0.attn_k.weight", (4096, 1024), "Q8_0"),  # 4096·1024·8.5/8 = 4,456,448
    ("blk.0.ffn_down.weight", (1024, 512), "IQ4_XS"),  # 1024·512·4.25/8 = 278,528
    ("blk.0.ffn_gate_exps.weight", (64, 32, 4), "MXFP4"),  # 8192·17/32 = 4,352
    ("blk.0.attn_norm.weight", (4096,), "F32"),  # 16,384
    ("output.weight", (4096, 32), "F16"),  # 262,144
    ("blk.1.attn_v.weight", (4096, 1024), "BF16"),  # 8,388,608
]
EXPECTED = {
    "Q4_K": 9_437_184,
    "BF16": 8_388_608,
    "Q8_0": 4_456_448,
    "Q6_K": 3_440_640,
    "IQ4_XS": 278_528,
    "F16": 262_144,
    "F32": 16_384,
    "MXFP4": 4_352,
}


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "synthetic.gguf"
    write_gguf(path, LLAMA_META, TENSORS)
    return path


def test_header_and_exact_bytes(model_file: Path) -> None:
    g = gguf.read_file(model_file)
    assert (g.version, g.architecture, g.file_type, len(g.tensors)) == (3, "llama", "Q4_K_M", 8)
    assert g.bytes_by_type() == EXPECTED
    assert g.weight_bytes() == sum(EXPECTED.values())
    assert g.tensors[4].shape == (64, 32, 4) and g.tensors[4].n_elements == 8192
    # the data starts right after the header, aligned to 32 bytes, and holds every tensor
    size = model_file.stat().st_size
    assert g.data_offset % 32 == 0 and size >= g.data_offset + g.weight_bytes()
    assert gguf.summary(g)["weight_bytes"] == 26_284_288


def test_kv_answer_from_the_header_alone(model_file: Path) -> None:
    g = gguf.read_file(model_file)
    mem = L.memory(g, L.Settings(n_ctx=0))  # -c 0: context_length 8192
    (cache,) = mem.caches
    assert (cache.cells, cache.layers) == (8192, 2)
    assert mem.bytes == 2 * 2 * 8192 * 1024 * 2  # 2 layers · K+V · cells · 8·128 · f16


def test_swa_from_metadata(tmp_path: Path) -> None:
    meta = {
        "general.architecture": "gpt-oss",
        "gpt-oss.block_count": 4,
        "gpt-oss.context_length": 131072,
        "gpt-oss.embedding_length": 2880,
        "gpt-oss.attention.head_count": 64,
        "gpt-oss.attention.head_count_kv": 8,
        "gpt-oss.attention.key_length": 64,
        "gpt-oss.attention.value_length": 64,
        "gpt-oss.attention.sliding_window": 128,
    }
    path = tmp_path / "oss.gguf"
    write_gguf(path, meta, [("blk.0.attn_norm.weight", (2880,), "F32")])
    g = L.gguf_geometry(gguf.read_file(path))
    assert [x.swa for x in g.kv_layers] == [True, False, True, False] and g.n_swa == 128


def test_truncated_and_foreign_files(tmp_path: Path, model_file: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(model_file.read_bytes()[:200])
    with pytest.raises(KVCalcError, match="truncated GGUF header"):
        gguf.read_file(cut)
    other = tmp_path / "model.safetensors"
    other.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    with pytest.raises(KVCalcError, match="not a GGUF file"):
        gguf.read_file(other)
    with pytest.raises(KVCalcError, match="cannot read"):
        gguf.read_file(tmp_path / "missing.gguf")


def test_http_range(model_file: Path) -> None:
    """read_url over a local HTTP server that honours Range (as the Hub does), small chunks."""
    import http.server
    import threading
    from functools import partial

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            data = model_file.read_bytes()
            start, end = self.headers["Range"].split("=")[1].split("-")
            body = data[int(start) : int(end) + 1]
            self.send_response(206)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=str(model_file.parent))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        g = gguf.read_url(f"http://127.0.0.1:{server.server_port}/synthetic.gguf", chunk=64)
    finally:
        server.shutdown()
    assert g.bytes_by_type() == EXPECTED


def test_mla_with_nextn_block(tmp_path: Path) -> None:
    """DeepSeek-style MLA GGUF with one NextN block appended: K-only cache of kv_lora_rank + rope for the
    trunk only (llama.cpp filters il < n_layer() = block_count − nextn_predict_layers)."""
    meta = {
        "general.architecture": "deepseek2",
        "deepseek2.block_count": 4,
        "deepseek2.nextn_predict_layers": 1,
        "deepseek2.context_length": 163840,
        "deepseek2.embedding_length": 7168,
        "deepseek2.attention.head_count": 128,
        "deepseek2.attention.head_count_kv": 1,
        "deepseek2.attention.key_length": 576,
        "deepseek2.attention.value_length": 512,
        "deepseek2.attention.key_length_mla": 192,
        "deepseek2.attention.value_length_mla": 128,
    }
    path = tmp_path / "mla.gguf"
    write_gguf(path, meta, [("blk.0.attn_norm.weight", (7168,), "F32")])
    mem = L.memory(gguf.read_file(path), L.Settings(n_ctx=4096, type_k="q8_0", type_v="q8_0"))
    (cache,) = mem.caches
    assert (cache.layers, cache.v_bytes) == (3, 0)
    assert cache.k_bytes == 3 * 4096 * 576 // 32 * 34


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=512), cut=st.integers(min_value=0, max_value=4096))
def test_any_bytes_parse_or_refuse(data: bytes, cut: int) -> None:
    """Random bytes, or a real header cut anywhere: a GGUF or a KVCalcError naming the source or the
    tensor, never a traceback."""
    real = _HEADER.read_bytes()
    for blob in (data, b"GGUF" + data, real[:cut] + data):
        try:
            g = gguf.parse(lambda off, n, b=blob: b[off : off + n], "blob")
        except KVCalcError as exc:
            assert str(exc).startswith("blob: ")
            continue
        try:
            assert g.weight_bytes() >= 0
        except KVCalcError as exc:
            assert any(str(exc).startswith(f"{t.name}: ") for t in g.tensors)


_HEADER = Path(__file__).parent / "data" / "llamacpp_gguf" / "meta-llama--Llama-3.1-8B.gguf"
