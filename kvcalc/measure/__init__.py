"""Real transformers runs (torch and transformers imported lazily): cache bytes measured vs kvcalc."""
