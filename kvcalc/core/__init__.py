"""The core: config.json → layer specs (pure geometry), dtypes, parameters and weights.

Data flows one way: config / Hub id / checkpoint → :class:`~kvcalc.core.model.Model` (layer specs) →
an engine (:mod:`kvcalc.engines`) → bytes → plans (:mod:`kvcalc.deploy`) and charts (:mod:`kvcalc.web`).
Nothing here imports engines, deploy, web or cli code.
"""
