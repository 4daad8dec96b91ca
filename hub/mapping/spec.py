"""The mapping file's format: its schema, its YAML read with the line of every key, and
`MappingError`, which names that line (`file:line: what is wrong`).

`parse_mapping` checks a file's shape only; `hub.mapping.compiler.load_mapping` goes on to
check it against the adapter's models and compile it. The language is in docs/mappings.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class MappingError(Exception):
    """A mapping file is invalid; the message starts with `file:line:`."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source, self.line, self.message = source, line, message
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {message}")


# --------------------------------------------------------------------------------------
# YAML with line numbers


class _LineDict(dict[str, Any]):
    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader whose mappings remember the line of each key."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LineDict:
    result = _LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise MappingError("", key_node.start_mark.line + 1, f"duplicate key {key!r}")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[str(key)] = key_node.start_mark.line + 1
    return result


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line_of(doc: Any, loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest node of `loc` that has one."""
    line = getattr(doc, "line", None)
    node = doc
    for part in loc:
        if isinstance(node, _LineDict) and str(part) in node:
            line = node.key_lines.get(str(part), line)
            node = node[str(part)]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            line = getattr(node, "line", line)
        else:
            break
    return line


# --------------------------------------------------------------------------------------
# The file's schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldSpec(_Strict):
    path: str = Field(description="XPath (xml) or dotted path (json), relative to the root")
    transform: str | list[str] = Field(default_factory=list)
    default: Any = Field(None, description="value when the path finds nothing")
    object: str | None = Field(None, description="name of an `objects` entry for a nested shape")
    many: bool = Field(False, description="all matches, as a list")


FieldValue = str | FieldSpec


class OperationSpec(_Strict):
    root: str | None = None
    fields: dict[str, FieldValue] = Field(default_factory=dict)
    object: str | None = Field(
        None, description="an `objects` entry that is the operation's whole field set"
    )

    @model_validator(mode="after")
    def _fields_or_object(self) -> OperationSpec:
        if (self.object is None) == (not self.fields):
            raise ValueError("an operation takes `fields` or `object` (an `objects` entry)")
        return self


class MappingFile(_Strict):
    format: Literal["xml", "json"]
    service: str | None = None
    namespaces: dict[str, str] = Field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = Field(default_factory=dict)
    objects: dict[str, dict[str, FieldValue]] = Field(default_factory=dict)
    operations: dict[str, OperationSpec]


# --------------------------------------------------------------------------------------
# Reading a file


def parse_mapping(source: str | Path, text: str | None = None) -> tuple[Any, MappingFile]:
    """Read a mapping file's YAML and check its shape: the raw document (whose nodes know
    their line, for `line_of`) and the validated `MappingFile`. Raises MappingError."""
    name = str(source)
    if text is None:
        text = Path(source).read_text(encoding="utf-8")
    try:
        raw = yaml.load(text, Loader=_LineLoader)
    except MappingError as exc:
        raise MappingError(name, exc.line, exc.message) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise MappingError(
            name, mark.line + 1 if mark else None, f"not valid YAML: {exc}"
        ) from None
    if not isinstance(raw, dict):
        raise MappingError(name, 1, "a mapping file is a YAML mapping")
    try:
        spec = MappingFile.model_validate(raw)
    except ValidationError as exc:
        # A union (path string or field object) reports one error per branch: the deepest
        # one is the branch the author meant.
        first = max(exc.errors(), key=lambda e: len(e["loc"]))
        loc = tuple(p for p in first["loc"] if p not in ("str", "FieldSpec"))
        where = ".".join(str(p) for p in loc)
        raise MappingError(name, _line_of(raw, loc), f"{where}: {first['msg']}") from None
    _reuse_objects(name, raw, spec)
    return raw, spec


def _reuse_objects(name: str, raw: Any, spec: MappingFile) -> None:
    """An operation whose field set is an `objects` entry (`object: record`) gets that
    entry's fields, and the raw document points there too, so that a problem in one of them
    is reported at its line in `objects`."""
    for op_name, op in spec.operations.items():
        if op.object is None:
            continue
        if op.object not in spec.objects:
            loc = ("operations", op_name, "object")
            raise MappingError(name, _line_of(raw, loc), f"no object {op.object!r} in `objects`")
        op.fields = dict(spec.objects[op.object])
        raw["operations"][op_name]["fields"] = raw["objects"][op.object]


def line_of(raw: Any, loc: tuple[Any, ...]) -> int | None:
    """The line in a parsed mapping document (parse_mapping's first result) of `loc`."""
    return _line_of(raw, loc)
