"""Whole deployments: GPUs and machines as data, plans (does it fit, how many requests), recommendations."""
