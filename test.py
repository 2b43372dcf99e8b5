#!/usr/bin/env python3
"""Run every check: set up, build the site, ruff, then pytest over tests/ and tests_browser/.

    python3 test.py [pytest args]      e.g.  python3 test.py -m browser   or   python3 test.py -x tests/

Same set-up as build.py (tools/devenv.py), with every requirements file: build.txt, dev.txt (test
tools) and measure.txt (torch, transformers). pytest runs one worker per core (``-n 1`` for one).
Exits non-zero when ruff or pytest fails, and when
pytest ran no test at all.
"""

from __future__ import annotations

import os
import subprocess
import sys

import build
from tools import devenv

PYTEST_NO_TESTS = 5


def ruff() -> int:
    """`ruff check .`; returns its exit code."""
    with devenv.step("ruff check ."):
        return subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=devenv.ROOT).returncode


def parallel(args: list[str]) -> list[str]:
    """One pytest worker per core (pytest-xdist), a whole test file per worker (``--dist loadfile``: the
    transformers surveys and the build tests set up once per file), unless the arguments choose ``-n``."""
    if "no:xdist" in args or any(a.startswith(("-n", "--numprocesses", "--dist")) for a in args):
        return args
    return ["-n", "auto", "--dist", "loadfile", *args]


def pytest(args: list[str]) -> int:
    """pytest with the given arguments; 'no tests ran' counts as a failure."""
    args = parallel(args)
    with devenv.step(f"pytest {' '.join(args)}".rstrip()):
        code = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=devenv.ROOT).returncode
    if code == PYTEST_NO_TESTS:
        devenv.log("pytest ran no test: failing")
        return 1
    return code


def main(args: list[str]) -> int:
    """Set up, build, lint, test; return the exit code."""
    devenv.bootstrap(__file__, devenv.REQUIREMENTS)  # build.txt + dev.txt + measure.txt
    with devenv.step("build site"):
        os.environ[build.SITE_DIR_ENV] = str(build.build_site(build.DEFAULT_OUT))
    with devenv.step("find a Chromium for the browser tests"):
        devenv.log(f"browser: {devenv.ensure_browser()}")
    lint = ruff()
    tests = pytest(args)
    devenv.log(f"ruff: {'ok' if lint == 0 else 'FAILED'}; pytest: {'ok' if tests == 0 else 'FAILED'}")
    return 1 if lint or tests else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
