#!/usr/bin/env python3
"""Set up and run syncd with nothing but Python 3.11+ and pip.

    python3 dev.py run     # set up .venv and run `syncd demo`: the daemon on the sandbox, people editing, live view
    python3 dev.py test    # set up .venv with the dev tools and run Ruff, mypy --strict and the whole test suite
    python3 dev.py bench   # run the benchmarks

The virtual environment is installed from ``constraints.txt`` (every version pinned) and reinstalled only when
``pyproject.toml`` or ``constraints.txt`` change, so repeated runs start at once.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".syncd-installed"
PYTEST_NO_TESTS = 5


def _run(*args: str | Path) -> int:
    print("+", " ".join(str(a) for a in args), file=sys.stderr, flush=True)
    return subprocess.call([str(a) for a in args], cwd=ROOT)  # noqa: S603 - fixed argv of our own tools, no shell


def ensure_venv(*, dev: bool) -> None:
    """Create .venv and install the pinned project (with the dev tools when asked) unless already current."""
    inputs = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + (ROOT / "constraints.txt").read_bytes())
    installed = STAMP.read_text() if STAMP.exists() else ""
    # An environment with the dev tools also serves `run`; one without them must be completed for `test`.
    if installed in ({f"{inputs.hexdigest()}:dev"} | (set() if dev else {f"{inputs.hexdigest()}:run"})):
        return
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip: list[str | Path] = [PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    if _run(*pip, "-c", "constraints.txt", "-e", ".[dev]" if dev else ".") != 0:
        sys.exit("installing syncd's dependencies failed (see pip's message above)")
    STAMP.write_text(f"{inputs.hexdigest()}:{'dev' if dev else 'run'}")


def cmd_run(args: list[str]) -> int:
    """Run syncd on the embedded default: `syncd demo ARGS` with the repository's config/ and mappings/."""
    ensure_venv(dev=False)
    where = ("--config", ROOT / "config", "--mappings", ROOT / "mappings")
    return _run(BIN / "syncd", "demo", *where, *args)


def cmd_test(args: list[str]) -> int:
    """Lint, type-check and test; any failure (and a test run that collected nothing) fails."""
    ensure_venv(dev=True)
    for step in ((BIN / "ruff", "check", "."), (BIN / "ruff", "format", "--check", "."), (BIN / "mypy",)):
        code = _run(*step)
        if code != 0:
            return code
    # One worker per core, a test file per worker (a file's tests share its fixtures and run in order); `-n 0`
    # after the command runs them in this process.
    code = _run(BIN / "pytest", "-n", "auto", "--dist", "loadfile", *args)
    if code == PYTEST_NO_TESTS:
        print("pytest collected no tests: that is a failure, not a pass", file=sys.stderr)
        return 1
    return code


def cmd_bench(args: list[str]) -> int:
    """Run every benchmark script (each prints a table and writes JSON to benchmarks/results/)."""
    ensure_venv(dev=True)
    code = 0
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        code = code or _run(PYTHON, script, *args)
    return code


COMMANDS = {"run": cmd_run, "test": cmd_test, "bench": cmd_bench}


def main() -> int:
    """Dispatch ``dev.py COMMAND [ARGS...]``."""
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    return COMMANDS[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
