"""Whole deployments: GPUs and machines as data, plans (does it fit, how many requests), recommendations.

vLLM: :mod:`~kvcalc.deploy.plan` (the budget and what it holds), :mod:`~kvcalc.deploy.vllm_kv` (groups,
blocks and the numbers vLLM prints), :mod:`~kvcalc.deploy.vllm_versions` (which release does what),
:mod:`~kvcalc.deploy.vllm_log` (reading a start-up log) and :mod:`~kvcalc.deploy.explain` (re-deriving it).
"""
