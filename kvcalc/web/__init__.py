"""The browser's only door into kvcalc: JSON in, JSON out, never a traceback.

Requests (``op``):

- ``version`` → ``{version}``
- ``catalog`` → dtypes, engines, GPUs, display labels and the modelled vLLM releases (``vllm_versions``,
  newest last: a select for plans and explain) the page's controls offer
- ``load`` with ``models: [{id, name?, config | config_text}]`` → facts per model, plus ``errors``;
  with ``taken`` (the names already on the page) each model is named for the page by
  :func:`kvcalc.web.names.custom_name` (typed name, the config's own, or "Custom N (architecture)"),
  unique among ``taken`` and each other
- ``compare`` with ``models`` (as for ``load``; an ``id`` alone reuses the parsed model) and
  ``seq_len, batch_size, kv_dtypes, engine, tensor_parallel_size, gpu`` → per-model numbers, chart
  lines (unless ``lines: false``), insights, and ``errors`` for the models that failed (the others
  still come back). With ``engines: [...]`` and one model: that model under each engine side by side
  (:func:`kvcalc.web.engines.side_by_side`: each engine's numbers, error and launch line).
- ``explain`` with ``log`` (a vLLM start-up log's text) and optionally ``gpu`` and ``model`` (an item as
  in ``models``, used as the log's config) or ``models`` (candidates matched to the log's model id; loaded
  ids are reused) → :meth:`kvcalc.deploy.explain.Explanation.as_dict`: each printed memory number
  "exact", "within range", "differs" (with the likeliest cause) or "unchecked".
- ``local`` (llama.cpp on a GPU + RAM or a Mac: quant, ``-c``, ``-np``, ``-ctk/-ctv``) → the ``-ngl`` that
  fits and where each byte goes (:mod:`kvcalc.web.local`); ``local_catalog`` → what its controls offer.

Parsed models are cached by id, so a control change does not re-parse every config.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import kvcalc
from kvcalc.core import params
from kvcalc.core.facts import facts
from kvcalc.core.fields import check_int
from kvcalc.core.model import fixed_encoder_len, is_encoder_decoder, load_model, parse_json
from kvcalc.core.units import fmt_gib
from kvcalc.deploy import hardware
from kvcalc.deploy.plan import DEFAULT_GPU_MEMORY_UTILIZATION, Budget
from kvcalc.deploy.plan import budget as plan_budget
from kvcalc.deploy.plan import fits as plan_fits
from kvcalc.deploy.vllm_versions import VLLM_VERSIONS
from kvcalc.engines import ENGINES, make_request
from kvcalc.engines.base import check_query_heads_split
from kvcalc.errors import KVCalcError
from kvcalc.web.engines import engine_seq_len, side_by_side
from kvcalc.web.insights import insights
from kvcalc.web.local import local, local_catalog
from kvcalc.web.names import custom_name
from kvcalc.web.series import KIND_LABELS, MAX_CONTEXT, Engine, Prepared, max_context

MAX_MODELS = 64
MAX_CACHED = 256
MAX_NAME = 200
MAX_DTYPES = 6
MAX_BATCH = 65536
MAX_TP = 1024
#: The page's first view (build.py answers it at build time, so the page draws before Python loads).
DEFAULT_REQUEST: dict[str, Any] = {
    "op": "compare",
    "seq_len": 131072,
    "batch_size": 1,
    "kv_dtypes": ["bf16", "fp8"],
    "engine": "ideal",
    "tensor_parallel_size": 1,
    "gpu": hardware.DEFAULT_GPU,
}

_cache: dict[str, tuple[Mapping[str, Any], Prepared]] = {}
#: What sizing a config's weights or vLLM budget raises when kvcalc cannot count it (no fit shown).
_PLAN_ERRORS = (KVCalcError, ArithmeticError, LookupError, TypeError, ValueError)


@dataclass(frozen=True)
class Settings:
    """A validated compare request (everything but the models)."""

    seq_len: int
    batch_size: int
    kv_dtypes: tuple[str, ...]
    engine: str
    tensor_parallel_size: int
    gpu: str | None


def _text(value: Any, field: str, limit: int = MAX_NAME) -> str:
    if not isinstance(value, str) or not value.strip():
        raise KVCalcError(f"{field}: expected a non-empty string")
    return value.strip()[:limit]


def _settings(req: Mapping[str, Any]) -> tuple[Settings, list[str]]:
    """Validate the request's controls; dtypes the engine cannot use are dropped with a notice."""
    notices: list[str] = []
    engine = req.get("engine", "ideal")
    if engine not in ENGINES:
        raise KVCalcError(f"engine: unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    dtypes = req.get("kv_dtypes", ["bf16"])
    if not isinstance(dtypes, list) or not dtypes or len(dtypes) > MAX_DTYPES:
        raise KVCalcError(f"kv_dtypes: expected a list of 1 to {MAX_DTYPES} dtype names")
    names = list(dict.fromkeys(kvcalc.get_dtype(d, "kv_dtypes").name for d in dtypes))
    tp = check_int(req.get("tensor_parallel_size", 1), "tensor_parallel_size", maximum=MAX_TP)
    if engine == "transformers":
        kept = [d for d in names if d in hardware.MODEL_DTYPES]
        if len(kept) < len(names):
            dropped = ", ".join(d for d in names if d not in kept)
            notices.append(f"The transformers engine caches in the model dtype: {dropped} not shown.")
        names = kept or ["bf16"]
    if engine in ONE_DEVICE and tp != 1:
        notices.append(f"{ONE_DEVICE[engine]}: tensor parallel set to 1.")
        tp = 1
    gpu = req.get("gpu")
    if gpu is not None and hardware.gpu(gpu) is None:
        raise KVCalcError(f"gpu: unknown GPU {gpu!r}")
    return (
        Settings(
            seq_len=check_int(req.get("seq_len", 131072), "seq_len", maximum=MAX_CONTEXT),
            batch_size=check_int(req.get("batch_size", 1), "batch_size", maximum=MAX_BATCH),
            kv_dtypes=tuple(names),
            engine=engine,
            tensor_parallel_size=tp,
            gpu=gpu,
        ),
        notices,
    )


def _prepared(item: Any, index: int) -> tuple[str, Prepared]:
    """Parse (or reuse) one model of the request; KVCalcError names what is wrong."""
    if not isinstance(item, Mapping):
        raise KVCalcError(f"models[{index}]: expected an object with id and config")
    model_id = _text(item.get("id"), f"models[{index}].id")
    name = item.get("name")
    name = None if name is None else _text(name, "name")
    if "config_text" in item:
        text = item["config_text"]
        if not isinstance(text, str):
            raise KVCalcError("config: expected the text of a config.json")
        config: Any = parse_json(text)
    else:
        config = item.get("config")
    cached = _cache.get(model_id)
    if config is None:
        if cached is None:
            raise KVCalcError(f"id: model {model_id!r} is not loaded; send its config")
        return model_id, cached[1]
    if not isinstance(config, Mapping):
        raise KVCalcError(f"config: expected a JSON object, got {type(config).__name__}")
    if cached is not None and cached[0] == config and (name is None or cached[1].model.name == name):
        return model_id, cached[1]
    prep = Prepared(load_model(config, name=name))
    if len(_cache) >= MAX_CACHED:
        _cache.clear()
    _cache[model_id] = (config, prep)
    return model_id, prep


def _models(req: Mapping[str, Any]) -> tuple[list[tuple[str, Prepared]], list[dict[str, str]]]:
    """Every model of the request that parses, and an error entry for each one that does not."""
    items = req.get("models", [])
    if not isinstance(items, list):
        raise KVCalcError("models: expected a list")
    if len(items) > MAX_MODELS:
        raise KVCalcError(f"models: at most {MAX_MODELS} models at once, got {len(items)}")
    good: list[tuple[str, Prepared]] = []
    errors: list[dict[str, str]] = []
    for i, item in enumerate(items):
        try:
            good.append(_prepared(item, i))
        except Exception as exc:  # one bad model never blanks the others
            errors.append(_model_error(item, i, exc))
    return good, errors


def _model_error(item: Any, index: int, exc: Exception) -> dict[str, str]:
    ident = item.get("id") if isinstance(item, Mapping) else None
    name = item.get("name") if isinstance(item, Mapping) else None
    ident = ident if isinstance(ident, str) else f"models[{index}]"
    return {
        "id": ident[:MAX_NAME],
        "name": (name if isinstance(name, str) and name else ident)[:MAX_NAME],
        "error": _message(exc),
    }


def _message(exc: BaseException) -> str:
    if isinstance(exc, KVCalcError):
        return str(exc)
    return f"internal error ({type(exc).__name__}): {exc}"


def describe(model_id: str, prep: Prepared) -> dict[str, Any]:
    """Facts about one model that do not depend on the controls (a fresh dict each call)."""
    return dict(_memo(prep, ("describe", model_id), lambda: _describe(model_id, prep)))


def _describe(model_id: str, prep: Prepared) -> dict[str, Any]:
    m = prep.model
    return {
        "id": model_id,
        "name": m.name,
        "model_type": m.model_type,
        **asdict(facts(m)),
        "kinds": m.kinds(),
        "max_context": max_context(m),
        "verified": m.verified,
        "notes": list(m.notes),
        "params": hardware.param_counts(m, _counted(prep)),
        # encoder-decoder models: the encoder positions the cross-attention caches (fixed, e.g. Whisper
        # 1500, or "seq_len": as many as the input tokens); None for decoder-only models
        "encoder_seq_len": (fixed_encoder_len(m) or "seq_len") if is_encoder_decoder(m) else None,
    }


def _memo(prep: Prepared, key: object, make: Any) -> Any:
    if key not in prep.memo:
        prep.memo[key] = make()
    return prep.memo[key]


def _counted(prep: Prepared) -> params.ParamCount | None:
    """The model's parameter count (None: uncountable), counted once per parsed model."""
    return _memo(prep, "param_count", lambda: hardware.count(prep.model))  # type: ignore[no-any-return]


def _numbers(
    model_id: str, prep: Prepared, s: Settings, gpu: dict[str, Any] | None, want_lines: bool = True
) -> dict[str, Any]:
    """Everything the charts and table show for one model under the chosen controls (``lines`` only
    when wanted: the page keeps them, as they depend on neither the context nor the GPU)."""
    eng = Engine(engine=s.engine, tensor_parallel_size=s.tensor_parallel_size)
    tp, b, L = s.tensor_parallel_size, s.batch_size, s.seq_len
    row = describe(model_id, prep)
    counted = _counted(prep)

    def on_rank(n: int) -> dict[str, Any] | None:
        """Weights on one of n ranks; none for an uncountable config (counting again would fail)."""
        if counted is None:
            return None
        return _memo(prep, ("weights", n), lambda: hardware.weight_bytes(prep.model, n, counted))  # type: ignore[no-any-return]

    weights, rank = on_rank(1), on_rank(tp)
    per_gpu = None if rank is None else rank["bytes"]
    # b sequences of L tokens each (llama.cpp: -c b·L -np b, its -c counting every slot)
    parts = {d: prep.by_kind(engine_seq_len(s.engine, L, b), b, d, eng) for d in s.kv_dtypes}
    cache = {d: sum(p.values()) for d, p in parts.items()}
    total = {d: None if per_gpu is None else per_gpu + c for d, c in cache.items()}
    room = None if gpu is None else _room(prep, s, gpu, per_gpu)
    row.update(
        beyond_max=row["max_context"] < L,
        token_bytes={d: prep.token_bytes(d, tp) for d in s.kv_dtypes},
        long_token_bytes={d: prep.long_token_bytes(d, tp) for d in s.kv_dtypes},
        cache=cache,
        breakdown=parts,
        weights=None if weights is None else weights["bytes"],
        weights_format=None if weights is None else weights["description"] or weights["format"],
        weights_per_gpu=per_gpu,
        total=total,
        room=room,
        fits={d: _fits(prep, s, room, d, cache[d]) for d in s.kv_dtypes},
    )
    if want_lines:
        row["lines"] = {d: prep.line(d, eng).scaled(b) for d in s.kv_dtypes}
    else:  # the insights read x and y only (removed before the answer goes out)
        row["lines"] = {
            d: {"x": (ln := prep.line(d, eng)).x, "y": [v * b for v in ln.y]} for d in s.kv_dtypes
        }
    return row


#: Engines kvcalc models on one device, and why (the page then answers tensor parallel 1).
ONE_DEVICE = {
    "transformers": "The transformers engine runs on one device",
    "llama.cpp": "llama.cpp splits layers across GPUs, not heads; kvcalc models one device",
}
#: How the engine select names each engine of the registry (an engine not listed shows its own name).
ENGINE_LABELS = {
    "ideal": "Ideal (theory)",
    "vllm": "vLLM (paged blocks)",
    "transformers": "transformers (DynamicCache)",
    "sglang": "SGLang",
    "trtllm": "TensorRT-LLM",
    "llama.cpp": "llama.cpp",
}
#: What "room for KV" means per engine (vLLM: kvcalc.plan's own arithmetic; the others reserve nothing
#: kvcalc models, so the room is the GPU's memory less the weights on it).
ROOM_RULES = {
    "vllm": (
        "vLLM: gpu_memory_utilization {util} × {gpu} − weights − activation peak − non-torch memory − "
        "CUDA graphs (the estimates of `kvcalc plan`, max_num_batched_tokens 8192)"
    ),
    "ideal": "ideal: {gpu} − weights on the GPU (no engine reserve, no activations)",
    "transformers": "transformers: {gpu} − weights (activations and the CUDA context not counted)",
}
DEFAULT_ROOM_RULE = "{engine}: {gpu} − weights on the GPU (this engine's reserve is not modelled here)"


def room_rule(engine: str, gpu: Mapping[str, Any]) -> str:
    """One sentence: how the page computes the room for the KV cache under ``engine`` on ``gpu``."""
    rule = ROOM_RULES.get(engine, DEFAULT_ROOM_RULE)
    util = DEFAULT_GPU_MEMORY_UTILIZATION
    return rule.format(engine=engine, gpu=f"{gpu['name']} ({fmt_gib(gpu['bytes'])})", util=util)


def _room(prep: Prepared, s: Settings, gpu: Mapping[str, Any], per_gpu: int | None) -> dict[str, Any] | None:
    """Bytes left for the KV cache on one GPU after the weights (and, under vLLM, its own reserve):
    vLLM through :func:`kvcalc.plan.budget`, the others GPU memory − weights. None: uncountable."""
    counted = _counted(prep)
    if counted is None or per_gpu is None:
        return None
    if s.engine != "vllm":
        return {"bytes": gpu["bytes"] - per_gpu, "weights": per_gpu}

    try:
        b = _budget(prep, s)
    except _PLAN_ERRORS:
        return None
    overhead = b.buffers + b.activation + b.non_torch + b.cudagraph
    return {"bytes": b.kv, "weights": b.weights, "requested": b.requested, "overhead": overhead}


def _budget(prep: Prepared, s: Settings) -> Budget:
    """vLLM's budget for this model on the chosen GPU and TP (memoised: it depends on nothing else)."""
    key = ("budget", s.gpu, s.tensor_parallel_size)
    return _memo(
        prep,
        key,
        lambda: plan_budget(  # type: ignore[no-any-return]
            prep.model, gpu=s.gpu, tensor_parallel_size=s.tensor_parallel_size, params=_counted(prep)
        ),
    )


def _fits(prep: Prepared, s: Settings, room: Mapping[str, Any] | None, d: str, cache: int) -> bool | None:
    """Does batch × context fit the room? vLLM: :func:`kvcalc.plan.fits` (its blocks and concurrency,
    as `kvcalc plan`); the others: cache ≤ room."""
    if room is None:
        return None
    if s.engine != "vllm":
        return cache <= room["bytes"]
    key = ("fits", s.gpu, s.tensor_parallel_size, s.seq_len, s.batch_size, d)

    def make() -> bool:
        kw = {"max_model_len": s.seq_len, "batch_size": s.batch_size, "kv_dtype": d}
        tp = s.tensor_parallel_size
        return plan_fits(prep.model, _budget(prep, s), gpu=s.gpu, tensor_parallel_size=tp, **kw)

    try:
        return bool(_memo(prep, key, make))
    except _PLAN_ERRORS:
        return None


def _check_shards(prep: Prepared, s: Settings) -> None:
    """vLLM (and an even ideal split) shard the attention heads: tp must divide num_attention_heads
    (vllm/model_executor/layers/linear.py QKVParallelLinear: divide(total_num_heads, tp_size))."""
    if s.engine in ("vllm", "ideal"):
        who = "vLLM refuses it" if s.engine == "vllm" else "vLLM and an even split refuse it"
        check_query_heads_split(prep.model, s.tensor_parallel_size, who)


def _coinciding(rows: list[dict[str, Any]], preps: Mapping[str, Prepared], s: Settings) -> None:
    """row["same_as"][dtype] = names of the other models whose line is the same as this one's at every
    point either draws (so one hides the other on the chart)."""
    eng = Engine(engine=s.engine, tensor_parallel_size=s.tensor_parallel_size)
    for row in rows:
        row["same_as"] = {d: [] for d in s.kv_dtypes}
    for d in s.kv_dtypes:
        for i, a in enumerate(rows):
            for b in rows[i + 1 :]:
                key = (a["token_bytes"][d], a["long_token_bytes"][d])
                if key != (b["token_bytes"][d], b["long_token_bytes"][d]):
                    continue
                if _same_line(preps[a["id"]], preps[b["id"]], d, eng):
                    a["same_as"][d].append(b["name"])
                    b["same_as"][d].append(a["name"])


def _same_line(p: Prepared, q: Prepared, d: str, eng: Engine) -> bool:
    """Equal cache bytes at every context either line draws, up to the shorter line's end."""
    key = ("same", id(q.model), d, eng)

    def make() -> bool:
        lp, lq = p.line(d, eng), q.line(d, eng)
        end = min(lp.x[-1], lq.x[-1])
        xs = sorted({x for x in lp.x + lq.x if x <= end})
        # a line's own points are already computed (its y are the totals there): only the other
        # line's points cost a computation, done the way a line's are (Prepared.totals)
        at_p, at_q = dict(zip(lp.x, lp.y, strict=True)), dict(zip(lq.x, lq.y, strict=True))
        at_p |= p.totals([x for x in xs if x not in at_p], d, eng)
        at_q |= q.totals([x for x in xs if x not in at_q], d, eng)
        return all(at_p[x] == at_q[x] for x in xs)

    return bool(_memo(p, key, make))


def _engine_dtypes(s: Settings, good: list[tuple[str, Prepared]], notices: list[str]) -> Settings:
    """Cache dtypes the engine refuses outright (e.g. llama.cpp has no fp8 cache) are dropped with a
    notice, not turned into an error for every model: each is asked of the engine on the first model."""
    if not good:
        return s
    model = good[0][1].model
    kept, refused = [], []
    for d in s.kv_dtypes:
        try:
            make_request(model, 1, kv_dtype=d, engine=s.engine)
        except KVCalcError as exc:
            if str(exc).startswith("kv_dtype:"):
                refused.append(str(exc))
                continue
        kept.append(d)
    if not refused or not kept:
        return s  # nothing refused, or everything: the per-model errors say why
    notices.append(f"Not shown: {'; '.join(refused)}")
    return replace(s, kv_dtypes=tuple(kept))


def _compare(req: Mapping[str, Any]) -> dict[str, Any]:
    s, notices = _settings(req)
    want_lines = req.get("lines", True)
    if not isinstance(want_lines, bool):
        raise KVCalcError(f"lines: expected true or false, got {want_lines!r}")
    good, errors = _models(req)
    s = _engine_dtypes(s, good, notices)
    gpu = hardware.gpu(s.gpu) if s.gpu else None
    rows = []
    for model_id, prep in good:
        try:
            _check_shards(prep, s)
            rows.append(_numbers(model_id, prep, s, gpu, want_lines))
        except Exception as exc:  # e.g. a tensor-parallel size that does not divide this model's heads
            refused = isinstance(exc, KVCalcError) and str(exc).startswith("tensor_parallel_size:")
            error = {"id": model_id, "name": prep.model.name, "error": _message(exc), "refused": refused}
            errors.append(error)
    _coinciding(rows, dict(good), s)
    found = insights(rows, s.kv_dtypes, s.seq_len, s.batch_size, gpu, s.tensor_parallel_size, s.engine)
    if not want_lines:  # the page already holds them (they depend on neither context nor GPU)
        for row in rows:
            del row["lines"]
    return {
        "settings": asdict(s),
        "gpu": gpu,
        "room_rule": None if gpu is None else room_rule(s.engine, gpu),
        "models": rows,
        "insights": found,
        "errors": errors,
        "notices": notices,
    }


MAX_TAKEN = 4096


def _load(req: Mapping[str, Any]) -> dict[str, Any]:
    taken = req.get("taken")
    good, errors = _models(req) if taken is None else _named_models(req, _taken(taken))
    return {"models": [describe(i, p) for i, p in good], "errors": errors}


def _unnamed(item: Any) -> Any:
    return {k: v for k, v in item.items() if k != "name"} if isinstance(item, Mapping) else item


def _taken(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_TAKEN or not all(isinstance(v, str) for v in value):
        raise KVCalcError(f"taken: expected a list of at most {MAX_TAKEN:,} model names")
    return list(value)


def _named_models(
    req: Mapping[str, Any], taken: list[str]
) -> tuple[list[tuple[str, Prepared]], list[dict[str, str]]]:
    """:func:`_models`, each model then named for the page (:func:`kvcalc.web.names.custom_name`):
    the typed name, else the config's own, else "Custom N (architecture)", unique among ``taken``."""
    items = req.get("models", [])
    if not isinstance(items, list):
        raise KVCalcError("models: expected a list")
    typed = {i["id"]: i.get("name") for i in items if isinstance(i, Mapping) and isinstance(i.get("id"), str)}
    good, errors = _models({"models": [_unnamed(i) for i in items]})
    for error in errors:  # a model that failed keeps the name it was given
        if isinstance(typed.get(error["id"]), str) and typed[error["id"]].strip():
            error["name"] = typed[error["id"]].strip()[:MAX_NAME]
    named = []
    for index, (model_id, prep) in enumerate(good):
        config, want = _cache[model_id][0], typed.get(model_id)
        name = custom_name(config, prep.model, None if want is None else _text(want, "name"), taken)
        taken.append(name)
        named.append(_prepared({"id": model_id, "name": name, "config": config}, index))
    return named, errors


def catalog() -> dict[str, Any]:
    """What the controls offer: cache dtypes, engines, GPUs, labels, the default request."""
    return {
        "dtypes": list(kvcalc.dtype_names()),
        "engines": list(ENGINES),
        "engine_labels": {e: ENGINE_LABELS.get(e, e) for e in ENGINES},
        "gpus": hardware.gpus(),
        "kind_labels": KIND_LABELS,
        "max_context": MAX_CONTEXT,
        "default_request": DEFAULT_REQUEST,
        "vllm_versions": [v.as_dict() for v in VLLM_VERSIONS],
    }


MAX_LOG_CHARS = 4 * 1024 * 1024


def _explain(req: Mapping[str, Any]) -> dict[str, Any]:
    from kvcalc.deploy.explain import explain

    log = req.get("log")
    if not isinstance(log, str):
        raise KVCalcError("log: expected the text of a vLLM start-up log")
    if len(log) > MAX_LOG_CHARS:
        raise KVCalcError(f"log: {len(log):,} characters is too long (limit {MAX_LOG_CHARS:,})")
    gpu = req.get("gpu")
    if gpu is not None and not isinstance(gpu, str):
        raise KVCalcError("gpu: expected a GPU name")
    forced = _prepared(req["model"], 0)[1].model if req.get("model") is not None else None
    good, errors = _models(req)
    known = {i: p.model for i, p in good} | {i: c[1].model for i, c in _cache.items()}

    def resolve(name: str) -> Any:
        key = name.lower().rstrip("/")
        for ident, model in known.items():
            if key in (ident.lower(), ident.lower().split("/")[-1]):
                return replace(model, name=ident)
        raise KVCalcError(f"model: {name!r} is not loaded")

    result = explain(log, model=forced, gpu=gpu, resolve=resolve)
    return {**result.as_dict(), "text": result.text(), "errors": errors}


def _model_of(model_id: str) -> Any:
    """The parsed model of a loaded id (None when not loaded)."""
    cached = _cache.get(model_id)
    return None if cached is None else cached[1].model


def _handle(req: dict[str, Any]) -> dict[str, Any]:
    op = req.get("op")
    if op == "version":
        return {"version": kvcalc.__version__}
    if op == "catalog":
        return catalog()
    if op == "load":
        return _load(req)
    if op == "compare":
        if req.get("engines") is not None:
            return side_by_side(req, _compare, _settings, _model_of)
        return _compare(req)
    if op == "explain":
        return _explain(req)
    if op == "local":
        return local(req, _prepared)
    if op == "local_catalog":
        return local_catalog()
    raise KVCalcError(f"op: unknown operation {op!r}")


def compute(request_json: str) -> str:
    """Answer one JSON request; errors come back as {"ok": false, "error": ...}, never a traceback."""
    try:
        req = json.loads(request_json)
        if not isinstance(req, dict):
            raise KVCalcError("request: must be a JSON object")
        return json.dumps({"ok": True, **_handle(req)}, separators=(",", ":"))
    except json.JSONDecodeError as exc:
        return json.dumps({"ok": False, "error": f"request: not valid JSON ({exc})"})
    except RecursionError:
        return json.dumps({"ok": False, "error": "request: nested too deeply"})
    except Exception as exc:  # the door never lets a traceback through
        return json.dumps({"ok": False, "error": _message(exc)})
