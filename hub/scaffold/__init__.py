"""`hub adapter new`: a complete, working adapter to start from.

The templates under `templates/<protocol>/` are ordinary files with `{{key}}` placeholders
(in names too: `__pkg__` is the Python package; `__dot__` a leading dot, which package-data
globs would not match). They are filled by plain string
replacement: the set of keys is small and fixed, and a template engine would be one more
dependency for integrators to install for a one-off command. A placeholder left unfilled is
a bug in a template, and stops generation.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from hub.scaffold.events import event_replacements

__all__ = ["PROTOCOLS", "Names", "ScaffoldError", "generate"]

PROTOCOLS = ("rest", "soap")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_LEFTOVER = re.compile(r"\{\{[a-z_]+\}\}")


class ScaffoldError(Exception):
    """A name, protocol or target the generator refuses; the message says why."""


@dataclass(frozen=True)
class Names:
    """Every spelling of the adapter's name the templates use."""

    name: str  # the service name: budget-code
    pkg: str  # the Python package: budget_code
    cls: str  # the class prefix: BudgetCode
    env: str  # the settings prefix: BUDGET_CODE
    title: str
    port: int

    @classmethod
    def of(cls, name: str, *, title: str | None = None, port: int = 8199) -> Names:
        if not _NAME.match(name) or len(name) > 40:
            raise ScaffoldError(
                f"{name!r}: a service name is lower-case letters and digits in words joined "
                "by '-', starting with a letter, at most 40 characters (e.g. budget-code)"
            )
        pkg = name.replace("-", "_")
        if keyword.iskeyword(pkg):
            raise ScaffoldError(f"{name!r} is a Python keyword")
        if title is not None and (
            not 0 < len(title) <= 60 or any(c in title for c in '"\\\n\r`{}')
        ):
            raise ScaffoldError(
                "a title is 1 to 60 characters, without quotes, backslashes, braces or newlines"
            )
        words = name.split("-")
        return cls(
            name=name,
            pkg=pkg,
            cls="".join(w.capitalize() for w in words),
            env=pkg.upper(),
            title=title or " ".join(words).capitalize(),
            port=port,
        )

    def replacements(
        self, *, personal_data: bool, package: bool, events: bool = False
    ) -> dict[str, str]:
        return {
            **event_replacements(events),  # first: its pieces use the placeholders below
            "{{name}}": self.name,
            "{{pkg}}": self.pkg,
            "{{cls}}": self.cls,
            "{{env}}": self.env,
            "{{title}}": self.title,
            "{{port}}": str(self.port),
            "{{personal_data}}": str(personal_data),
            "{{dist}}": f"hub-adapter-{self.name}",
            "{{package_section}}": _package_section(self) if package else "",
        }


def _package_section(names: Names) -> str:
    """The pyproject tables that make the directory an installable distribution whose entry
    point registers the adapter with the hub."""
    return f"""[build-system]
requires = ["setuptools>=69", "wheel"]
build-backend = "setuptools.build_meta"

[project]
name = "hub-adapter-{names.name}"
version = "0.1.0"
description = "{names.title}: an adapter for the LGSP hub"
requires-python = ">=3.11"
dependencies = ["lgsp-hub"]

[project.entry-points."hub.adapters"]
{names.name} = "{names.pkg}:{names.cls}Adapter"

[tool.setuptools]
packages = ["{names.pkg}"]

[tool.setuptools.package-data]
{names.pkg} = ["*.yaml", "*.json", "*.wsdl"]

"""


def generate(
    name: str,
    target: Path,
    *,
    protocol: str = "rest",
    package: bool = False,
    title: str | None = None,
    personal_data: bool = False,
    port: int = 8199,
    events: bool = False,
) -> list[Path]:
    """Write the adapter, its mapping, mock, sample data and tests under `target` (which
    must not exist or be empty); returns the files written. `events`: the adapter declares
    an event type fed from its mock's change feed (REST only)."""
    if protocol not in PROTOCOLS:
        raise ScaffoldError(f"protocol {protocol!r}: one of {', '.join(PROTOCOLS)}")
    if events and protocol != "rest":
        raise ScaffoldError("--events is generated for the REST template only, for now")
    names = Names.of(name, title=title, port=port)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(f"{target} exists and is not empty: nothing was written")
    replacements = names.replacements(personal_data=personal_data, package=package, events=events)
    root = resources.files("hub.scaffold").joinpath("templates", protocol)
    planned = [(path, _fill(text, replacements, path)) for path, text in _walk(root, "")]
    written = []
    for relative, content in planned:
        destination = target / _fill(relative, replacements, relative).replace("__pkg__", names.pkg)
        destination = destination.with_name(destination.name.replace("__dot__", "."))
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(content, encoding="utf-8")
        written.append(destination)
    return written


def _walk(node: Traversable, prefix: str) -> list[tuple[str, str]]:
    """(relative path without `.tmpl`, text) of every template under `node`."""
    found = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        relative = f"{prefix}{child.name}"
        if child.is_dir():
            if child.name != "__pycache__":
                found.extend(_walk(child, relative + "/"))
        elif child.name.endswith(".tmpl"):
            found.append((relative.removesuffix(".tmpl"), child.read_text(encoding="utf-8")))
    return found


def _fill(text: str, replacements: dict[str, str], where: str) -> str:
    for key, value in replacements.items():
        text = text.replace(key, value)
    leftover = _LEFTOVER.search(text)
    if leftover:  # pragma: no cover - a template bug, caught by the scaffold's tests
        raise ScaffoldError(f"template {where}: unknown placeholder {leftover.group(0)}")
    return text
