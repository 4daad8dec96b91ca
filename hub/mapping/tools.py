"""Mapping tooling for integrators: `hub mappings check` and `hub mappings try`.

- `check_upstream_paths` reads a mapping next to its upstream's own description and reports
  every path that names something the upstream does not have, as `file:line: message`:
  for XML, each element or attribute an XPath steps through must be declared in the WSDL's
  (or an XSD's) schema; for JSON, each dotted path must walk the JSON Schema's `properties`
  and `items` from the operation's `root`, through nested objects. Start-up already checks
  the other side (canonical fields, transforms, code lists): together they cover a mapping
  from end to end without calling upstream.
- `try_mapping` applies one operation's mapping to a sample answer saved from upstream (a
  SOAP envelope, plain XML or JSON) and returns the canonical result, validated by the
  operation's output model when the adapter is known, and always as JSON.

Both read files only: nothing here runs at the hub's start-up or on a request, and
`hub.mapping` does not import this module. Outside packages import these names from
`hub.mapping_tools`, which re-exports them (their tests call `check_upstream_paths`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from collections.abc import Mapping as MappingABC
from pathlib import Path
from typing import Any

from lxml import etree
from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from hub.mapping.compiler import load_mapping
from hub.mapping.spec import (
    FieldSpec,
    FieldValue,
    MappingError,
    MappingFile,
    line_of,
    parse_mapping,
)
from hub.soap import SoapFault, parse_response, safe_parser

__all__ = [
    "SampleError",
    "check_upstream_paths",
    "load_sample",
    "try_mapping",
    "upstream_names",
]

XSD = "http://www.w3.org/2001/XMLSchema"
SOAP_ENVELOPES = (
    "{http://schemas.xmlsoap.org/soap/envelope/}Envelope",
    "{http://www.w3.org/2003/05/soap-envelope}Envelope",
)
# One XPath step: an optional axis, `@` for an attribute, an optional prefix, the name (or a
# node test such as text()), then any predicates (checked separately).
_STEP = re.compile(
    r"^(?:(?P<axis>[a-z-]+)::)?(?P<at>@)?(?:(?P<prefix>[\w.-]+):)?(?P<name>[\w.-]+|\*)"
    r"(?P<call>\(\))?(?P<predicates>\[.*\])?$"
)
_PREFIXED = re.compile(
    r"(?<![\w:@$])(?P<at>@)?(?P<prefix>[A-Za-z_][\w.-]*):(?P<name>[A-Za-z_][\w.-]*)(?![\w(:])"
)


# -- the upstream's names -----------------------------------------------------------------


def upstream_names(schema_file: str | Path) -> tuple[set[str], set[str]]:
    """The element and attribute local names a WSDL's or XSD's schemas declare."""
    tree = etree.parse(str(schema_file), safe_parser())
    elements = {str(e.get("name")) for e in tree.iter(f"{{{XSD}}}element") if e.get("name")}
    attributes = {str(a.get("name")) for a in tree.iter(f"{{{XSD}}}attribute") if a.get("name")}
    return elements, attributes


def _xml_names(path: str) -> Iterator[tuple[bool, str]]:
    """(is_attribute, local name) of every name an XPath steps through or tests."""
    for step in path.split("/"):
        step = step.strip()
        if step in ("", ".", ".."):
            continue
        match = _STEP.match(step)
        if match is None:  # something richer than a location step: fall back to prefixed names
            for token in _PREFIXED.finditer(step):
                yield bool(token["at"]), token["name"]
            continue
        if match["call"] is None and match["name"] != "*":
            yield bool(match["at"]) or match["axis"] == "attribute", match["name"]
        for token in _PREFIXED.finditer(match["predicates"] or ""):
            yield bool(token["at"]), token["name"]


# -- JSON Schema walking -------------------------------------------------------------------


def _resolve(schema: Any, root: Any) -> list[Any]:
    """A schema node with `$ref`s followed and `allOf`/`anyOf`/`oneOf` spread out."""
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema and isinstance(schema["$ref"], str) and schema["$ref"].startswith("#/"):
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return _resolve(target, root)
    nodes = [schema]
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            nodes.extend(_resolve(sub, root))
    return nodes


def _step(nodes: list[Any], segment: str, root: Any) -> list[Any] | None:
    """The schema nodes one dotted segment leads to; None when none has it."""
    found: list[Any] = []
    for node in nodes:
        if segment.isdigit() and "items" in node:
            items = node["items"]
            found.extend(_resolve(items if isinstance(items, dict) else {}, root))
        elif segment in (node.get("properties") or {}):
            found.extend(_resolve(node["properties"][segment], root))
        elif isinstance(node.get("additionalProperties"), dict):
            found.extend(_resolve(node["additionalProperties"], root))
    return found or None


def _walk(nodes: list[Any], path: str, root: Any) -> tuple[list[Any] | None, str | None]:
    """The nodes at a dotted path, or (None, the first segment upstream does not have)."""
    for segment in (s for s in path.split(".") if s):
        stepped = _step(nodes, segment, root)
        if stepped is None:
            return None, segment
        nodes = stepped
    return nodes, None


def _items(nodes: list[Any], root: Any) -> list[Any]:
    """For a `many` field: the schema of one element of the list found."""
    found: list[Any] = []
    for node in nodes:
        items = node.get("items")
        found.extend(_resolve(items, root) if isinstance(items, dict) else [node])
    return found


# -- the check -----------------------------------------------------------------------------


def check_upstream_paths(
    mapping_file: str | Path, schema_file: str | Path, *, text: str | None = None
) -> list[MappingError]:
    """Every path of a mapping that the upstream's schema does not have, as errors with the
    mapping's file and line. XML mappings take a WSDL or XSD; JSON mappings a JSON Schema."""
    source = str(mapping_file)
    raw, spec = parse_mapping(source, text)
    schema_name = Path(schema_file).name
    errors: list[MappingError] = []

    def fail(loc: tuple[Any, ...], message: str) -> None:
        errors.append(MappingError(source, line_of(raw, loc), message))

    if spec.format == "xml":
        elements, attributes = upstream_names(schema_file)
        for where, path in _all_paths(spec):
            for is_attribute, name in _xml_names(path):
                if name not in (attributes if is_attribute else elements):
                    kind = "attribute" if is_attribute else "element"
                    fail(where, f"{_where(where)}: no {kind} {name!r} in {schema_name}")
        return errors

    document = json.loads(Path(schema_file).read_text(encoding="utf-8"))
    for op_name, op in spec.operations.items():
        loc: tuple[Any, ...] = ("operations", op_name)
        nodes: list[Any] | None = _resolve(document, document)
        if op.root:
            nodes, missing = _walk(nodes or [], op.root, document)
            if nodes is None:
                fail(
                    (*loc, "root"),
                    f"{_where((*loc, 'root'))}: no field {missing!r} in {schema_name}",
                )
                continue
        _check_json_fields(
            spec, op.fields, nodes or [], document, (*loc, "fields"), [], fail, schema_name
        )
    return errors


def _check_json_fields(
    spec: MappingFile,
    fields: MappingABC[str, FieldValue],
    nodes: list[Any],
    document: Any,
    loc: tuple[Any, ...],
    seen: list[str],
    fail: Any,
    schema_name: str,
) -> None:
    for fname, value in fields.items():
        field = FieldSpec(path=value) if isinstance(value, str) else value
        where = (*loc, fname)
        found, missing = _walk(nodes, field.path, document)
        if found is None:
            fail(where, f"{_where(where)}: no field {missing!r} in {schema_name}")
            continue
        if field.object is not None and field.object in spec.objects and field.object not in seen:
            inner = _items(found, document) if field.many else found
            _check_json_fields(
                spec,
                spec.objects[field.object],
                inner,
                document,
                ("objects", field.object),
                [*seen, field.object],
                fail,
                schema_name,
            )


def _all_paths(spec: MappingFile) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(location, path) of every path in the file (XML checks need no context)."""
    for op_name, op in spec.operations.items():
        if op.root:
            yield ("operations", op_name, "root"), op.root
        for fname, value in op.fields.items():
            yield ("operations", op_name, "fields", fname), _path(value)
    for obj_name, fields in spec.objects.items():
        for fname, value in fields.items():
            yield ("objects", obj_name, fname), _path(value)


def _path(value: FieldValue) -> str:
    return value if isinstance(value, str) else value.path


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


# -- trying a mapping on a sample ----------------------------------------------------------


class SampleError(Exception):
    """A sample that cannot be read, or is not in the mapping's format."""


def load_sample(sample_file: str | Path) -> Any:
    """A saved upstream answer as the mapping sees it: the first child of a SOAP Body, the
    root of other XML (parsed without entities or DTDs), or decoded JSON."""
    content = Path(sample_file).read_bytes()
    try:
        if content.lstrip()[:1] in (b"{", b"["):
            return json.loads(content)
        root = etree.fromstring(content, safe_parser())
        if root.getroottree().docinfo.internalDTD is not None:
            raise SampleError("the sample carries a DTD: not read (entity tricks)")
        if root.tag in SOAP_ENVELOPES:
            return parse_response(content).payload
        return root
    except (ValueError, etree.LxmlError) as exc:
        raise SampleError(f"the sample is neither JSON nor XML ({type(exc).__name__})") from None
    except SoapFault as fault:
        raise SampleError(f"the sample is a SOAP fault ({fault.faultcode})") from None


def try_mapping(
    mapping_file: str | Path,
    sample_file: str | Path,
    *,
    operation: str | None = None,
    models: MappingABC[str, type[BaseModel]] | None = None,
) -> tuple[str, dict[str, Any]]:
    """(operation, canonical result) of a mapping applied to a sample answer. With the
    adapter's `models`, the result is validated by the operation's output model (raises
    pydantic's ValidationError) and given as its JSON form. Raises MappingError,
    MappingValueError, SampleError, or LookupError for an operation the file does not map."""
    mapping = load_mapping(str(mapping_file), models=models)
    names = sorted(mapping.operations)
    if operation is None:
        if len(names) != 1:
            raise LookupError(f"the mapping has several operations: give one of {', '.join(names)}")
        operation = names[0]
    if operation not in mapping.operations:
        raise LookupError(f"no operation {operation!r} in the mapping (it has {', '.join(names)})")
    payload = load_sample(sample_file)
    if isinstance(payload, etree._Element) != (mapping.format == "xml"):
        found = "XML" if isinstance(payload, etree._Element) else "JSON"
        raise SampleError(f"the mapping reads {mapping.format.upper()}; the sample is {found}")
    result = mapping.operation(operation).apply(payload)
    model = (models or {}).get(operation)
    if model is not None:
        return operation, model.model_validate(result).model_dump(mode="json")
    # No model to validate with (the adapter not found): the mapped values as JSON still
    # (a `date:` transform gives a date), the way pydantic would render them.
    return operation, to_jsonable_python(result)
