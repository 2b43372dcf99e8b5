"""Developer tooling for kvcalc (environment set-up shared by build.py and test.py)."""
