"""GPU catalog as data: memory in bytes, bandwidth, FP8 support; lookup by forgiving name.

``memory_bytes`` is the total the runtime reports, which is what vLLM multiplies by
``gpu_memory_utilization`` (``torch.cuda.mem_get_info()[1]``). Where that figure is published
(``memory_source`` starts with "CUDA" / "ROCm": a vLLM start-up log, a torch out-of-memory message or
deviceQuery, named per entry) it is used — printed to 0.01 GiB, so exact to ±0.005 GiB unless the
source gives bytes; otherwise the ``nvidia-smi memory.total`` figure (MiB × 2^20), which is typically
0.4–0.7 GiB more than the CUDA runtime reports. Bandwidths are the vendors' datasheet figures (bytes/s,
decimal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kvcalc.errors import KVCalcError

__all__ = ["GPU", "GPUS", "get_gpu", "gpu_names"]

MIB = 1 << 20
GIB = 1 << 30
TB = 10**12
GB = 10**9


@dataclass(frozen=True)
class GPU:
    """One accelerator model."""

    key: str
    name: str
    memory_bytes: int
    bandwidth: int
    fp8: bool
    vendor: str
    memory_source: str
    aliases: tuple[str, ...] = ()
    unified: bool = False

    @property
    def memory_gib(self) -> float:
        """Memory in GiB (2^30)."""
        return self.memory_bytes / GIB

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields."""
        return {
            "key": self.key,
            "name": self.name,
            "memory_bytes": self.memory_bytes,
            "bandwidth": self.bandwidth,
            "fp8": self.fp8,
            "vendor": self.vendor,
            "memory_source": self.memory_source,
            "unified": self.unified,
        }


_SMI = "nvidia-smi memory.total {} MiB — no CUDA total found in a published log (CUDA reports ~0.5 GiB less)"


def _cuda(gib: float) -> int:
    """A CUDA total printed to 0.01 GiB (torch / vLLM), as bytes: exact to ±0.005 GiB."""
    return round(gib * GIB)


_NVIDIA = (
    GPU("h100", "NVIDIA H100 80GB (SXM)", 85_029_158_912, 3_350 * GB, True, "NVIDIA",
        "CUDA total 79.19 GiB (vLLM 'Free memory on device (78.66/79.19 GiB)', bench/vllm_logs/002; "
        "deviceQuery 85029158912)", ("h100-80gb", "h100-sxm", "h100-sxm5", "h100-80gb-hbm3")),
    GPU("h100-nvl", "NVIDIA H100 NVL 94GB", 95_830 * MIB, 3_900 * GB, True, "NVIDIA", _SMI.format(95_830),
        ("h100-94gb",)),
    GPU("h200", "NVIDIA H200 141GB", _cuda(139.81), 4_800 * GB, True, "NVIDIA",
        "CUDA total 139.81 GiB (vLLM 0.10.2 'Free memory on device (139.21/139.81 GiB)', "
        "bench/vllm_logs/001)",
        ("h200-141gb", "h200-sxm")),
    GPU("b200", "NVIDIA B200 180GB", 183_359 * MIB, 8 * TB, True, "NVIDIA", _SMI.format(183_359),
        ("b200-180gb", "b200-192gb")),
    GPU("b300", "NVIDIA B300 288GB", 275_040 * MIB, 8 * TB, True, "NVIDIA", _SMI.format(275_040),
        ("b300-288gb", "b300-sxm")),
    GPU("a100-80gb", "NVIDIA A100 80GB (SXM)", 85_166_604_288, 2_039 * GB, False, "NVIDIA",
        "CUDA total 79.32 GiB (deviceQuery totalGlobalMem 81221.8125 MiB)", ("a100-sxm4-80gb", "a100-80g")),
    GPU("a100-40gb", "NVIDIA A100 40GB", _cuda(39.39), 1_555 * GB, False, "NVIDIA",
        "CUDA total 39.39 GiB (torch 'GPU 0 has a total capacity of 39.39 GiB' on A100-40GB hosts, e.g. "
        "GCP a2; nvidia-smi 40960 MiB)", ("a100-sxm4-40gb", "a100-40g")),
    GPU("l40s", "NVIDIA L40S 48GB", _cuda(44.42), 864 * GB, True, "NVIDIA",
        "CUDA total 44.42 GiB (torch total of the 46068 MiB cards, L40S and A40: '46,068 MiB reported by "
        "nvidia-smi (44.42 GiB Torch total)'; vLLM's L40S logs print the same)", ("l40s-48gb",)),
    GPU("a40", "NVIDIA A40 48GB", _cuda(44.42), 696 * GB, False, "NVIDIA",
        "CUDA total 44.42 GiB ('VRAM: 46,068 MiB reported by nvidia-smi (44.42 GiB Torch total)')",
        ("a40-48gb",)),
    GPU("l4", "NVIDIA L4 24GB", _cuda(22.17), 300 * GB, True, "NVIDIA",
        "CUDA total 22.17 GiB (torch 'GPU 0 has a total capacity of 22.17 GiB' on an L4; "
        "nvidia-smi 23034 MiB)",
        ("l4-24gb",)),
    GPU("rtx-3090", "NVIDIA GeForce RTX 3090 24GB", _cuda(23.58), 936 * GB, False, "NVIDIA",
        "CUDA total 23.58 GiB (vLLM 'total_gpu_memory=23.58GiB', vllm-project/vllm#10517)",
        ("3090", "rtx3090", "geforce-rtx-3090")),
    GPU("rtx-4090", "NVIDIA GeForce RTX 4090 24GB", _cuda(23.64), 1_008 * GB, True, "NVIDIA",
        "CUDA total 23.64 GiB (torch 'GPU 0 has a total capacity of 23.64 GiB', ali-vilab/VGen#104; "
        "nvidia-smi 24564 MiB; a card driving a display reports less)",
        ("4090", "rtx4090", "geforce-rtx-4090")),
    GPU("rtx-5090", "NVIDIA GeForce RTX 5090 32GB", 32_607 * MIB, 1_792 * GB, True, "NVIDIA",
        _SMI.format(32_607), ("5090", "rtx5090", "geforce-rtx-5090")),
)  # fmt: skip

_AMD = (
    GPU("mi300x", "AMD Instinct MI300X 192GB", 205_822_885_888, 5_300 * GB, True, "AMD",
        "ROCm total (rocm-smi VRAM Total Memory 205822885888 B = torch.cuda.mem_get_info total)",
        ("mi300x-192gb", "instinct-mi300x")),
    GPU("mi325x", "AMD Instinct MI325X 256GB", 256 * GIB, 6 * TB, True, "AMD",
        "nominal 256 GiB HBM3E (runtime total not published here)", ("mi325x-256gb", "instinct-mi325x")),
)  # fmt: skip

#: Apple silicon: chip → (bandwidth bytes/s, unified memory sizes in GiB). macOS lets the GPU wire
#: only part of it (recommendedMaxWorkingSetSize, about 3/4 on large machines) — not applied here.
_APPLE_CHIPS = {
    "M2 Ultra": (800 * GB, (64, 128, 192)),
    "M3 Ultra": (819 * GB, (96, 256, 512)),
    "M4 Pro": (273 * GB, (24, 48, 64)),
    "M4 Max": (546 * GB, (36, 48, 64, 128)),
}


def _apple() -> tuple[GPU, ...]:
    out = []
    for chip, (bandwidth, sizes) in _APPLE_CHIPS.items():
        for size in sizes:
            key = f"apple-{chip.lower().replace(' ', '-')}-{size}gb"
            out.append(
                GPU(
                    key,
                    f"Apple {chip} {size}GB unified",
                    size * GIB,
                    bandwidth,
                    False,
                    "Apple",
                    f"unified memory {size} GiB (shared with the CPU)",
                    (),
                    unified=True,
                )  # fmt: skip
            )
    return tuple(out)


GPUS: tuple[GPU, ...] = _NVIDIA + _AMD + _apple()

_NOISE = ("nvidia", "geforce", "amd", "instinct", "apple")


def _norm(name: str) -> str:
    key = name.lower()
    for word in _NOISE:
        key = key.replace(word, "")
    return re.sub(r"[^a-z0-9]", "", key)


def gpu_names() -> tuple[str, ...]:
    """Catalog keys, in catalog order."""
    return tuple(g.key for g in GPUS)


def get_gpu(name: object) -> GPU:
    """A GPU by key, alias or unambiguous part of its name (``h100``, ``H100-80GB``, ``4090``)."""
    if isinstance(name, GPU):
        return name
    if not isinstance(name, str) or not _norm(name):
        raise KVCalcError(f"gpu: expected a GPU name, got {name!r}; choose one of {', '.join(gpu_names())}")
    want = _norm(name)
    for g in GPUS:
        if want in {_norm(g.key), _norm(g.name), *(_norm(a) for a in g.aliases)}:
            return g
    hits = [g for g in GPUS if any(want in _norm(n) for n in (g.key, g.name, *g.aliases))]
    if len(hits) == 1:
        return hits[0]
    choices = hits or GPUS
    what = "is ambiguous" if hits else "is not in the catalog"
    raise KVCalcError(f"gpu: {name!r} {what}; choose one of {', '.join(g.key for g in choices)}")
