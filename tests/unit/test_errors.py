"""The exception tree: every HubError lives in hub.errors, and its docstring draws the
whole tree as it is (class, status, code and parent), so integrators can trust it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import hub
import hub.errors as errors
from hub.errors import HubError


def _all_hub_modules() -> list[object]:
    names = [m.name for m in pkgutil.walk_packages(hub.__path__, "hub.")]
    skipped = ("hub.migrations", "hub.testing")  # Alembic scripts; the kit imports pytest
    wanted = [n for n in names if not n.startswith(skipped) and not n.endswith(".__main__")]
    return [importlib.import_module(n) for n in wanted]


def _drawn(cls: type[HubError], prefix: str = "") -> list[str]:
    lines = []
    kids = sorted(
        (c for c in _error_classes() if c.__bases__[0] is cls), key=lambda c: (c.status, c.__name__)
    )
    for i, kid in enumerate(kids):
        last = i == len(kids) - 1
        lines.append(
            f"{prefix}{'└── ' if last else '├── '}{kid.__name__} ({kid.status} {kid.code})"
        )
        lines += _drawn(kid, prefix + ("    " if last else "│   "))
    return lines


def _error_classes() -> list[type[HubError]]:
    return [
        c
        for c in vars(errors).values()
        if inspect.isclass(c) and issubclass(c, HubError) and c.__module__ == "hub.errors"
    ]


def test_every_hub_error_is_defined_in_hub_errors() -> None:
    elsewhere = {
        f"{obj.__module__}.{obj.__name__}"
        for module in _all_hub_modules()
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, HubError) and obj.__module__ != "hub.errors"
    }
    assert elsewhere == set()


def test_the_docstring_draws_the_whole_tree() -> None:
    drawn = [f"HubError ({HubError.status} {HubError.code})", *_drawn(HubError)]
    doc = errors.__doc__ or ""
    # Each tree line of the docstring, without the note some lines carry after it.
    written = [
        re.sub(r"\)\s{2,}.*$", ")", line[4:])
        for line in doc.splitlines()
        if re.match(r"    [│├└ ]*(── )?\w+ \(\d{3} [A-Z_]+\)", line)
    ]
    assert written == drawn


def test_codes_are_unique_and_upper_case() -> None:
    # Each class that names a code of its own names a new one (CircuitOpen, BulkheadFull and
    # ResponseTooLarge answer as their parents do, to the caller's eyes).
    codes = [c.code for c in _error_classes() if "code" in vars(c)]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"[A-Z][A-Z_]+", code) for code in codes)
