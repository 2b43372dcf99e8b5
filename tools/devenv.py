"""Set up the development environment: .venv, node_modules and a Chromium for browser tests.

Stdlib only: build.py and test.py import this before the venv exists. Each step is skipped when a
stamp file (a hash of its inputs) says it is already done.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
NODE_MODULES = ROOT / "node_modules"
REQUIREMENTS_DIR = ROOT / "requirements"
#: What build.py installs: jinja2 only (no torch, no test tools).
BUILD_REQUIREMENTS = (REQUIREMENTS_DIR / "build.txt",)
#: What test.py installs: the build's, the test tools and torch/transformers for the validation tests.
REQUIREMENTS = (*BUILD_REQUIREMENTS, REQUIREMENTS_DIR / "dev.txt", REQUIREMENTS_DIR / "measure.txt")
PACKAGE_LOCK = ROOT / "package-lock.json"
STAMP_NAME = ".kvcalc-stamp"
SYSTEM_CHROMIUM = Path("/usr/bin/chromium")
# Flags Debian's Chromium needs as root on a machine with a closed network.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
BROWSER_ENV = "KVCALC_BROWSER"  # "playwright" or the path of a Chromium executable
PLAYWRIGHT = "playwright"


def log(message: str) -> None:
    """Print one progress line, flushed so it interleaves with subprocess output."""
    print(f"[kvcalc] {message}", flush=True)


@contextmanager
def step(name: str) -> Iterator[None]:
    """Log a step's start and its wall time."""
    log(f"{name} ...")
    start = time.perf_counter()
    yield
    log(f"{name}: done in {time.perf_counter() - start:.2f} s")


def run(cmd: Sequence[str | os.PathLike[str]], env: dict[str, str] | None = None) -> None:
    """Run a command from the repo root; raise SystemExit when it fails."""
    code = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env, check=False).returncode
    if code != 0:
        raise SystemExit(f"[kvcalc] command failed ({code}): {' '.join(map(str, cmd))}")


def files_hash(paths: Sequence[Path], extra: str = "") -> str:
    """sha256 over the files' names and contents plus an extra string."""
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def stamp_ok(directory: Path, wanted: str) -> bool:
    """True when directory/STAMP_NAME holds exactly `wanted`."""
    stamp = directory / STAMP_NAME
    return stamp.is_file() and stamp.read_text().strip() == wanted


def venv_python() -> Path:
    """The venv's interpreter."""
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def in_venv() -> bool:
    """True when this process runs on the project's .venv."""
    return Path(sys.prefix).resolve() == VENV.resolve()


def requirement_stamps(requirements: Sequence[Path]) -> set[str]:
    """One stamp line per requirements file: its name and the hash of its content and this Python."""
    return {f"{req.name} {files_hash([req], extra=sys.version)}" for req in requirements}


def stamp_lines(directory: Path) -> set[str]:
    """The lines of directory/STAMP_NAME (empty when there is none)."""
    stamp = directory / STAMP_NAME
    return set(stamp.read_text().split("\n")) - {""} if stamp.is_file() else set()


def ensure_venv(requirements: Sequence[Path] = REQUIREMENTS) -> None:
    """Create .venv and pip-install the pinned `requirements` files that are not installed as they are.

    The stamp lists each installed file with its hash, so a venv build.py made (build.txt only) is
    completed by test.py, and a venv test.py made already covers build.py: no pip run at all."""
    wanted = requirement_stamps(requirements)
    have = stamp_lines(VENV)
    if venv_python().exists() and wanted <= have:
        return
    names = ", ".join(req.name for req in requirements)
    with step(f"python venv + pip install {names} (requirements changed)"):
        if not venv_python().exists():
            run([sys.executable, "-m", "venv", VENV])
            have = set()
        reqs = [arg for req in requirements for arg in ("-r", req)]
        run([venv_python(), "-m", "pip", "install", "--disable-pip-version-check", "-q", *reqs])
        replaced = {req.name for req in requirements}
        kept = {line for line in have if line.split(" ", 1)[0] not in replaced}
        (VENV / STAMP_NAME).write_text("\n".join(sorted(kept | wanted)) + "\n")


def ensure_node_modules() -> None:
    """Run `npm ci` when package-lock.json changed."""
    wanted = files_hash([PACKAGE_LOCK])
    if stamp_ok(NODE_MODULES, wanted):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("[kvcalc] npm not found: install Node.js 20+ (with npm) and retry")
    with step("npm ci (package-lock.json changed)"):
        run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"])
        (NODE_MODULES / STAMP_NAME).write_text(wanted + "\n")


def bootstrap(script: str, requirements: Sequence[Path] = REQUIREMENTS) -> None:
    """Make sure .venv (with `requirements`) and node_modules are current, then re-exec `script` inside
    the venv."""
    if os.environ.get("KVCALC_BOOTSTRAPPED") == "1" and in_venv():
        return
    ensure_venv(requirements)
    ensure_node_modules()
    os.environ["KVCALC_BOOTSTRAPPED"] = "1"
    if not in_venv():
        python = str(venv_python())
        os.execv(python, [python, str(Path(script).resolve()), *sys.argv[1:]])


def playwright_browser_installed() -> bool:
    """True when Playwright's own headless Chromium for this Playwright version is installed."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "playwright", "install", "--dry-run", "chromium-headless-shell"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    dirs = [line.split(":", 1)[1].strip() for line in out.splitlines() if "Install location:" in line]
    return bool(dirs) and all((Path(d) / "INSTALLATION_COMPLETE").is_file() for d in dirs)


def apt_install_chromium() -> None:
    """Install Debian's chromium with apt-get (root only); waits for a dpkg lock held by another apt."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=600"]
    with step("apt-get install chromium (no browser found)"):
        run(["apt-get", *lock, "update", "-q"], env=env)
        run(["apt-get", *lock, "install", "-y", "-q", "chromium"], env=env)


def ensure_browser() -> str:
    """Return "playwright" or the path of a Chromium to launch; install Debian's when needed.

    Order: $KVCALC_BROWSER, Playwright's own browser, /usr/bin/chromium, apt-get install chromium
    (as root), else a SystemExit saying what to install. The answer is cached in $KVCALC_BROWSER.
    """
    choice = os.environ.get(BROWSER_ENV) or _find_browser()
    os.environ[BROWSER_ENV] = choice
    return choice


def _find_browser() -> str:
    if playwright_browser_installed():
        return PLAYWRIGHT
    if not SYSTEM_CHROMIUM.exists() and can_apt_install():
        apt_install_chromium()
    if SYSTEM_CHROMIUM.exists():
        return str(SYSTEM_CHROMIUM)
    raise SystemExit(
        "[kvcalc] no Chromium for the browser tests. Install one of: "
        "`python -m playwright install --with-deps chromium` (inside .venv), "
        "or Debian/Ubuntu's `apt-get install chromium` (provides /usr/bin/chromium), "
        f"or set {BROWSER_ENV}=/path/to/chromium."
    )


def can_apt_install() -> bool:
    """True when we are root on a machine with apt-get."""
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get") is not None
