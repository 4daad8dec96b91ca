"""`hub adapter new`: what it generates works as generated.

Each generated project runs its own tests (the conformance battery, the mapping against the
upstream's schema, calls through the hub's API) in a subprocess, exactly as an integrator
would; `--package` makes a wheel that, once installed, the hub discovers with no change to
its core.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.scaffold import Names, ScaffoldError, generate
from tests.wheels import install_into_folder

BIN = Path(sys.executable).parent


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, env={**os.environ, **env}, timeout=300
    )


@pytest.mark.parametrize("protocol", ["rest", "soap"])
def test_the_generated_project_passes_its_own_tests_and_lint(tmp_path, protocol):
    target = tmp_path / "land-registry"
    written = generate("land-registry", target, protocol=protocol, title="Land registry")
    names = {p.relative_to(target).as_posix() for p in written}
    expected = {
        ".gitignore",
        "README.md",
        "conftest.py",
        "pyproject.toml",
        "land_registry/__init__.py",
        "land_registry/models.py",
        "land_registry/mapping.yaml",
        "land_registry/mock.py",
        "land_registry/sample_data.json",
        "tests/test_land_registry.py",
        "tests/expected.json",
    }
    schema = (
        "land_registry/service.wsdl" if protocol == "soap" else "land_registry/upstream.schema.json"
    )
    assert names == expected | {schema}
    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], target)
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout and "failed" not in tests.stdout
    lint = run([str(BIN / "ruff"), "check", "."], target)  # with the project's own settings
    assert lint.returncode == 0, lint.stdout
    models = (target / "land_registry" / "models.py").read_text()
    assert "(CanonicalModel)" in models and "BaseModel" not in models
    ignored = (target / ".gitignore").read_text().split()
    assert {"audit-archive/", "*.db", "__pycache__/"} <= set(ignored)


def test_with_events_the_generated_project_publishes_one_and_passes_its_tests(tmp_path):
    """`--events`: the adapter declares one event type fed from its mock's paged change feed
    (`POST /_mock/events` makes one), and the battery's event checks run on it and pass."""
    target = tmp_path / "land-registry"
    answer = CliRunner().invoke(
        main, ["adapter", "new", "land-registry", "--events", "--dir", str(target)]
    )
    assert answer.exit_code == 0, answer.output
    adapter = (target / "land_registry" / "__init__.py").read_text()
    assert 'EventType(\n            "record-changed"' in adapter and "async def changes(" in adapter
    tests = run([sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider"], target)
    assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
    ran = {line.split("::")[-1] for line in tests.stdout.splitlines() if line.startswith("PASSED")}
    assert {
        "test_event_samples_cover_the_event_types",
        "test_feed_event_fits_its_declaration[record-changed]",
        "test_feed_cursor_advances_and_a_repeat_adds_nothing[record-changed]",
        "test_garbage_feed_page_is_a_clear_error",
    } <= ran, ran
    for check in (["check", "."], ["format", "--check", "."]):
        lint = run([str(BIN / "ruff"), *check], target)
        assert lint.returncode == 0, lint.stdout
    with pytest.raises(ScaffoldError, match="REST"):
        generate("land-registry", tmp_path / "soap", protocol="soap", events=True)


def test_without_events_the_adapter_declares_none(tmp_path):
    generate("land-registry", tmp_path / "plain")
    adapter = (tmp_path / "plain" / "land_registry" / "__init__.py").read_text()
    mock = (tmp_path / "plain" / "land_registry" / "mock.py").read_text()
    assert "event_types" not in adapter and "/_mock/events" not in mock


@pytest.mark.parametrize("protocol", ["rest", "soap"])
@pytest.mark.parametrize(
    "name", ["provincial-land-registry", "provincial-land-registry-of-the-province"]
)
def test_long_names_pass_the_generated_lint(tmp_path, protocol, name):
    """The longest names (40 characters) and titles (60) still make code within the line
    length of the project's own ruff settings (an adapter once failed with 11 E501)."""
    target = tmp_path / "out"
    generate(name, target, protocol=protocol, title="T" * 60, personal_data=True)
    lint = run([str(BIN / "ruff"), "check", "--output-format", "concise", "."], target)
    assert lint.returncode == 0, lint.stdout
    formatted = run([str(BIN / "ruff"), "format", "--check", "."], target)
    assert formatted.returncode == 0, formatted.stdout


def test_the_package_installs_and_the_hub_discovers_it(tmp_path):
    project = tmp_path / "project"
    generate("budget-code", project, package=True, title="Budget-relationship codes")
    site = install_into_folder(project, tmp_path, "hub_adapter_budget_code-*.whl")
    # A fresh process with the package on its path: discovery through the entry point only.
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
    assert "budget-code" in json.loads(found.stdout)
    checked = run(
        [sys.executable, "-m", "hub.cli", "mappings", "check", "budget-code"],
        tmp_path,
        PYTHONPATH=str(site),
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (
        "budget-code: ok (canonical side and every path in upstream.schema.json)" in checked.stdout
    )


@pytest.mark.parametrize(
    "name",
    ["Land", "land_registry", "-land", "land-", "1land", "land--registry", "x" * 41, "import"],
)
def test_names_that_cannot_be_an_adapter_are_refused(tmp_path, name):
    with pytest.raises(ScaffoldError):
        generate(name, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("title", ["", 'Sở "Tài chính"', "a\\b", "x" * 61, "{{pkg}}", "two\nlines"])
def test_titles_that_would_break_the_code_are_refused(tmp_path, title):
    with pytest.raises(ScaffoldError, match="title"):
        generate("land-registry", tmp_path / "out", title=title)


def test_a_vietnamese_title_makes_working_code(tmp_path):
    title = "Cơ sở dữ liệu bảo hiểm xã hội, tỉnh Lâm Đồng"
    target = tmp_path / "out"
    generate("social-insurance", target, protocol="soap", title=title)
    assert f'title = "{title}"' in (target / "social_insurance" / "__init__.py").read_text()
    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], target)
    assert tests.returncode == 0, tests.stdout[-4000:]


def test_names_and_a_non_empty_target(tmp_path):
    names = Names.of("social-insurance")
    assert (names.pkg, names.cls, names.env, names.title) == (
        "social_insurance",
        "SocialInsurance",
        "SOCIAL_INSURANCE",
        "Social insurance",
    )
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(ScaffoldError, match="not empty"):
        generate("social-insurance", tmp_path / "busy")
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["keep.txt"]
    with pytest.raises(ScaffoldError, match="protocol"):
        generate("social-insurance", tmp_path / "x", protocol="graphql")


def test_the_cli(tmp_path):
    runner = CliRunner()
    target = tmp_path / "health-insurance"
    made = runner.invoke(
        main,
        [
            "adapter",
            "new",
            "health-insurance",
            "--protocol",
            "soap",
            "--package",
            "--dir",
            str(target),
            "--personal-data",
        ],
    )
    assert made.exit_code == 0, made.output
    assert (
        "pip install -e" in made.output and (target / "health_insurance" / "service.wsdl").exists()
    )
    assert "personal_data=True" in (target / "health_insurance" / "__init__.py").read_text()
    hint = f"hub mappings check {target / 'health_insurance' / 'mapping.yaml'}"
    assert hint in made.output
    assert '[project.entry-points."hub.adapters"]' in (target / "pyproject.toml").read_text()
    again = runner.invoke(main, ["adapter", "new", "health-insurance", "--dir", str(target)])
    assert again.exit_code == 1 and "not empty" in again.output
    bad = runner.invoke(main, ["adapter", "new", "Health", "--dir", str(tmp_path / "h")])
    assert bad.exit_code == 1 and "lower-case" in bad.output
