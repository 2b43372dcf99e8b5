"""kvcalc: KV-cache and LLM-memory calculator, exact to the byte."""

from kvcalc.errors import KVCalcError

__version__ = "0.1.0"

__all__ = ["KVCalcError", "__version__"]
