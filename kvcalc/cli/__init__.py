"""Command-line front ends: ``kvcalc`` (:mod:`kvcalc.cli.main`), ``kvcalc measure``
(:mod:`kvcalc.cli.measure`) and what they share (:mod:`kvcalc.cli.common`)."""
