"""kvcalc: KV-cache and LLM-memory calculator, exact to the byte."""

from kvcalc.dtypes import dtype_names, get_dtype
from kvcalc.errors import KVCalcError
from kvcalc.memory import ENGINES, breakdown, kv_bytes_per_token, kv_cache_bytes, layer_bytes
from kvcalc.model import Model, load_model
from kvcalc.params import count_params, weight_bytes
from kvcalc.plan import plan, recommend  # kvcalc.plan is the function; use `from kvcalc.plan import …`

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
