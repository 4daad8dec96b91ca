"""The worked personal-data example of docs/adapters.md: the provincial land registry, an
adapter in a separate distribution (`examples/land-registry`): an API key, paging, audit
subjects from the answer, a fault switch. Its own tests (the conformance battery with
expected answers, calls through the hub's API) pass; installed with pip into a folder of
its own, the hub discovers it and `hub mappings check` holds it to its schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.wheels import install_into_folder

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "land-registry"


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, env={**os.environ, **env}, timeout=300
    )


def test_the_examples_own_tests_pass():
    result = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], EXAMPLE)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


def test_installed_it_is_discovered_and_its_mapping_checks(tmp_path):
    site = install_into_folder(EXAMPLE, tmp_path, "hub_adapter_land_registry-*.whl")
    found = run(
        [
            sys.executable,
            "-c",
            "import json; from hub.core.registry import discover; print(json.dumps(sorted(discover())))",
        ],
        tmp_path,
        PYTHONPATH=str(site),
    )
    assert found.returncode == 0, found.stderr
    assert "land-registry" in json.loads(found.stdout)
    checked = run(
        [sys.executable, "-m", "hub.cli", "mappings", "check", "land-registry"],
        tmp_path,
        PYTHONPATH=str(site),
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "land-registry: ok (canonical side and every path in upstream.schema.json)" in (
        checked.stdout
    )
