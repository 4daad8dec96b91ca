"""Reading a path in an upstream payload: XPath over lxml elements, dotted paths over JSON.

A path compiles to a Getter: `first(node)` (the first match or None) and `all(node)` (every
match). Mapping runs once per upstream answer on the hub's hot path, so plain child paths
use lxml's ElementPath through operator.methodcaller (C all the way down), and each field
compiles to one closure (measured: ~4x faster than walking rule objects per field).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from operator import methodcaller
from typing import Any

from lxml import etree


@dataclass(frozen=True, slots=True)
class Getter:
    """A compiled path: `first(node)`, the first match or None; `all(node)`, every match."""

    first: Callable[[Any], Any]
    all: Callable[[Any], list[Any]]


_SIMPLE_XPATH = re.compile(
    r"^[A-Za-z_][\w.-]*:[A-Za-z_][\w.-]*(/[A-Za-z_][\w.-]*:[A-Za-z_][\w.-]*)*$"
)


def _xml_getter(path: str, namespaces: dict[str, str]) -> Getter:
    """Compile an XPath; plain child paths (`p:A/p:B`) use the faster ElementPath."""
    if path == ".":
        return Getter(first=lambda node: node, all=lambda node: [node])
    if _SIMPLE_XPATH.match(path):
        steps = []
        for step in path.split("/"):
            prefix, local = step.split(":")
            if prefix not in namespaces:
                raise ValueError(f"undefined namespace prefix {prefix!r}")
            steps.append(f"{{{namespaces[prefix]}}}{local}")
        return _child_path_getter(steps)
    try:
        xpath = etree.XPath(path, namespaces=namespaces, smart_strings=False)
        xpath(etree.Element("probe"))  # undefined prefixes only show on evaluation
    except etree.XPathError as exc:
        raise ValueError(f"invalid XPath {path!r}: {exc}") from None

    def select(node: Any) -> list[Any]:
        result = xpath(node)
        return result if isinstance(result, list) else [result]

    def first(node: Any) -> Any:
        found = select(node)
        return found[0] if found else None

    up, _, rest = path.rpartition("../")
    if up.replace("../", "") == "" and _SIMPLE_XPATH.match(rest):
        # `../p:A`: the parent's child, without evaluating an XPath (~10x the cost).
        levels = path.count("../")
        child = _xml_getter(rest, namespaces).first

        def first_up(node: Any) -> Any:
            for _ in range(levels):
                node = node.getparent()
                if node is None:
                    return None
            return child(node)

        return Getter(first=first_up, all=select)
    return Getter(first=first, all=select)


def _child_path_getter(tags: list[str]) -> Getter:
    # lxml's find() runs ElementPath in Python (~2.3 us); iterchildren(tag) filters in C
    # (~0.7 us). A multi-step path takes the first match at each step.
    element_path = "/".join(tags)
    find_all = methodcaller("findall", element_path)
    if len(tags) == 1:
        tag = tags[0]
        return Getter(first=lambda node: next(node.iterchildren(tag), None), all=find_all)
    # Several steps: the first child at each step, in C; when that dead-ends, ElementPath
    # (a later A may hold the B the first one lacks), so `first` is the first of what
    # `all` finds either way.
    find = methodcaller("find", element_path)

    def first(node: Any) -> Any:
        found = node
        for tag in tags:
            found = next(found.iterchildren(tag), None)
            if found is None:
                return find(node)
        return found

    return Getter(first=first, all=find_all)


def _xml_text(node: Any) -> Any:
    if isinstance(node, etree._Element):
        if len(node) == 0:
            text = node.text
            return (text.strip() or None) if text else None
        if not any(isinstance(child.tag, str) for child in node):
            # Only comments or processing instructions inside: they split the text, not words.
            return "".join(node.xpath("text()")).strip() or None
        # The text of an element is the white-space-joined text of it and its descendants,
        # so a composite name (<Ho/><ChuDem/><Ten/>) reads as one full name.
        parts = [t.strip() for t in node.itertext(etree.Element)]
        return " ".join(p for p in parts if p) or None
    if isinstance(node, str):
        return node.strip() or None
    return node


def _index(part: str) -> bool:
    """A path part that is a list index: ASCII digits (`str.isdigit` takes any Unicode
    digit, and `int("²")` raises) in their plain form."""
    return part.isascii() and part.isdigit() and part == str(int(part))


def _json_getter(path: str, namespaces: dict[str, str]) -> Getter:
    if path == ".":
        return Getter(
            first=lambda node: node, all=lambda node: node if isinstance(node, list) else [node]
        )
    if not path or any(not part for part in path.split(".")):
        raise ValueError(f"invalid JSON path {path!r}")
    raw = path.split(".")
    parts: list[str | int] = [int(p) if _index(p) else p for p in raw]

    def select(node: Any) -> list[Any]:
        for part in parts:
            if isinstance(part, int) and isinstance(node, list):
                node = node[part] if part < len(node) else None
            elif isinstance(node, dict):  # a numeric part is a key here ("codes.01")
                node = node.get(str(part)) if isinstance(part, int) else node.get(part)
            else:
                return []
            if node is None:
                return []
        return node if isinstance(node, list) else [node]

    def first(node: Any) -> Any:
        found = select(node)
        return found[0] if found else None

    return Getter(first=first, all=select)


def _json_text(node: Any) -> Any:
    if isinstance(node, str):
        return node.strip() or None
    return node
