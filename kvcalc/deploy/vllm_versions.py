"""vLLM releases whose start-up memory arithmetic differs, and what each one does.

Each behaviour is tied to the vLLM change that introduced it (docs/vllm_versions.md has the table with
links). A version string from a log (``0.10.2``, ``v0.11.0``, ``0.8.3.dev172+g2b93162f``) maps to the
newest modelled release at or below it.

=================  ==========================================================================  ========
behaviour          rule                                                                        rules
=================  ==========================================================================  ========
engine             V0 prints ``# GPU blocks: N``; V1 prints ``GPU KV cache size: N tokens``     0.8
                   (PR #13596)
tokens line        V1: ``num_blocks // len(groups) * min_block_size`` (``_report_kv_cache_config``);  0.8
                   later ``int(max_concurrency * max_model_len)`` (issue #40691, after 0.19)  0.20
CUDA graphs        captured after the KV cache is sized (not in the budget) until the memory    0.21
                   profiler's estimate became the default ("default since v0.21.0"; PR #30515)
hybrid prefix      0.10 disabled prefix caching for hybrids; on by default after PR #50991      0.28
caching            (2026, ``--mamba-cache-mode align``)
default util.      ``gpu_memory_utilization`` 0.9, later 0.92 (published 0.28.0 logs add up     0.28
                   only at 0.92)
=================  ==========================================================================  ========

docs/vllm_versions.md gives the evidence for each boundary and says which are assumed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kvcalc.errors import KVCalcError

__all__ = ["DEFAULT_VLLM_VERSION", "VLLM_VERSIONS", "VLLMVersion", "get_vllm_version"]


@dataclass(frozen=True)
class VLLMVersion:
    """The start-up behaviours of one modelled vLLM release (see the module table)."""

    name: str
    v1: bool
    tokens_from_concurrency: bool
    cudagraph_in_budget: bool
    hybrid_prefix_caching: bool
    default_gpu_memory_utilization: float

    @property
    def span(self) -> str:
        """The releases these rules cover, e.g. ``0.8–0.19`` (the newest: ``0.28+``)."""
        later = [v for v in VLLM_VERSIONS if v.key > self.key]
        if not later:
            return f"{self.name}+"
        nxt = min(later, key=lambda v: v.key).key
        last = f"{nxt[0]}.{nxt[1] - 1}" if nxt[1] else f"{nxt[0] - 1}.x"
        return self.name if last == self.name else f"{self.name}–{last}"

    @property
    def key(self) -> tuple[int, ...]:
        """Sortable release number."""
        return _key(self.name)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields."""
        return {
            "name": self.name,
            "span": self.span,
            "v1": self.v1,
            "tokens_from_concurrency": self.tokens_from_concurrency,
            "cudagraph_in_budget": self.cudagraph_in_budget,
            "hybrid_prefix_caching": self.hybrid_prefix_caching,
            "default_gpu_memory_utilization": self.default_gpu_memory_utilization,
        }


VLLM_VERSIONS: tuple[VLLMVersion, ...] = (
    VLLMVersion("0.6", False, False, False, False, 0.9),
    VLLMVersion("0.8", True, False, False, False, 0.9),
    VLLMVersion("0.20", True, True, False, False, 0.9),
    VLLMVersion("0.21", True, True, True, False, 0.9),
    VLLMVersion("0.28", True, True, True, True, 0.92),
)
DEFAULT_VLLM_VERSION = VLLM_VERSIONS[-1].name


def _key(text: str) -> tuple[int, ...]:
    m = re.match(r"\s*v?([0-9]+(?:\.[0-9]+)*)", text)
    if not m:
        raise KVCalcError(f"vllm_version: {text!r} is not a vLLM version (e.g. 0.10.2)")
    return tuple(int(x) for x in m.group(1).split("."))


def get_vllm_version(name: object = None) -> VLLMVersion:
    """The modelled release for ``name`` (the newest at or below it); ``None``: the newest modelled."""
    if name is None:
        return VLLM_VERSIONS[-1]
    if isinstance(name, VLLMVersion):
        return name
    if not isinstance(name, str):
        raise KVCalcError(f"vllm_version: expected a version string such as '0.10.2', got {name!r}")
    key = _key(name)
    found = [v for v in VLLM_VERSIONS if v.key <= key]
    if not found:
        oldest = VLLM_VERSIONS[0].name
        raise KVCalcError(f"vllm_version: {name!r} is older than the oldest modelled release ({oldest})")
    return max(found, key=lambda v: v.key)
