"""Build a project's wheel offline and install it into a folder of its own.

An adapter distribution (a generated one, the budget-code example) is then importable by a
process started with that folder on PYTHONPATH, and only by it: the test environment
itself is never changed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def install_into_folder(project: Path, work: Path, wheel_glob: str) -> Path:
    """The folder `project`'s wheel (matching `wheel_glob`) was installed into."""
    wheels, site = work / "wheels", work / "site"
    pip = [sys.executable, "-m", "pip"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(project)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = wheels.glob(wheel_glob)
    installed = subprocess.run(
        [*pip, "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stderr
    return site
