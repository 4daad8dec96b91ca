"""The documentation stays true: every shell example in the tutorial runs against a real
`hub up`, and its answer matches the JSON shown after it; the reference pages are generated
from the code and cover all of it; the README stays a landing page.

How a tutorial page is checked (docs/tutorial/*.md):
- its ```bash blocks run in order, in one bash process per page (so a variable set in one
  block is there in the next), with `HUB_KEY` set to the key `hub up` printed and the
  default ports (8000, 8101-8105) rewritten to the free ones the test's `hub up` holds,
  `.venv/bin` on the PATH and the database and secret `hub up` runs with (the reader's
  second terminal at the project's root); the reader's own `export HUB_KEY=…` and
  `export PATH=…` lines are left out;
- a ```json block right after a ```bash block is what that block's last JSON answer must
  contain: objects are matched by the keys shown (the answer may have more), a string "…"
  matches any value, and a list is matched element by element, a trailing "…" allowing more.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mocks import mock_ports
from tests.test_servers import (
    HUB,
    _printed_key,
    free_port,
    free_ports_in_a_row,
    stop,
    wait_until_up,
)

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TUTORIAL = sorted((DOCS / "tutorial").glob("*.md"))
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
ANY = "…"


def load_hooks() -> Any:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def examples(page: Path) -> list[tuple[str, Any]]:
    """(bash block, expected JSON or None) in the page's order."""
    text = page.read_text(encoding="utf-8")
    blocks = [(m.group(1), m.group(2), m.start(), m.end()) for m in FENCE.finditer(text)]
    out: list[tuple[str, Any]] = []
    for i, (lang, body, _, end) in enumerate(blocks):
        if lang != "bash":
            continue
        expected = None
        if i + 1 < len(blocks):
            next_lang, next_body, next_start, _ = blocks[i + 1]
            if next_lang == "json" and not text[end:next_start].strip():
                expected = json.loads(next_body)
        out.append((body, expected))
    return out


def matches(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """What differs between the documented answer and the real one (nothing: it matches)."""
    if expected == ANY:
        return []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {type(actual).__name__}"]
        problems = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{where}.{key}: missing")
            else:
                problems += matches(value, actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list, got {type(actual).__name__}"]
        more = bool(expected) and expected[-1] == ANY
        shown = expected[:-1] if more else expected
        if len(actual) < len(shown) or (not more and len(actual) != len(shown)):
            return [f"{where}: {len(actual)} elements, the page shows {len(shown)}"]
        problems = []
        for i, value in enumerate(shown):
            problems += matches(value, actual[i], f"{where}[{i}]")
        return problems
    if expected != actual:
        return [f"{where}: the page says {expected!r}, the hub answered {actual!r}"]
    return []


def json_documents(text: str) -> list[Any]:
    """The JSON documents in a block's output, one after another (curl -s adds no newline)."""
    decoder, found, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except ValueError:
                i += 1
                continue
            found.append(value)
            i = end
        else:
            i += 1
    return found


def test_matching_rules():
    assert matches({"a": ANY, "b": [1, ANY]}, {"a": 3, "b": [1, 2, 3], "c": 0}) == []
    assert matches({"a": 1}, {"a": 2}) == ["$.a: the page says 1, the hub answered 2"]
    assert matches({"a": [1]}, {"a": [1, 2]}) == ["$.a: 2 elements, the page shows 1"]
    assert matches({"a": {"b": 1}}, {"a": {}}) == ["$.a.b: missing"]
    assert json_documents('{"a": 1}{"b": [2]}\n') == [{"a": 1}, {"b": [2]}]


def test_every_tutorial_page_has_checked_examples():
    assert TUTORIAL, "no tutorial pages"
    for page in TUTORIAL:
        checked = [e for e in examples(page) if e[1] is not None]
        assert checked, f"{page.name}: no example with its answer shown"


@pytest.fixture(scope="module")
def hub_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("up")
    from tests.conftest import database_url, reset_database

    url = database_url(folder)
    reset_database(url)
    environment = {
        **os.environ,
        "HUB_DATABASE_URL": url,
        "HUB_SECRET_KEY": "docs-test-secret",
        "HUB_JOB_POLL_INITIAL_S": "1",
    }
    hub_port, mock_base = free_port(), free_ports_in_a_row(5)
    proc = subprocess.Popen(
        [*HUB, "up", "--port", str(hub_port), "--mock-ports", str(mock_base)],
        env=environment,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until_up(proc, f"http://127.0.0.1:{hub_port}/health", timeout=60)
        ports = mock_ports(mock_base)
        for port in ports.values():
            wait_until_up(proc, f"http://127.0.0.1:{port}/_mock/health")
        key = _printed_key(proc)
        default_mock_ports = mock_ports(8101)
        rewrite = {"127.0.0.1:8000": f"127.0.0.1:{hub_port}"}
        for name, port in ports.items():
            rewrite[f"127.0.0.1:{default_mock_ports[name]}"] = f"127.0.0.1:{port}"
        yield {
            "key": key,
            "rewrite": json.dumps(rewrite),
            "cwd": str(folder),
            "database_url": url,
            "secret_key": environment["HUB_SECRET_KEY"],
        }
    finally:
        stop(proc)


MARK = "@@docs-example-end@@"


@pytest.mark.parametrize("page", TUTORIAL, ids=[p.stem for p in TUTORIAL])
def test_tutorial_examples_answer_as_shown(page: Path, hub_up: dict[str, str]):
    rewrite = json.loads(hub_up["rewrite"])
    steps = examples(page)
    script = ["set -euo pipefail"]
    for body, _ in steps:
        lines = [
            line
            for line in body.splitlines()
            if not line.startswith(("export HUB_KEY=", "export PATH="))
        ]
        text = "\n".join(lines)
        for old, new in rewrite.items():
            text = text.replace(old, new)
        script += [text, f"printf '\\n{MARK}\\n'"]
    ran = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        env={
            # the reader's second terminal: `hub` on the PATH (.venv/bin), talking to the
            # database `hub up` runs on
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin:/usr/local/bin",
            "HUB_KEY": hub_up["key"],
            "HUB_DATABASE_URL": hub_up["database_url"],
            "HUB_SECRET_KEY": hub_up["secret_key"],
        },
        cwd=hub_up["cwd"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, f"{page.name}: exit {ran.returncode}\n{ran.stderr[-2000:]}"
    outputs = ran.stdout.split(f"\n{MARK}\n")
    assert len(outputs) >= len(steps), ran.stdout[-2000:]
    for n, ((body, expected), output) in enumerate(zip(steps, outputs, strict=False), 1):
        if expected is None:
            continue
        answers = json_documents(output)
        assert answers, f"{page.name}, example {n}: no JSON answer\n{body}\n{output[-500:]}"
        problems = matches(expected, answers[-1])
        assert not problems, f"{page.name}, example {n}:\n{body}\n" + "\n".join(problems)


# -- the reference pages ------------------------------------------------------------------


def test_every_setting_is_described_and_grouped():
    from pydantic import SecretStr

    from hub.core.config import Settings
    from hub.core.registry import discover

    hooks = load_hooks()
    for name, info in Settings.model_fields.items():
        assert info.description, f"HUB_{name.upper()} has no description"
        assert hooks.group_of(name) != hooks.OTHER, f"HUB_{name.upper()} is in no group"
    for adapter, cls in discover().items():
        for name, info in cls.Config.model_fields.items():
            assert info.description, f"{adapter}: {name} has no description"
    page = hooks.settings_markdown()
    for name in Settings.model_fields:
        assert f"`HUB_{name.upper()}`" in page
    assert "`HUB_POPULATION_BASE_URL`" in page and "`HUB_PAYMENT_SECRET`" in page
    for cls in discover().values():  # secrets' defaults (the mocks' values) are never printed
        for info in cls.Config.model_fields.values():
            if isinstance(info.default, SecretStr):
                assert info.default.get_secret_value() not in page


def test_every_command_is_in_the_cli_reference():
    import click

    from hub.cli import main

    page = load_hooks().cli_markdown()

    def walk(command: click.Command, path: str) -> Iterator[str]:
        yield path
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{path} {name}")

    for path in walk(main, "hub"):
        assert f"`{path}`" in page, path
    assert "--allow" in page and "--mock-ports" in page


def test_the_route_reference_lists_the_api():
    hooks = load_hooks()
    document = hooks.openapi_document()
    page = hooks.routes_markdown(document)
    for path in (
        "/v1/citizens/{personal_id}",
        "/v1/services/{service}/{operation}",
        "/oauth/token",
    ):
        assert f"`{path}`" in page


def test_the_readme_is_a_landing_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / target).exists(), target
    for command in ("python3 dev.py up", "python3 dev.py test"):
        assert command in readme


def test_every_docs_page_is_in_the_navigation():
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))

    def pages(nav: Any) -> Iterator[str]:
        if isinstance(nav, str):
            yield nav
        elif isinstance(nav, list):
            for item in nav:
                yield from pages(item)
        elif isinstance(nav, dict):
            for value in nav.values():
                yield from pages(value)

    listed = set(pages(config["nav"]))
    on_disk = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert on_disk - listed == set(), "pages not in mkdocs.yml's nav"
    assert listed - on_disk == set(), "nav entries with no page"


def test_python_runs_the_hooks_module():
    # the hooks import nothing that only mkdocs has: the generator is plain code
    ran = subprocess.run(
        [sys.executable, "-c", "import runpy; runpy.run_path('docs/hooks.py')"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr
