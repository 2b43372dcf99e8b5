"""Greedy decoding on the CPU with and without the KV cache, on a model with random weights.

Backs ``kvcalc measure`` (needs the ``measure`` extra; torch and transformers are imported inside
functions, so importing this module stays stdlib-only). The model is built from a config dict with
transformers' own random initialisation (seeded, no download); ``generate()`` runs greedily for exactly
``new_tokens`` tokens, once with ``use_cache=True`` and once with ``use_cache=False``, and a stopping
criterion timestamps every step. The cache ``generate()`` returns is measured tensor by tensor with
:mod:`kvcalc.measure.run`'s walker (each distinct tensor once, ``numel * element_size``).
"""

from __future__ import annotations

import copy
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kvcalc.errors import KVCalcError
from kvcalc.measure.run import quiet

__all__ = [
    "DecodeRun",
    "LoadedModel",
    "backend",
    "build_model",
    "cache_layers",
    "generate",
    "peak_rss_bytes",
    "warm_up",
]

_TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
SEED = 0


def backend() -> tuple[Any, Any]:
    """(torch, transformers), or KVCalcError naming the extra to install."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise KVCalcError(
            f"kvcalc measure needs torch and transformers ({exc}): pip install kvcalc[measure]"
        ) from None
    return torch, transformers


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (ru_maxrss: KiB on Linux, bytes on macOS)."""
    import resource  # POSIX only: imported here so the module loads anywhere

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


@dataclass
class LoadedModel:
    """A transformers model on the CPU with random weights, ready to generate."""

    model: Any
    vocab_size: int
    params: int
    dtype: str
    attn_implementation: str


def build_model(config: dict, dtype: str, threads: int) -> LoadedModel:
    """Build the causal LM for config on the CPU (seeded random weights; sdpa attention, else eager)."""
    torch, transformers = backend()
    from kvcalc.measure import run as measure

    torch.set_num_threads(threads)
    plan = measure._plan(measure.config_object(config), config.get("architectures"))
    for attn in ("sdpa", "eager"):
        torch.manual_seed(SEED)
        kwargs = {"dtype": getattr(torch, _TORCH_DTYPES[dtype]), "attn_implementation": attn}
        try:
            with quiet(transformers), torch.device("cpu"):
                model = plan.model_class._from_config(copy.deepcopy(plan.config), **kwargs)
            break
        except ValueError as exc:  # "... does not support an attention implementation through sdpa"
            if attn == "eager" or "attention implementation" not in str(exc):
                raise
    model.eval()
    vocab = int(getattr(plan.config, "vocab_size", 0) or model.get_output_embeddings().weight.shape[0])
    params = sum(p.numel() for p in model.parameters())
    return LoadedModel(model, vocab, params, dtype, attn)


@dataclass
class DecodeRun:
    """One greedy generation: wall and CPU seconds, per-step times, tokens and the returned cache."""

    use_cache: bool
    prompt_len: int
    new_tokens: int
    seconds: float
    cpu_seconds: float
    step_seconds: list[float]
    tokens: list[list[int]]
    cache: Any = field(default=None, repr=False)

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per wall-clock second, prefill included."""
        return self.new_tokens / self.seconds

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Tokens per second over the steps after the first (prefill excluded)."""
        rest = sum(self.step_seconds[1:])
        return (len(self.step_seconds) - 1) / rest if rest > 0 else None


def _prompt(loaded: LoadedModel, batch: int, length: int) -> Any:
    torch, _ = backend()
    gen = torch.Generator().manual_seed(SEED + length)
    return torch.randint(0, loaded.vocab_size, (batch, length), generator=gen)


def _criteria(on_step: Callable[[int], None], stamps: list[float]) -> Any:
    """A stopping criterion that never stops: it timestamps each step and reports progress."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Tick(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            stamps.append(time.perf_counter())
            on_step(input_ids.shape[-1])
            return input_ids.new_zeros(input_ids.shape[0], dtype=bool)

    return StoppingCriteriaList([_Tick()])


def generate(
    loaded: LoadedModel,
    prompt_len: int,
    new_tokens: int,
    *,
    use_cache: bool,
    batch_size: int = 1,
    on_step: Callable[[int], None] = lambda n: None,
) -> DecodeRun:
    """Greedy-generate exactly new_tokens tokens after a random prompt of prompt_len tokens."""
    torch, transformers = backend()

    ids = _prompt(loaded, batch_size, prompt_len)
    stamps: list[float] = []
    kwargs = {
        "max_new_tokens": new_tokens,
        "min_new_tokens": new_tokens,
        "do_sample": False,
        "use_cache": use_cache,
        "pad_token_id": 0,
        "return_dict_in_generate": True,
        "stopping_criteria": _criteria(on_step, stamps),
    }
    with quiet(transformers), torch.no_grad():
        cpu0, start = time.process_time(), time.perf_counter()
        out = loaded.model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    steps = [b - a for a, b in zip([start, *stamps], stamps, strict=False)]
    generated = out.sequences[:, prompt_len:].tolist()
    cache = getattr(out, "past_key_values", None) if use_cache else None
    return DecodeRun(use_cache, prompt_len, new_tokens, seconds, cpu, steps, generated, cache)


def warm_up(loaded: LoadedModel, batch_size: int) -> None:
    """One tiny generation each way, so one-time costs don't land in the first timed run."""
    for use_cache in (True, False):
        generate(loaded, 8, 2, use_cache=use_cache, batch_size=batch_size)


def cache_layers(cache: Any) -> tuple[list[Any], int]:
    """(per-layer measurements, total floating-point bytes) of a cache object generate() returned."""
    torch, _ = backend()
    from kvcalc.measure import run as measure

    layers, total, _aux, _extra = measure._summarise_cache(cache, torch)
    return layers, total
