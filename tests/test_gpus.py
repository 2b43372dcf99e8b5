"""GPU catalog: data integrity and forgiving lookup."""

from __future__ import annotations

import pytest

from kvcalc import KVCalcError
from kvcalc.deploy.gpus import GIB, GPUS, get_gpu, gpu_names

MIB = 1 << 20


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("h100", "h100"),
        ("H100-80GB", "h100"),
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("h200", "h200"),
        ("B200", "b200"),
        ("a100-80gb", "a100-80gb"),
        ("A100 40GB", "a100-40gb"),
        ("l40s", "l40s"),
        ("L4", "l4"),
        ("4090", "rtx-4090"),
        ("RTX 5090", "rtx-5090"),
        ("mi300x", "mi300x"),
        ("AMD Instinct MI325X", "mi325x"),
        ("m4 max 128gb", "apple-m4-max-128gb"),
    ],
)
def test_lookup(name: str, key: str) -> None:
    assert get_gpu(name).key == key


def test_ambiguous_and_unknown_list_choices() -> None:
    with pytest.raises(KVCalcError, match=r"gpu: 'a100' is ambiguous; choose one of a100-80gb, a100-40gb"):
        get_gpu("a100")
    with pytest.raises(KVCalcError, match=r"gpu: 'x100' is not in the catalog; choose one of h100, "):
        get_gpu("x100")
    with pytest.raises(KVCalcError, match="gpu: expected a GPU name"):
        get_gpu(80)


def test_documented_memory_bytes() -> None:
    assert get_gpu("h100").memory_bytes == 85_029_158_912  # CUDA total: vLLM logs 79.19 GiB
    assert get_gpu("a100-80gb").memory_bytes == 85_166_604_288  # deviceQuery 81221.8125 MiB
    assert get_gpu("h200").memory_bytes == round(139.81 * GIB)  # vLLM log (was nvidia-smi 143,771 MiB)
    assert get_gpu("rtx-4090").memory_bytes == round(23.64 * GIB)  # torch total (was nvidia-smi 24,564 MiB)
    assert get_gpu("l40s").memory_bytes == get_gpu("a40").memory_bytes == round(44.42 * GIB)
    assert get_gpu("rtx 3090").memory_bytes == round(23.58 * GIB)  # vLLM total_gpu_memory=23.58GiB
    assert get_gpu("mi300x").memory_bytes == 205_822_885_888  # rocm-smi / torch total
    assert get_gpu("apple-m3-ultra-512gb").memory_bytes == 512 * GIB


def test_catalog_is_consistent() -> None:
    keys = gpu_names()
    assert len(keys) == len(set(keys))
    for g in GPUS:
        assert g.memory_bytes > 8 * GIB and g.bandwidth > 10**11 and g.memory_source
        assert get_gpu(g.key) is g
        for alias in g.aliases:
            assert get_gpu(alias) is g
    assert not get_gpu("a100-80gb").fp8 and get_gpu("h100").fp8 and get_gpu("rtx-4090").fp8
    required = {"h100", "h200", "b200", "a100-40gb", "a100-80gb", "l40s", "l4", "rtx-4090", "rtx-5090",
                "mi300x", "mi325x"}  # fmt: skip
    assert required <= set(keys)
    assert any(g.unified for g in GPUS)
