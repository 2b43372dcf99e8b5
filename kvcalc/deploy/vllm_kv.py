"""vLLM's KV-cache groups, blocks and the two numbers it prints from them.

vLLM (``v1/core/kv_cache_utils.py``) puts layers whose caches differ into groups of equal size
(``_get_kv_cache_groups_uniform_page_size``); one block holds one page of every layer of a group, so
``bytes_per_block = group_size · page_bytes`` and ``num_blocks = available // bytes_per_block``. Then

* ``Maximum concurrency`` = num_blocks / Σ_groups cdiv(group per-request bytes, page)
  (``get_max_concurrency_for_kv_cache_config``);
* ``GPU KV cache size`` = ``num_blocks // len(groups) · block_size`` up to v0.19, then
  ``int(max_concurrency · max_model_len)`` (``_report_kv_cache_config``; vLLM issue #40691);
* V0 printed ``# GPU blocks: N`` and concurrency ``N · block_size / max_model_len``.

Pipeline parallelism (``get_pp_indices``) splits the layers in stages of ``L // pp`` layers, the
remainder going one each to the stages before the last; each stage sizes its own blocks from its own
memory and vLLM keeps the smallest count. Speculative decoding adds draft layers that hold KV like
the target's (an EAGLE head is one more decoder layer; DeepSeek MTP adds ``num_nextn_predict_layers``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from kvcalc.core.model import Model
from kvcalc.deploy.vllm_versions import VLLMVersion
from kvcalc.engines import VLLMPage, vllm_layer_pages
from kvcalc.errors import KVCalcError

__all__ = ["KVLayout", "kv_layout", "num_blocks", "pp_stage_layers", "report", "stage_layouts"]

#: vLLM groups layers of different cache types in groups of equal size (kv_cache_utils).
GROUP_SIZE_SLACK = 1.25


@dataclass(frozen=True)
class KVLayout:
    """vLLM's grouping of one pipeline stage's caches, and what one request of max_model_len needs."""

    page_bytes: int
    group_size: int
    num_groups: int
    blocks_per_request: int
    block_size: int
    per_request_bytes: int
    layers: int

    @property
    def bytes_per_block(self) -> int:
        """One block: a page in each layer of a group."""
        return self.page_bytes * self.group_size


def pp_stage_layers(num_layers: int, pp: int) -> list[int]:
    """Layers per pipeline stage (vLLM ``get_pp_indices``): the remainder goes to the stages before
    the last, one each, counting back from the second-to-last."""
    if pp < 1 or pp > num_layers:
        raise KVCalcError(f"pipeline_parallel_size: {pp} must be between 1 and the {num_layers} layers")
    parts = [num_layers // pp] * pp
    for i in range(2, num_layers % pp + 2):
        parts[-i] += 1
    return parts


def _group(pages: Sequence[tuple[VLLMPage, ...]]) -> tuple[int, int, int, int, int] | None:
    """(page, group size, number of groups, blocks per request, block size) for these layers."""
    by_type: dict[tuple[str, int, int], int] = {}
    for layer in pages:
        for x in layer:
            key = (x.kind, x.page_bytes, x.pages)
            by_type[key] = by_type.get(key, 0) + 1
    if not by_type:
        return None
    counts = by_type.values()
    lo, hi = min(counts), max(counts)
    size = hi if hi < lo * GROUP_SIZE_SLACK else lo
    page = max(k[1] for k in by_type)
    groups = sum(math.ceil(n / size) for n in by_type.values())
    per_request = sum(math.ceil(n / size) * math.ceil(k[2] * k[1] / page) for k, n in by_type.items())
    block = next(x.block_size for layer in pages for x in layer)
    return page, size, groups, per_request, block


def stage_layouts(
    model: Model,
    max_model_len: int,
    *,
    kv_dtype: str = "auto",
    tensor_parallel_size: int = 1,
    pipeline_parallel_size: int = 1,
    block_size: int = 16,
    max_num_batched_tokens: int = 8192,
    enable_prefix_caching: bool = True,
    draft_layers: int = 0,
) -> list[KVLayout | None]:
    """One layout per pipeline stage (``None`` for a stage without KV). ``draft_layers``: speculative-
    decoding layers that hold KV like the last attention layer of the target (on the last stage)."""
    kv = model.dtype if isinstance(kv_dtype, str) and kv_dtype.strip().lower() == "auto" else kv_dtype
    pages = vllm_layer_pages(
        model,
        max_model_len,
        kv_dtype=kv,
        tensor_parallel_size=tensor_parallel_size,
        block_size=block_size,
        max_num_batched_tokens=max_num_batched_tokens,
        enable_prefix_caching=enable_prefix_caching,
    )
    stages = pp_stage_layers(len(pages), pipeline_parallel_size)
    if draft_layers:
        last = next((x for x in reversed(pages) if x), None)
        if last is None:
            raise KVCalcError("speculative_config: the target model has no KV cache for draft layers to copy")
        pages = [*pages, *([last] * draft_layers)]
        stages[-1] += draft_layers
    out: list[KVLayout | None] = []
    start = 0
    for n in stages:
        part = pages[start : start + n]
        start += n
        g = _group(part)
        if g is None:
            out.append(None)
            continue
        page, size, groups, per_request, block = g
        per_request_bytes = sum(x.page_bytes * x.pages for layer in part for x in layer)
        out.append(KVLayout(page, size, groups, per_request, block, per_request_bytes, n))
    return out


def kv_layout(model: Model, max_model_len: int, **kw: object) -> KVLayout | None:
    """The layout of the pipeline stage with the largest block (the most layers); ``None`` when the model
    keeps no KV cache. Arguments as :func:`stage_layouts`."""
    layouts = [x for x in stage_layouts(model, max_model_len, **kw) if x is not None]  # type: ignore[arg-type]
    return max(layouts, key=lambda x: x.bytes_per_block) if layouts else None


def num_blocks(available_bytes: int, layout: KVLayout) -> int:
    """``available // bytes_per_block`` (never negative)."""
    return max(0, available_bytes) // layout.bytes_per_block


def report(layout: KVLayout, blocks: int, max_model_len: int, version: VLLMVersion) -> tuple[int, float]:
    """(tokens, concurrency) as the start-up log prints them for ``blocks`` blocks (module doc)."""
    if not version.v1:
        return blocks * layout.block_size, blocks * layout.block_size / max_model_len
    concurrency = blocks / layout.blocks_per_request
    if version.tokens_from_concurrency:
        return int(concurrency * max_model_len), concurrency
    return blocks // layout.num_groups * layout.block_size, concurrency
