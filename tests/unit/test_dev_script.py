"""`python3 dev.py setup` makes `.venv` and does nothing else (no hub, no tests)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_setup_only_makes_the_venv(tmp_path):
    shutil.copy(ROOT / "dev.py", tmp_path / "dev.py")
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    bin_dir = tmp_path / ".venv" / ("Scripts" if os.name == "nt" else "bin")
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text("")  # a .venv already installed for this pyproject.toml
    stamp = hashlib.sha256((tmp_path / "pyproject.toml").read_bytes()).hexdigest()
    (tmp_path / ".venv" / ".installed").write_text(stamp)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "dev.py"), "setup"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert ".venv ready" in done.stdout
    usage = subprocess.run(
        [sys.executable, str(tmp_path / "dev.py")], capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 2 and "dev.py setup" in usage.stdout
