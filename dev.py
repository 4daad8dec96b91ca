#!/usr/bin/env python3
"""Bootstrap and run, with nothing but Python 3.11+ installed.

    python3 dev.py setup    # only make .venv (then .venv/bin/hub, .venv/bin/pytest, …)
    python3 dev.py up       # the hub on :8000 with every mock on :8101-8105 (SQLite)
    python3 dev.py test     # the test suite (extra arguments go to pytest)
    python3 dev.py bench    # the benchmark (extra arguments go to bench/run.py)
    python3 dev.py bench profile   # the citizen profile's fan-out (bench/profile.py)
    python3 dev.py bench faults    # the hub killed, an upstream down, one slow (bench/faults.py)
    python3 dev.py bench console   # console pages over 100,000 audit records (bench/console.py)
    python3 dev.py bench events    # event latency and throughput, 50 subscribers (bench/events.py)
    python3 dev.py bench stages    # what each stage of a look-up costs, timeit (bench/stages.py)
    python3 dev.py docs     # the documentation site on :8008 (mkdocs serve; `docs build` builds it)

The first run makes `.venv/` and installs the project with its dev extras into it; later runs
reinstall only when pyproject.toml changed.
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
STAMP = VENV / ".installed"


def ensure_venv() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("creating .venv …", flush=True)
        venv.create(VENV, with_pip=True)
    print("installing the project and its dev extras into .venv …", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def main() -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before anything checks
        sys.exit("Python 3.11 or newer is needed")
    if len(sys.argv) < 2 or sys.argv[1] not in ("setup", "up", "test", "bench", "docs"):
        print(__doc__)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    ensure_venv()
    if command == "setup":
        print(f".venv ready: {BIN / 'hub'} --help, {BIN / 'pytest'} -q")
        return 0
    if command == "up":
        args = [str(BIN / "hub"), "up", *rest]
    elif command == "test":
        args = [str(BIN / "python"), "-m", "pytest", *rest]
    elif command == "docs":
        if rest[:1] == ["build"]:
            args = [str(BIN / "mkdocs"), "build", "--strict", *rest[1:]]
        else:
            args = [str(BIN / "mkdocs"), "serve", "--dev-addr", "127.0.0.1:8008", *rest]
    elif rest[:1] in (["profile"], ["faults"], ["console"], ["events"], ["stages"]):
        args = [str(BIN / "python"), str(ROOT / "bench" / f"{rest[0]}.py"), *rest[1:]]
    else:
        args = [str(BIN / "python"), str(ROOT / "bench" / "run.py"), *rest]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's banner, not a fault
    child = subprocess.Popen(args, cwd=ROOT, env=env)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            # Ctrl-C reaches the child too (same process group): let it stop cleanly (the hub
            # flushes its audit records, `hub up` stops the mocks) instead of killing it.
            continue


if __name__ == "__main__":
    sys.exit(main())
