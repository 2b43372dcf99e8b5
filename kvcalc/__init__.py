"""kvcalc: KV-cache and LLM-memory calculator, exact to the byte."""

from kvcalc.core.dtypes import dtype_names, get_dtype
from kvcalc.core.model import Model, load_model
from kvcalc.core.params import count_params, weight_bytes
from kvcalc.deploy.engine_plan import plan  # any engine; vLLM's own planner: kvcalc.deploy.plan.plan
from kvcalc.deploy.plan import recommend
from kvcalc.engines import ENGINES, breakdown, kv_bytes_per_token, kv_cache_bytes, layer_bytes
from kvcalc.errors import KVCalcError

__version__ = "0.1.0"

__all__ = [
    "ENGINES",
    "KVCalcError",
    "Model",
    "__version__",
    "breakdown",
    "count_params",
    "dtype_names",
    "get_dtype",
    "kv_bytes_per_token",
    "kv_cache_bytes",
    "layer_bytes",
    "load_model",
    "plan",
    "recommend",
    "weight_bytes",
]
