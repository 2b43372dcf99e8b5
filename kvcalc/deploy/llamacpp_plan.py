"""Will it fit on my machine? llama.cpp layer offload (``-ngl``) for a GPU + system RAM or a Mac.

Exact parts: the KV cache and recurrent state (kvcalc.engines.llamacpp, llama.cpp 0c1e57098), and the
weights when a GGUF header is given (kvcalc.core.gguf). Estimates, said so in the result: weights of a
quantization from the config alone (parameters × the bits per weight llama.cpp's ``quantize`` tool
lists for that type, measured on Llama-3-8B: the per-tensor mix varies by model), and the compute
buffer, for which the plan keeps llama.cpp's own ``--fit`` margin (``-fitt``, 1024 MiB per device,
common/common.h ``fit_params_target``) free on every device.

Placement follows llama.cpp (src/llama-model.cpp ``load_tensors``): ``-ngl N`` puts the output layer and
the last N − 1 repeating layers on the GPU(s) ("offloading output layer to GPU", "offloading N − 1
repeating layers"); the input embeddings stay on the CPU;
each layer's KV cache lives with the layer (``offload_kqv``). ``--n-cpu-moe N`` keeps the expert tensors
of the first N layers in RAM (common/arg.cpp, ``LLM_FFN_EXPS_REGEX``). Several GPUs split the offloaded
layers (``--split-mode layer``) in proportion to their memory.

Apple Silicon: the GPU may use ``recommendedMaxWorkingSetSize`` of the unified memory, which macOS sets
to about 2/3 of RAM on 16–32 GB Macs and 3/4 on 64 GB and larger (llama.cpp logs: 10922.67 MB on 16 GB,
21845.34 MB on 32 GB, 49152.00 MiB on 64 GB; llama.cpp #1870, ollama #434); ``sudo sysctl
iogpu.wired_limit_mb=…`` raises it (``--wired-limit-mb``).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

from kvcalc.core.gguf import GGUF
from kvcalc.core.model import Model
from kvcalc.core.params import count_params
from kvcalc.deploy.gpus import GPU, get_gpu
from kvcalc.engines import llamacpp as L
from kvcalc.errors import KVCalcError

GIB = 1 << 30
MIB = 1 << 20
FIT_MARGIN = 1024 * MIB  # llama.cpp --fit-target default per device

#: Bits per weight of llama.cpp quantization types (tools/quantize/quantize.cpp QUANT_OPTIONS): file
#: size on Llama-3-8B (8.03 B parameters, GiB) → bits, or the bpw it states.
_LLAMA3_8B = 8_030_261_248
_SIZES_GIB = {
    "Q4_0": 4.34,
    "Q4_1": 4.78,
    "Q5_0": 5.21,
    "Q5_1": 5.65,
    "Q2_K": 2.96,
    "Q2_K_S": 2.96,
    "Q3_K_S": 3.41,
    "Q3_K_M": 3.74,
    "Q3_K_L": 4.03,
    "Q4_K_S": 4.37,
    "Q4_K_M": 4.58,
    "Q5_K_S": 5.21,
    "Q5_K_M": 5.33,
    "Q6_K": 6.14,
    "Q8_0": 7.96,
}
BPW: dict[str, float] = {k: v * GIB * 8 / _LLAMA3_8B for k, v in _SIZES_GIB.items()}
BPW |= {"IQ2_XXS": 2.06, "IQ2_XS": 2.31, "IQ2_S": 2.5, "IQ2_M": 2.7, "IQ1_S": 1.56, "IQ1_M": 1.75,
        "IQ3_XXS": 3.06, "IQ3_S": 3.44, "IQ3_M": 3.66, "IQ3_XS": 3.3, "IQ4_NL": 4.5, "IQ4_XS": 4.25,
        "F16": 16.0, "BF16": 16.0, "F32": 32.0}  # fmt: skip
_ALIASES = {"Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M", "Q3_K": "Q3_K_M"}

_APPLE = {  # chip: unified memory sizes (GB) sold
    "M1 Pro": (16, 32), "M1 Max": (32, 64), "M1 Ultra": (64, 128), "M2 Pro": (16, 32), "M2 Max": (32, 64, 96),
    "M2 Ultra": (64, 128, 192), "M3 Pro": (18, 36), "M3 Max": (36, 48, 64, 96, 128),
    "M3 Ultra": (96, 256, 512),
    "M4 Pro": (24, 48, 64), "M4 Max": (36, 48, 64, 128),
}  # fmt: skip


@dataclass(frozen=True)
class Machine:
    """Where llama.cpp runs: GPUs (memory each) + system RAM, or one unified-memory Mac."""

    name: str
    gpu_bytes: tuple[int, ...]
    ram_bytes: int
    unified: bool = False
    note: str = ""


def working_set(ram_gb: int) -> int:
    """macOS's default GPU working-set limit for a Mac with ``ram_gb`` GB (see module docstring)."""
    ram = ram_gb * GIB
    return ram * 3 // 4 if ram_gb >= 64 else ram * 2 // 3


def get_machine(name: str, *, wired_limit_mb: int | None = None) -> Machine:
    """``m3-max-64gb``, ``apple-m4-max-128gb``: a Mac by chip and memory size."""
    key = str(name).strip().lower().removeprefix("apple-").replace("_", "-").replace(" ", "-")
    for chip, sizes in _APPLE.items():
        for size in sizes:
            if key == f"{chip.lower().replace(' ', '-')}-{size}gb":
                limit = wired_limit_mb * MIB if wired_limit_mb else working_set(size)
                how = "iogpu.wired_limit_mb" if wired_limit_mb else "macOS default working set"
                return Machine(f"Apple {chip} {size}GB", (limit,), size * GIB, True, f"GPU may use {how}")
    known = ", ".join(f"{c.lower().replace(' ', '-')}-{s}gb" for c, ss in _APPLE.items() for s in ss[:1])
    raise KVCalcError(f"machine: {name!r} is not a known Mac (e.g. {known}, …)")


def gpu_machine(
    gpu: str | GPU | None, count: int = 1, ram_gb: int = 64, vram_gib: float | None = None
) -> Machine:
    """``count`` GPUs from the catalog (or of ``vram_gib`` GiB each) plus ``ram_gb`` GB of system RAM."""
    if count < 1:
        raise KVCalcError("num_gpus: need at least one GPU")
    if vram_gib is not None:
        if vram_gib <= 0:
            raise KVCalcError("vram_gib: must be positive")
        name, size = f"{vram_gib:g} GiB GPU", int(vram_gib * GIB)
    else:
        g = get_gpu(gpu)
        name, size = g.name, g.memory_bytes
    return Machine(f"{count}× {name} + {ram_gb} GB RAM", (size,) * count, ram_gb * GIB)


# ------------------------------------------------------------------------- weights per layer


@dataclass(frozen=True)
class Weights:
    """Bytes of the input embeddings, each repeating layer (its experts apart) and the output."""

    embeddings: int
    layers: tuple[int, ...]
    experts: tuple[int, ...]
    output: int
    exact: bool
    source: str


def weights_from_config(model: Model, quant: str) -> Weights:
    """Estimate: parameters × bits per weight of ``quant`` (same rate for every tensor)."""
    q = _ALIASES.get(quant.strip().upper(), quant.strip().upper())
    if q not in BPW:
        raise KVCalcError(f"quant: unknown llama.cpp type {quant!r} (known: {', '.join(BPW)})")
    pc = count_params(model)
    n = len(model.layers)
    per = lambda params: int(params * BPW[q] / 8)  # noqa: E731
    expert_params = pc.experts
    body = pc.total - pc.embeddings - pc.lm_head - expert_params
    output = pc.lm_head if pc.lm_head else pc.embeddings  # tied: llama.cpp duplicates it as output
    return Weights(
        embeddings=per(pc.embeddings),
        layers=tuple([per(body // n)] * n),
        experts=tuple([per(expert_params // n)] * n),
        output=per(output),
        exact=False,
        source=f"estimate: {pc.total:,} parameters × {BPW[q]:.2f} bits ({q} on Llama-3-8B, quantize.cpp)",
    )


def weights_from_gguf(g: GGUF) -> Weights:
    """Exact: every tensor's bytes, by its ``blk.N.`` prefix (``token_embd`` / ``output`` apart)."""
    n = int(g.get("block_count", 0) or 0)
    layers, experts = [0] * n, [0] * n
    emb = out = 0
    for t in g.tensors:
        if t.name.startswith("blk."):
            il = int(t.name.split(".")[1])
            if il < n:
                if "_exps" in t.name:
                    experts[il] += t.nbytes
                else:
                    layers[il] += t.nbytes
                continue
        if t.name.startswith("token_embd"):
            emb += t.nbytes
        else:
            out += t.nbytes
    if not any(x.name == "output.weight" for x in g.tensors):
        out += emb  # tied embeddings: llama.cpp duplicates token_embd as the output layer
    return Weights(emb, tuple(layers), tuple(experts), out, True, f"exact: GGUF {g.file_type or ''} header")


# ------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    machine: Machine
    n_gpu_layers: int
    n_layer: int
    n_cpu_moe: int
    gpu_bytes: tuple[int, ...]
    cpu_bytes: int
    kv_gpu: int
    kv_cpu: int
    weights_gpu: int
    weights_cpu: int
    fits: bool
    notes: tuple[str, ...]
    memory: L.Memory

    def as_dict(self) -> dict[str, Any]:
        return {
            "machine": self.machine.name,
            "n_gpu_layers": self.n_gpu_layers,
            "n_layer": self.n_layer,
            "offloaded": f"{self.n_gpu_layers}/{self.n_layer + 1} layers to GPU",
            "n_cpu_moe": self.n_cpu_moe,
            "gpu_bytes": list(self.gpu_bytes),
            "gpu_budget_bytes": [b - FIT_MARGIN for b in self.machine.gpu_bytes],
            "cpu_bytes": self.cpu_bytes,
            "weights_gpu_bytes": self.weights_gpu,
            "weights_cpu_bytes": self.weights_cpu,
            "kv_gpu_bytes": self.kv_gpu,
            "kv_cpu_bytes": self.kv_cpu,
            "kv_bytes": self.memory.bytes,
            "fits": self.fits,
            "all_on_gpu": self.n_gpu_layers > self.n_layer,
            "notes": list(self.notes),
            "kv_log": self.memory.log(),
        }


def device_of_layers(n_layer: int, ngl: int, device_bytes: tuple[int, ...]) -> list[int | None]:
    """llama.cpp's ``load_tensors`` placement: index ``il`` in 0..n_layer (n_layer = the output layer)
    → device number, or None for the CPU.

    ``i_gpu_start = n_layer + 1 − ngl``: the output layer is the first to go to a GPU, then the last
    ``ngl − 1`` repeating layers; a layer's device is the first whose cumulative memory share exceeds
    ``(il − i_gpu_start) / ngl`` (``--split-mode layer``, split by device memory).
    """
    ngl = max(0, min(ngl, n_layer + 1))
    start = n_layer + 1 - ngl
    total = sum(device_bytes) or 1
    cum, acc = [], 0
    for b in device_bytes:
        acc += b
        cum.append(acc / total)
    out: list[int | None] = []
    for il in range(n_layer + 1):
        if il < start or ngl == 0:
            out.append(None)
        else:
            out.append(min(bisect.bisect_right(cum, (il - start) / ngl), len(device_bytes) - 1))
    return out


def _place(w: Weights, kv_layers: list[int], m: Machine, ngl: int, n_cpu_moe: int) -> tuple[list[int], int]:
    """Bytes per GPU and on the CPU for ``-ngl ngl`` (input embeddings always on the CPU)."""
    n = len(w.layers)
    dev = device_of_layers(n, ngl, m.gpu_bytes)
    gpu = [0] * len(m.gpu_bytes)
    cpu = w.embeddings
    for il in range(n):
        layer = w.layers[il] + kv_layers[il]
        exps = w.experts[il]
        d = dev[il]
        if d is None:
            cpu += layer + exps
        elif il < n_cpu_moe:
            gpu[d] += layer
            cpu += exps
        else:
            gpu[d] += layer + exps
    if dev[n] is None:
        cpu += w.output
    else:
        gpu[dev[n]] += w.output
    return gpu, cpu


def plan(
    model: Model | None,
    machine: Machine,
    settings: L.Settings,
    *,
    quant: str | None = None,
    gguf: GGUF | None = None,
    n_gpu_layers: int | None = None,
    n_cpu_moe: int | str = 0,
) -> Plan:
    """The largest ``-ngl`` that fits every GPU's budget (or the given one), and where bytes go.

    ``n_cpu_moe="auto"``: the fewest leading layers whose experts must stay in RAM for every layer to
    go to the GPU (what llama.cpp's ``--fit`` tries for MoE models), or all of them if even that fails.
    """
    if gguf is not None:
        w, mem = weights_from_gguf(gguf), L.memory(gguf, settings)
    elif quant is None or model is None:
        raise KVCalcError("quant: give --quant (e.g. Q4_K_M) with a config, or a GGUF file")
    else:
        w, mem = weights_from_config(model, str(quant)), L.memory(model, settings)
    n = len(w.layers)
    if len(mem.layer_bytes()) != n:
        raise KVCalcError("model: the GGUF's block_count does not match the model's layers")
    kv_layers = mem.layer_bytes()
    budgets = [b - FIT_MARGIN for b in machine.gpu_bytes]

    def fits(ngl: int, moe: int) -> bool:
        gpu, _ = _place(w, kv_layers, machine, ngl, moe)
        return all(g <= b for g, b in zip(gpu, budgets, strict=True))

    if n_cpu_moe == "auto":
        if not any(w.experts):
            raise KVCalcError("n_cpu_moe: the model has no experts to keep in RAM")
        want = n + 1 if n_gpu_layers is None else n_gpu_layers
        n_cpu_moe = next((k for k in range(n + 1) if fits(want, k)), n)
    if not isinstance(n_cpu_moe, int) or not 0 <= n_cpu_moe <= n:
        raise KVCalcError(f"n_cpu_moe: must be 'auto' or between 0 and {n}")
    moe_n = n_cpu_moe

    def fits_here(ngl: int) -> bool:
        return fits(ngl, moe_n)

    best = max((k for k in range(n + 2) if fits_here(k)), default=0) if n_gpu_layers is None else 0
    ngl = best if n_gpu_layers is None else n_gpu_layers
    gpu, cpu = _place(w, kv_layers, machine, ngl, n_cpu_moe)
    dev = device_of_layers(n, ngl, machine.gpu_bytes)
    kv_gpu = sum(kv for kv, d in zip(kv_layers, dev, strict=False) if d is not None)
    notes = [
        w.source,
        f"each GPU keeps llama.cpp's --fit margin free ({FIT_MARGIN // MIB} MiB) for the compute buffer",
    ]
    ok = all(g <= b for g, b in zip(gpu, budgets, strict=True))
    if machine.unified:
        notes.append(machine.note)
        ok = ok and cpu + sum(gpu) <= machine.ram_bytes  # one memory for both
    else:
        ok = ok and cpu <= machine.ram_bytes
    if ngl <= n:
        notes.append(f"{n + 1 - ngl} of {n + 1} layers run on the CPU (slow)")
    notes += list(mem.notes)
    weights_gpu = sum(gpu) - kv_gpu
    return Plan(machine, ngl, n, n_cpu_moe, tuple(gpu), cpu, kv_gpu, mem.bytes - kv_gpu, weights_gpu,
                cpu - (mem.bytes - kv_gpu), ok, tuple(notes), mem)  # fmt: skip
