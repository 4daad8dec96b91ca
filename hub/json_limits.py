"""Bounds on decoded JSON, for what the hub reads from callers (hub.api.deps) and from
upstream systems (hub.upstream.response_json) alike: one walk, two ways to refuse."""

from __future__ import annotations

from typing import Any

__all__ = ["json_limit_exceeded"]

_CONTAINERS = (dict, list)  # a tuple: isinstance checks it faster than `dict | list`


def json_limit_exceeded(value: Any, max_depth: int, max_items: int) -> str | None:
    """Which bound decoded JSON passes, as a phrase ("is nested deeper than 32 levels",
    "holds more than 10000 elements"), or None within both.

    Depth counts nested containers, items the array elements and object members of every
    level together; scalars add no depth: `{"a": [1]}` is two deep and holds two items. An
    iterative walk (no recursion to exhaust) that stops at the first bound passed, so it
    costs at most `max_items` steps whatever the value holds.
    """
    if not isinstance(value, dict | list):
        return None
    items, depth, level = 0, 0, [value]
    while level:  # one level of containers at a time: measured twice as fast as a stack
        depth += 1
        if depth > max_depth:
            return f"is nested deeper than {max_depth} levels"
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            items += len(children)
            if items > max_items:
                return f"holds more than {max_items} elements"
            below += [child for child in children if isinstance(child, _CONTAINERS)]
        level = below
    return None
