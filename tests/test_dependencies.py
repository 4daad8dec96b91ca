"""pyproject.toml declares what the code imports, and imports what it declares.

A package that only arrives through another's dependencies (httptools through
`uvicorn[standard]`, SQLAlchemy through sqlmodel) disappears the day that other package stops
needing it; a declared package nobody imports is weight and attack surface every deployment
carries. Each import's top-level name is mapped to its distribution with
importlib.metadata.packages_distributions(), so the check runs on the installed environment.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_TREES = ("hub", "adapters", "mocks")
DEV_TREES = ("tests", "bench")

#: Modules under RUNTIME_TREES that only test code imports, so may use the `testing` extra.
TEST_ONLY_MODULES = {
    "hub/testing/": "the adapter conformance kit is a pytest plugin for adapters' own tests",
}
#: Runtime dependencies no module imports, with the reason each is declared all the same.
NOT_IMPORTED = {
    "psycopg": "the PostgreSQL driver SQLAlchemy loads by URL (postgresql+psycopg)",
}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> set[str]:
    """Distribution names of PEP 508 strings ("uvicorn[standard]>=0.30,<1" -> "uvicorn")."""
    return {normalized(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", r)[0]) for r in requirements}


def declared(extra: str = "dev") -> tuple[set[str], set[str]]:
    """The runtime dependencies and an extra's (`dev`, `testing`), by normalized name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return (
        requirement_names(project["dependencies"]),
        requirement_names(project["optional-dependencies"][extra]),
    )


def _optional(node: ast.Try) -> bool:
    """`try: import x / except ImportError:`: the code runs without x (uvloop, say)."""
    names = {"ImportError", "ModuleNotFoundError"}
    for handler in node.handlers:
        caught = handler.type
        elements = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if any(isinstance(e, ast.Name) and e.id in names for e in elements):
            return True
    return False


def imported_names(tree: ast.AST) -> Iterator[str]:
    """Top-level names of the absolute imports in a module, except optional ones."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and _optional(node):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.partition(".")[0]


def local_names(path: Path) -> set[str]:
    """What an import may name inside this checkout: the top-level packages and modules, and
    a script's siblings (bench/ scripts import each other by bare name)."""
    names = {"hub", "adapters", "mocks", "tests", "bench"}
    for folder in (ROOT, path.parent):
        names |= {p.stem for p in folder.glob("*.py")}
        names |= {p.parent.name for p in folder.glob("*/__init__.py")}
    return names


def third_party_imports(trees: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    """(module path, top-level import name) of every third-party import under `trees`."""
    for tree in trees:
        for path in sorted((ROOT / tree).rglob("*.py")):
            module = path.relative_to(ROOT).as_posix()
            local = local_names(path)
            for name in set(imported_names(ast.parse(path.read_text(), module))):
                if name not in sys.stdlib_module_names and name not in local:
                    yield module, name


@functools.cache
def _installed() -> Mapping[str, list[str]]:
    return importlib.metadata.packages_distributions()  # reads every installed package's files


def distributions(name: str) -> set[str]:
    """The installed distributions that provide a top-level import name, normalized."""
    return {normalized(d) for d in _installed().get(name, [])}


def undeclared(trees: tuple[str, ...], allowed: set[str], dev: set[str]) -> list[str]:
    problems = []
    for module, name in third_party_imports(trees):
        usable = allowed | dev if module.startswith(tuple(TEST_ONLY_MODULES)) else allowed
        owners = distributions(name)
        if not owners & usable:
            owner = ", ".join(sorted(owners)) or "no installed distribution"
            problems.append(f"{module} imports {name} ({owner}): not declared")
    return problems


def test_every_third_party_import_of_the_runtime_code_is_a_declared_dependency():
    runtime, testing = declared("testing")
    problems = undeclared(RUNTIME_TREES, runtime, testing)
    assert not problems, "\n".join(problems)


def test_every_import_of_the_tests_and_the_benchmark_is_declared_with_the_dev_extra():
    runtime, dev = declared()
    problems = undeclared(DEV_TREES, runtime | dev, set())
    assert not problems, "\n".join(problems)


def test_every_declared_runtime_dependency_is_imported_by_the_runtime_code():
    runtime, _ = declared()
    used = set().union(*(distributions(name) for _, name in third_party_imports(RUNTIME_TREES)))
    unused = runtime - used - set(NOT_IMPORTED)
    assert unused == set(), f"declared in pyproject.toml, imported nowhere: {sorted(unused)}"


def test_the_checks_see_what_they_are_meant_to():
    """The scanner finds a plain, a dotted and a from-import, skips an optional one, and maps
    an import name to a distribution of another name (yaml -> PyYAML)."""
    code = (
        "import httpx\nimport lxml.etree\nfrom yaml import safe_load\nfrom . import sibling\n"
        "try:\n    import uvloop\nexcept ImportError:\n    uvloop = None\n"
    )
    assert sorted(imported_names(ast.parse(code))) == ["httpx", "lxml", "yaml"]
    assert distributions("yaml") == {"pyyaml"}
    assert requirement_names(["uvicorn[standard]>=0.30,<1", "PyJWT>=2.8"]) == {"uvicorn", "pyjwt"}
    runtime, _ = declared()
    assert "httptools" in runtime and "httpx-aiohttp" not in runtime
