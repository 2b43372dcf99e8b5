"""Exact weight bytes from safetensors headers: files written here, served by a local fake Hub.

Every checkpoint here is synthetic (named so): tensor names and storage layouts follow the real formats
(DeepSeek-V3 / Qwen3-FP8 ``weight_scale_inv`` block scales, AutoAWQ / AutoGPTQ ``qweight``, gpt-oss MXFP4
``_blocks``/``_scales``, ModelOpt NVFP4 ``weight``/``weight_scale``/``weight_scale_2``); expected bytes
are elements × bytes per element, summed by hand in each test.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import kvcalc
from kvcalc.core import checkpoint, hub
from kvcalc.errors import KVCalcError
from tests.hubserver import Hub, index_json, nbytes, safetensors_bytes, serve, write_safetensors

Tensors = dict[str, tuple[str, tuple[int, ...]]]

#: A synthetic Llama-shaped FP8 model (not a real one): 2 layers, block-128 FP8 linears, BF16 rest.
SYNTHETIC_FP8_CONFIG = {
    "_name_or_path": "synthetic/tiny-fp8-block",
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 600,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "vocab_size": 1000,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
                            "weight_block_size": [128, 128]},
}  # fmt: skip
LINEARS = {  # name: (out, in)
    "self_attn.q_proj": (256, 256), "self_attn.k_proj": (128, 256), "self_attn.v_proj": (128, 256),
    "self_attn.o_proj": (256, 256), "mlp.gate_proj": (600, 256), "mlp.up_proj": (600, 256),
    "mlp.down_proj": (256, 600),
}  # fmt: skip


def fp8_shards() -> list[Tensors]:
    """Two shards: layer 0 + embeddings, layer 1 + norm + lm_head."""
    shards: list[Tensors] = [{"model.embed_tokens.weight": ("BF16", (1000, 256))}, {}]
    for layer in range(2):
        shard = shards[layer]
        for name, (out, inp) in LINEARS.items():
            shard[f"model.layers.{layer}.{name}.weight"] = ("F8_E4M3", (out, inp))
            blocks = (math.ceil(out / 128), math.ceil(inp / 128))
            shard[f"model.layers.{layer}.{name}.weight_scale_inv"] = ("F32", blocks)
        shard[f"model.layers.{layer}.input_layernorm.weight"] = ("BF16", (256,))
        shard[f"model.layers.{layer}.post_attention_layernorm.weight"] = ("BF16", (256,))
    shards[1]["model.norm.weight"] = ("BF16", (256,))
    shards[1]["lm_head.weight"] = ("BF16", (1000, 256))
    return shards


SHARD_NAMES = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]


def by_hand(shards: list[Tensors]) -> tuple[int, int, int]:
    """(total bytes, parameters, scale bytes) summed from the shapes."""
    every = {k: v for s in shards for k, v in s.items()}
    total = sum(nbytes(d, s) for d, s in every.values())
    scales = sum(nbytes(d, s) for k, (d, s) in every.items() if k.endswith("_scale_inv"))
    params = sum(math.prod(s) for k, (d, s) in every.items() if not k.endswith("_scale_inv"))
    return total, params, scales


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    return tmp_path


FP8_ID = "synthetic/tiny-fp8-block"


@pytest.fixture
def fp8_hub(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    """The synthetic FP8 checkpoint on the fake Hub; shards behind LFS-style redirects."""
    shards = fp8_shards()
    files = {name: safetensors_bytes(s) for name, s in zip(SHARD_NAMES, shards, strict=True)}
    weight_map = {t: name for name, s in zip(SHARD_NAMES, shards, strict=True) for t in s}
    files["model.safetensors.index.json"] = index_json(weight_map, by_hand(shards)[0])
    files["config.json"] = json.dumps(SYNTHETIC_FP8_CONFIG).encode()
    state = Hub()
    state.add(FP8_ID, files, lfs=set(SHARD_NAMES))
    with serve(state) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        yield state


def test_sharded_fp8_over_range_requests(fp8_hub: Hub) -> None:
    ck = checkpoint.from_hub(FP8_ID, SYNTHETIC_FP8_CONFIG)
    total, params, scales = by_hand(fp8_shards())
    assert (ck.total_bytes, ck.parameters, ck.scale_bytes) == (total, params, scales)
    assert (total, params, scales) == (2_341_712, 1_828_096, 336)  # the hand sums above, spelled out
    assert ck.files == tuple(SHARD_NAMES)
    assert ck.bytes_by_dtype == {"BF16": 1_026_560, "F32": 336, "F8_E4M3": 1_314_816}
    assert ck.params_by_dtype == {"BF16": 513_280, "F8_E4M3": 1_314_816}
    shard_requests = [(p, r) for p, r, _ in fp8_hub.requests if p.startswith("/cdn/")]  # after the 302
    assert len(shard_requests) == 2
    assert all(r is not None and r.startswith("bytes=") for _, r in shard_requests)
    served = sum(int(r.split("-")[1]) - int(r[6:].split("-")[0]) + 1 for _, r in shard_requests)
    assert served < 2 * (checkpoint.FIRST_READ + 1)  # headers only, never the 2.3 MB of data


def test_fp8_checkpoint_agrees_with_the_config_count(fp8_hub: Hub) -> None:
    """The header's parameters are count_params' count, and its bytes weight_bytes' fp8_block bytes."""
    ck = checkpoint.from_hub(FP8_ID, SYNTHETIC_FP8_CONFIG)
    model = kvcalc.load_model(SYNTHETIC_FP8_CONFIG)
    assert ck.parameters == kvcalc.count_params(model).total
    assert ck.total_bytes == kvcalc.weight_bytes(model).total


def test_index_is_cached_headers_are_not(fp8_hub: Hub, env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoint.from_hub(FP8_ID)
    assert hub.cached_file(FP8_ID, "model.safetensors.index.json") is not None
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(KVCalcError, match="HF_HUB_OFFLINE is set and model-00001-of-00002.safetensors"):
        checkpoint.from_hub(FP8_ID)


def test_local_folder_matches_the_hub(fp8_hub: Hub, tmp_path: Path) -> None:
    folder = tmp_path / "tiny-fp8"
    folder.mkdir()
    shards = fp8_shards()
    for name, tensors in zip(SHARD_NAMES, shards, strict=True):
        write_safetensors(folder / name, tensors)
    weight_map = {t: name for name, s in zip(SHARD_NAMES, shards, strict=True) for t in s}
    (folder / "model.safetensors.index.json").write_bytes(index_json(weight_map, 0))
    local = checkpoint.load_checkpoint(folder)
    remote = checkpoint.load_checkpoint(FP8_ID)
    assert local.as_dict() | {"source": ""} == remote.as_dict() | {"source": ""}
    assert local.source == f"local folder {folder}" and remote.source == f"Hugging Face {FP8_ID}"


def test_single_file_without_an_index(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tensors: Tensors = {"model.embed_tokens.weight": ("BF16", (1000, 256)),
                        "lm_head.weight": ("F32", (1000, 256))}  # fmt: skip
    state = Hub()
    state.add("synthetic/single-file", {"model.safetensors": safetensors_bytes(tensors)})
    with serve(state) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        ck = checkpoint.from_hub("synthetic/single-file")
    assert (ck.files, ck.total_bytes, ck.parameters) == (("model.safetensors",), 1_536_000, 512_000)


def test_no_safetensors_on_the_hub(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = Hub()
    state.add("synthetic/no-weights", {"config.json": b"{}"})
    with serve(state) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        with pytest.raises(KVCalcError, match="no model.safetensors.index.json and no model.safetensors"):
            checkpoint.from_hub("synthetic/no-weights")


# ------------------------------------------------------------------------------------------------
# quantized layouts (local folders, single files)


def write_folder(tmp_path: Path, tensors: Tensors, config: dict | None = None) -> Path:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    write_safetensors(folder / "model.safetensors", tensors)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))
    return folder


#: One 256 × 256 linear (out × in) per layout, 4-bit, group 128.
AWQ: Tensors = {  # AutoAWQ GEMM: qweight [in, out·bits/32], qzeros [in/g, out·bits/32], scales [in/g, out]
    "model.layers.0.self_attn.q_proj.qweight": ("I32", (256, 32)),
    "model.layers.0.self_attn.q_proj.qzeros": ("I32", (2, 32)),
    "model.layers.0.self_attn.q_proj.scales": ("F16", (2, 256)),
    "model.norm.weight": ("F16", (256,)),
}
#: AutoGPTQ: qweight [in·bits/32, out], qzeros [in/g, out·bits/32], scales [in/g, out], g_idx [in]
GPTQ: Tensors = {
    "model.layers.0.self_attn.q_proj.qweight": ("I32", (32, 256)),
    "model.layers.0.self_attn.q_proj.qzeros": ("I32", (2, 32)),
    "model.layers.0.self_attn.q_proj.scales": ("F16", (2, 256)),
    "model.layers.0.self_attn.q_proj.g_idx": ("I32", (256,)),
    "model.norm.weight": ("F16", (256,)),
}
MXFP4: Tensors = {  # gpt-oss: blocks [experts, out, in/32, 16 bytes], scales [experts, out, in/32] (e8m0)
    "model.layers.0.mlp.experts.gate_up_proj_blocks": ("U8", (4, 512, 8, 16)),
    "model.layers.0.mlp.experts.gate_up_proj_scales": ("U8", (4, 512, 8)),
    "model.layers.0.mlp.experts.gate_up_proj_bias": ("BF16", (4, 512)),
    "model.layers.0.mlp.router.weight": ("BF16", (4, 256)),
}
#: ModelOpt NVFP4: weight U8 [out, in/2], weight_scale F8 [out, in/16], weight_scale_2 / input_scale F32
NVFP4: Tensors = {
    "model.layers.0.mlp.down_proj.weight": ("U8", (256, 128)),
    "model.layers.0.mlp.down_proj.weight_scale": ("F8_E4M3", (256, 16)),
    "model.layers.0.mlp.down_proj.weight_scale_2": ("F32", ()),
    "model.layers.0.mlp.down_proj.input_scale": ("F32", ()),
    "model.norm.weight": ("BF16", (256,)),
}


@pytest.mark.parametrize(
    ("tensors", "quant", "total", "params", "scale_bytes", "packed"),
    [
        # 256·32·4 + 2·32·4 + 2·256·2 + 256·2 bytes; 256·32 int32 × 8 nibbles + 256 norm parameters
        (AWQ, {"quant_method": "awq", "bits": 4, "group_size": 128}, 34_560, 65_792, 1_280, 65_536),
        (AWQ, None, 34_560, 65_792, 1_280, 65_536),  # bits read off qweight vs scales
        # + g_idx 256·4 bytes
        (GPTQ, {"quant_method": "gptq", "bits": 4, "group_size": 128}, 35_584, 65_792, 2_304, 65_536),
        (GPTQ, None, 35_584, 65_792, 2_304, 65_536),  # bits read off qweight vs g_idx
        # 4·512·8·16 blocks × 2 values + bias 4·512 + router 4·256; scales 4·512·8 bytes
        (MXFP4, {"quant_method": "mxfp4"}, 284_672, 527_360, 16_384, 524_288),
        # 256·128 bytes × 2 values + 256 norm; scales 256·16 + 4 + 4 bytes
        (NVFP4, {"quant_method": "modelopt", "quant_algo": "NVFP4"}, 37_384, 65_792, 4_104, 65_536),
    ],
)
def test_quantized_layouts(tmp_path: Path, tensors: Tensors, quant: dict | None, total: int, params: int,
                           scale_bytes: int, packed: int) -> None:  # fmt: skip
    config = {"quantization_config": quant} if quant else None
    ck = checkpoint.from_folder(write_folder(tmp_path, tensors), config)
    got = (ck.total_bytes, ck.parameters, ck.scale_bytes, ck.packed_params)
    assert got == (total, params, scale_bytes, packed)
    assert ck.total_bytes == sum(nbytes(d, s) for d, s in tensors.values())


def test_bits_that_contradict_the_shapes(tmp_path: Path) -> None:
    folder = write_folder(tmp_path, AWQ)
    with pytest.raises(KVCalcError, match=r"quantization_config.bits: 8, but .*qweight \[256, 32\] packs 4"):
        checkpoint.from_folder(folder, {"quantization_config": {"quant_method": "awq", "bits": 8}})


def test_header_that_lies_about_its_size(tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    header = json.dumps({"w": {"dtype": "BF16", "shape": [4, 4], "data_offsets": [0, 30]}}).encode()
    (folder / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(30))
    with pytest.raises(KVCalcError, match=r"tensor 'w': 30 bytes for BF16 \[4, 4\]"):
        checkpoint.from_folder(folder)
    (folder / "model.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(KVCalcError, match="is not that of a safetensors file"):
        checkpoint.from_folder(folder)


def test_large_header_takes_a_second_read(tmp_path: Path) -> None:
    names = [f"model.layers.{i}.mlp.w{j}.weight" for i in range(300) for j in range(4)]
    tensors: Tensors = {name: ("BF16", (8, 8)) for name in names}
    ck = checkpoint.from_folder(write_folder(tmp_path, tensors))
    assert ck.header_bytes > checkpoint.FIRST_READ
    assert (ck.total_bytes, ck.parameters) == (1200 * 128, 1200 * 64)


# ------------------------------------------------------------------------------------------------
# the callers: kvcalc plan, compat.calculate_memory

#: vLLM pads the vocabulary to 64 rows: 1000 → 1024 rows of embeddings and lm_head, 256 wide, BF16.
VOCAB_PADDING_BYTES = 2 * 24 * 256 * 2


@pytest.fixture
def fp8_folder(tmp_path: Path) -> Path:
    """The synthetic FP8 checkpoint as a local folder (config.json, index, two sparse shards)."""
    folder = tmp_path / "tiny-fp8-block"
    folder.mkdir()
    shards = fp8_shards()
    for name, tensors in zip(SHARD_NAMES, shards, strict=True):
        write_safetensors(folder / name, tensors)
    weight_map = {t: name for name, s in zip(SHARD_NAMES, shards, strict=True) for t in s}
    (folder / "model.safetensors.index.json").write_bytes(index_json(weight_map, 0))
    (folder / "config.json").write_text(json.dumps(SYNTHETIC_FP8_CONFIG))
    return folder


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    from kvcalc.cli.main import main

    assert main(["plan", *args, "--gpu", "h100", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_plan_reads_a_local_checkpoint(fp8_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = plan_json(capsys, str(fp8_folder))
    assert out["weights_source"] == f"checkpoint: local folder {fp8_folder} (2 safetensors headers)"
    assert out["weights_bytes"] == 2_341_712 + VOCAB_PADDING_BYTES
    off = plan_json(capsys, str(fp8_folder), "--checkpoint", "none")
    assert off["weights_source"] == "config: count_params × fp8_block"
    assert off["weights_bytes"] == out["weights_bytes"]  # the config's count agrees with the headers


def test_plan_reads_a_hub_checkpoint(fp8_hub: Hub, capsys: pytest.CaptureFixture[str]) -> None:
    out = plan_json(capsys, FP8_ID)
    assert out["weights_source"] == f"checkpoint: Hugging Face {FP8_ID} (2 safetensors headers)"
    assert out["weights_bytes"] == 2_341_712 + VOCAB_PADDING_BYTES


def test_plan_without_a_reachable_checkpoint_says_so(env: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    state = Hub()
    state.add("synthetic/config-only", {"config.json": json.dumps(SYNTHETIC_FP8_CONFIG).encode()})
    with serve(state) as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        out = plan_json(capsys, "synthetic/config-only")
    assert out["weights_source"] == "config: count_params × fp8_block"
    assert any("checkpoint not read" in n and "model.safetensors" in n for n in out["notes"])


def test_calculate_memory_uses_the_checkpoint(fp8_folder: Path) -> None:
    from kvcalc import compat

    fp8 = compat.calculate_memory(str(fp8_folder), precision="fp8")
    assert fp8.weight_memory_bytes == 2_341_712
    assert any("bytes from the safetensors headers of local folder" in n for n in fp8.notes)
    bf16 = compat.calculate_memory(str(fp8_folder), precision="bf16")  # another format: the config's count
    assert bf16.weight_memory_bytes == 2 * 1_828_096
    assert any(n == "weights: count_params × bf16 (config.json)" for n in bf16.notes)
    none = compat.calculate_memory(str(fp8_folder), precision="fp8", checkpoint=None)
    assert any("(config.json)" in n for n in none.notes)


def test_offline_reads_shards_transformers_downloaded(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1 and the shards in the Hub cache (huggingface_hub's layout, written here by hand as
    from_pretrained leaves it): the headers are read from the cached files, no server at all."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = env / "hub-cache" / "models--synthetic--tiny-fp8-block"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    shards = fp8_shards()
    for i, (name, tensors) in enumerate(zip(SHARD_NAMES, shards, strict=True)):
        blob = repo / "blobs" / f"{i:064x}"
        write_safetensors(blob, tensors)
        (snapshot / name).symlink_to(f"../../blobs/{blob.name}")
    weight_map = {t: name for name, s in zip(SHARD_NAMES, shards, strict=True) for t in s}
    (repo / "blobs" / "index").write_bytes(index_json(weight_map, 0))
    (snapshot / "model.safetensors.index.json").symlink_to("../../blobs/index")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # never asked
    ck = checkpoint.load_checkpoint(FP8_ID)
    assert (ck.total_bytes, ck.parameters, ck.scale_bytes) == (2_341_712, 1_828_096, 336)


def test_recommend_reads_the_checkpoint(fp8_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kvcalc.cli.main import main

    assert main(["recommend", str(fp8_folder), "--gpus", "h100", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["weights_source"].startswith("checkpoint: local folder")
    assert row["weights_bytes"] == 2_341_712 + VOCAB_PADDING_BYTES


@pytest.mark.parametrize("shard", ["../outside.safetensors", "/etc/passwd", "a/../../b.safetensors", 7])
def test_index_with_bad_shard_names(tmp_path: Path, shard: object) -> None:
    folder = tmp_path / "bad-index"
    folder.mkdir()
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": shard}}))
    with pytest.raises(KVCalcError, match="weight_map holds bad file names"):
        checkpoint.from_folder(folder)


_PLAIN = ["BF16", "F16", "F32", "F8_E4M3", "I64"]


@given(
    st.lists(
        st.tuples(st.sampled_from(_PLAIN), st.lists(st.integers(0, 40), min_size=0, max_size=3)),
        min_size=1,
        max_size=12,
    ),
    st.integers(1, 3),
)
@settings(max_examples=40, deadline=None)
def test_plain_tensors_property(tmp_path_factory: pytest.TempPathFactory, specs: list, n_shards: int) -> None:
    """Any plain tensors split over any shards: bytes = Σ elements × width, parameters = Σ elements."""
    folder = tmp_path_factory.mktemp("prop")
    tensors = {f"model.t{i}.weight": (d, tuple(shape)) for i, (d, shape) in enumerate(specs)}
    names = sorted(tensors)
    shards = [names[i::n_shards] for i in range(n_shards)]
    weight_map = {}
    for k, part in enumerate(s for s in shards if s):
        file = f"model-{k:05d}.safetensors"
        write_safetensors(folder / file, {n: tensors[n] for n in part})
        weight_map |= dict.fromkeys(part, file)
    (folder / "model.safetensors.index.json").write_bytes(index_json(weight_map, 0))
    ck = checkpoint.from_folder(folder)
    assert ck.total_bytes == sum(nbytes(d, s) for d, s in tensors.values())
    assert ck.parameters == sum(math.prod(s) for _, s in tensors.values())
    assert ck.scale_bytes == ck.packed_params == 0
