"""Loading a mapping: its file parsed (spec), checked against the adapter's canonical models,
and compiled to the engine's closures. Every mistake is a `MappingError` with its line, at the
hub's start-up, never in the middle of a request.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

from hub.mapping.engine import (
    Builder,
    CompiledField,
    Mapping,
    OperationMapping,
    compile_field,
    object_builder,
)
from hub.mapping.paths import (
    _SIMPLE_XPATH,
    Getter,
    _json_getter,
    _json_text,
    _xml_getter,
    _xml_text,
)
from hub.mapping.spec import (
    FieldSpec,
    FieldValue,
    MappingError,
    MappingFile,
    _line_of,
    parse_mapping,
)
from hub.mapping.transforms import _compile_transform


def load_mapping(
    source: str | Path,
    text: str | None = None,
    *,
    models: MappingABC[str, type[BaseModel]] | None = None,
) -> Mapping:
    """Parse, check and compile a mapping file.

    `models` maps operation names to their canonical output models: every mapped field must
    exist in the model, and every required model field must be mapped. Raises MappingError.
    """
    name = str(source)
    raw, spec = parse_mapping(source, text)
    return _Compiler(name, raw, spec, models or {}).compile()


class _Compiler:
    def __init__(
        self, source: str, raw: Any, spec: MappingFile, models: MappingABC[str, type[BaseModel]]
    ) -> None:
        self.source, self.raw, self.spec, self.models = source, raw, spec, models
        self.make_getter = _xml_getter if spec.format == "xml" else _json_getter
        self.text = _xml_text if spec.format == "xml" else _json_text

    def fail(self, loc: tuple[Any, ...], message: str) -> MappingError:
        return MappingError(self.source, _line_of(self.raw, loc), message)

    def compile(self) -> Mapping:
        result = Mapping(self.source, self.spec.format, dict(self.spec.namespaces))
        for missing in set(self.models) - set(self.spec.operations):
            raise self.fail(("operations",), f"operation {missing!r} has no mapping")
        for op_name, op in self.spec.operations.items():
            loc: tuple[Any, ...] = ("operations", op_name)
            if self.models and op_name not in self.models:
                raise self.fail(loc, f"operation {op_name!r} is not an operation of the adapter")
            root = self._getter(op.root, (*loc, "root")) if op.root else None
            build = self._fields(op.fields, self.models.get(op_name), (*loc, "fields"), [])
            result.operations[op_name] = OperationMapping(op_name, root, build)
        return result

    def _getter(self, path: str, loc: tuple[Any, ...]) -> Getter:
        try:
            return self.make_getter(path, self.spec.namespaces)
        except ValueError as exc:
            raise self.fail(loc, str(exc)) from None

    def _fields(
        self,
        fields: dict[str, FieldValue],
        model: type[BaseModel] | None,
        loc: tuple[Any, ...],
        seen_objects: list[str],
    ) -> Builder:
        if model is not None:
            for fname, finfo in model.model_fields.items():
                if finfo.is_required() and fname not in fields:
                    raise self.fail(
                        loc, f"required field {fname!r} of {model.__name__} is not mapped"
                    )
        return object_builder(
            [
                self._field(fname, value, model, (*loc, fname), seen_objects)
                for fname, value in fields.items()
            ]
        )

    def _field(
        self,
        fname: str,
        value: FieldValue,
        model: type[BaseModel] | None,
        loc: tuple[Any, ...],
        seen_objects: list[str],
    ) -> CompiledField:
        spec = FieldSpec(path=value) if isinstance(value, str) else value
        sub_model = None
        if model is not None:
            if fname not in model.model_fields:
                raise self.fail(loc, f"{model.__name__} has no field {fname!r}")
            sub_model = _nested_model(model.model_fields[fname].annotation)
        if model is not None:
            self._check_shape(fname, spec, model.model_fields[fname].annotation, sub_model, loc)
        names = [spec.transform] if isinstance(spec.transform, str) else spec.transform
        if spec.object is not None and names:
            raise self.fail(loc, f"field {fname!r}: `transform` does not apply to an `object`")
        try:
            transforms = [_compile_transform(n, self.spec.codes) for n in names]
        except ValueError as exc:
            raise self.fail(loc, str(exc)) from None
        build = None
        if spec.object is not None:
            build = self._object(spec.object, sub_model, loc, seen_objects)
        elif sub_model is not None:
            raise self.fail(loc, f"field {fname!r} is an object: give `object:`")
        getter = self._getter(spec.path, loc)
        tag = self._child_tag(spec.path) if not spec.many else None
        return compile_field(
            fname, getter, self.text, transforms, spec.default, spec.many, build, tag
        )

    def _check_shape(
        self,
        fname: str,
        spec: FieldSpec,
        annotation: Any,
        sub_model: type[BaseModel] | None,
        loc: tuple[Any, ...],
    ) -> None:
        """`many` exactly for list fields, `object` exactly for model fields."""
        is_list = _is_list(annotation)
        if spec.many and not is_list:
            raise self.fail(loc, f"field {fname!r} is not a list: drop `many`")
        if is_list and not spec.many:
            raise self.fail(loc, f"field {fname!r} is a list: give `many: true`")
        if spec.object is not None and sub_model is None:
            raise self.fail(loc, f"field {fname!r} is not an object: drop `object`")

    def _child_tag(self, path: str) -> str | None:
        """The Clark-notation tag of a one-step `prefix:Name` XML path, else None."""
        if self.spec.format != "xml" or "/" in path or not _SIMPLE_XPATH.match(path):
            return None
        prefix, local = path.split(":")
        return f"{{{self.spec.namespaces[prefix]}}}{local}"

    def _object(
        self, name: str, model: type[BaseModel] | None, loc: tuple[Any, ...], seen: list[str]
    ) -> Builder:
        if name not in self.spec.objects:
            raise self.fail(loc, f"unknown object {name!r}")
        if name in seen:
            raise self.fail(loc, f"object {name!r} contains itself")
        return self._fields(self.spec.objects[name], model, ("objects", name), [*seen, name])


def _is_list(annotation: Any) -> bool:
    """Whether a field's type is a list (possibly optional)."""
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    if origin in (Union, UnionType):  # Optional[list[X]]
        return any(_is_list(arg) for arg in get_args(annotation))
    return False


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The BaseModel inside `X | None` or `list[X]`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is not None:
        for arg in get_args(annotation):
            found = _nested_model(arg)
            if found is not None:
                return found
    return None
