"""The checks of an adapter whose upstream answers: its catalogue entry, its samples, each
sample through the hub's pipeline, unknown subjects as NOT_FOUND, and its health probe."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from hub.adapter import Health
from hub.audit.subjects import personal_id_paths
from hub.errors import NotFound
from hub.testing.base import ConformanceBase, _over
from hub.testing.faults import Answer
from hub.testing.leaks import _assert_clean, _forbidden


def _has_object_schema(schema: Mapping[str, Any]) -> bool:
    """pydantic's shape of a model's schema: an object with properties, or a $ref into $defs."""
    if schema.get("type") == "object" and isinstance(schema.get("properties"), dict):
        return True
    ref, defs = schema.get("$ref"), schema.get("$defs")
    if isinstance(ref, str) and isinstance(defs, dict) and ref.startswith("#/$defs/"):
        target = defs.get(ref.removeprefix("#/$defs/"))
        return isinstance(target, dict) and target.get("type") == "object"
    return False


def _dangling_refs(schema: Mapping[str, Any]) -> list[str]:
    """Every local `$ref` of a schema that names no entry of its `$defs`."""
    found = schema.get("$defs")
    defs: Mapping[str, Any] = found if isinstance(found, dict) else {}
    dangling: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not (
                ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in defs
            ):
                dangling.append(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return dangling


def _assert_expected(operation: str, data: Any, expected: Mapping[str, Any] | None) -> None:
    """Each field `expected` gives is what the sample answered."""
    if expected is None:
        return
    wrong = {
        name: {"expected": value, "answered": data.get(name, "(missing)")}
        for name, value in expected.items()
        if data.get(name, _MISSING) != value
    }
    assert not wrong, f"{operation}: the sample's answer is not the expected one: {wrong}"


_MISSING = object()


class PipelineChecks(ConformanceBase):
    """The battery's checks against a mock that answers as upstream should."""

    # -- 1. the catalogue entry --------------------------------------------------------------

    def test_catalogue_entry(self) -> None:
        """describe() is JSON, names the adapter, and each operation's schemas are pydantic
        JSON Schema objects whose references resolve."""
        adapter = self._adapter_cls()
        entry = adapter.describe()
        json.dumps(entry, allow_nan=False)  # TypeError/ValueError: not JSON-serialisable
        assert entry["name"] == adapter.name and isinstance(adapter.name, str) and adapter.name
        assert isinstance(entry["version"], str) and entry["version"], "no version"
        operations = entry["operations"]
        assert isinstance(operations, list) and operations, "no operation"
        names = [op["name"] for op in operations]
        assert len(names) == len(set(names)), f"duplicate operation names: {names}"
        for op in operations:
            assert op["summary"], f"{op['name']}: no summary (the method's docstring)"
            for key in ("input_schema", "output_schema"):
                schema = op[key]
                assert isinstance(schema, dict), f"{op['name']}.{key} is not an object"
                assert _has_object_schema(schema), (
                    f"{op['name']}.{key} is not an object schema with properties: {schema}"
                )
                dangling = _dangling_refs(schema)
                assert not dangling, f"{op['name']}.{key}: unresolved $ref {dangling}"

    def test_samples_cover_the_operations(self) -> None:
        """Every operation named in samples, unknown and exempt exists; every operation
        not served by its own route has a sample or an exemption; static inputs validate."""
        cls = type(self)
        operations = self._adapter_cls().operations
        for attr in ("samples", "unknown", "exempt"):
            strays = sorted(set(getattr(cls, attr)) - set(operations))
            assert not strays, f"`{attr}` names no such operation: {strays}"
        for name, reason in cls.exempt.items():
            assert isinstance(reason, str) and reason.strip(), f"exempt {name!r}: give a reason"
            assert name not in cls.samples, f"{name!r} is both sampled and exempt"
        missing = sorted(
            name
            for name, spec in operations.items()
            if spec.route is None and name not in cls.samples and name not in cls.exempt
        )
        assert not missing, f"operations with neither a sample nor an exemption: {missing}"
        for attr in ("samples", "unknown"):
            for name, sample in getattr(cls, attr).items():
                if callable(sample):
                    continue  # resolved against the running mock
                try:
                    operations[name].input_model.model_validate(dict(sample))
                except Exception as exc:
                    raise AssertionError(f"`{attr}[{name!r}]` is not a valid input: {exc}") from exc

    def test_personal_data_is_declared(self) -> None:
        """An operation whose input or output carries a personal ID (a field named
        `personal_id` or `…_personal_id`, at any depth) is `personal_data=True` (else no
        purpose is asked), names its input's personal ID as `subject`, and lists every
        person its output names in `subject_from` (else their access report misses it)."""
        problems = []
        for name, spec in self._adapter_cls().operations.items():
            inputs = personal_id_paths(spec.input_model)
            outputs = personal_id_paths(spec.output_model)
            if not (inputs or outputs):
                continue
            if not spec.personal_data:
                problems.append(f"{name}: carries {(inputs + outputs)[0]!r}, personal_data=False")
            if inputs and spec.subject not in inputs:
                problems.append(f"{name}: input {inputs[0]!r} is not declared as `subject`")
            for path in outputs:
                echo = spec.subject is not None and path == spec.subject
                if not echo and path not in spec.subject_from:
                    problems.append(f"{name}: output {path!r} is not in `subject_from`")
        assert not problems, "; ".join(problems)

    # -- 2. every sample answers its output model --------------------------------------------

    @_over("samples")
    def test_sample_answers_its_output_model(self, operation: str, tmp_path: Path) -> None:
        """The sample, through the hub's pipeline against the mock, answers the operation's
        output model, and what `expected` gives; the mock's answers on the way fit the
        adapter's upstream JSON Schema."""
        spec = self._spec(operation)

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                payload = await kit.resolve(self.samples[operation])
                before = len(kit.transport.requests)
                with kit.transport.record() as answers:
                    data = await kit.call(operation, payload)
                assert len(kit.transport.requests) > before, "no upstream request was made"
                model: type[BaseModel] = spec.output_model
                model.model_validate(data)
                json.dumps(data, allow_nan=False)
                _assert_expected(operation, data, type(self).expected.get(operation))
                self._assert_answers_fit_the_schema(answers)

        self._run(check)

    def _assert_answers_fit_the_schema(self, answers: list[Answer]) -> None:
        """The mock's answers, against the adapter's `upstream_schema` when it is a JSON
        Schema (a WSDL is held to the mock by the adapter's own tests, with zeep)."""
        adapter_cls = self._adapter_cls()
        declared = adapter_cls.upstream_schema
        if not declared or not declared.endswith(".json"):
            return
        from jsonschema import Draft202012Validator  # the `testing` extra brings it

        from hub.core.registry import resource_path

        schema = json.loads(resource_path(declared, adapter_cls).read_text(encoding="utf-8"))
        validator = Draft202012Validator(schema)
        select = type(self).upstream_answers
        for answer in answers:
            try:
                body = json.loads(answer.body)
            except ValueError:
                continue  # not JSON: the schema says nothing of it
            if select is not None:
                subject = select(answer.request, body)
            else:
                subject = body if 200 <= answer.status_code < 300 else None
            if subject is None:
                continue
            problems = [
                f"{'/'.join(map(str, e.absolute_path)) or '(the answer)'}: {e.message[:200]}"
                for e in validator.iter_errors(subject)
            ]
            assert not problems, (
                f"the mock's answer to {answer.request.method} {answer.request.url.path} "
                f"breaks {declared}: {problems}"
            )

    # -- 3. unknown subject -> NotFound ------------------------------------------------------

    @_over("unknown")
    def test_unknown_subject_is_not_found(self, operation: str, tmp_path: Path) -> None:
        """An input upstream does not know is 404 NOT_FOUND (hub.errors.NotFound)."""

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                payload = await kit.resolve(self.unknown[operation])
                exc = await kit.error(operation, payload)
                assert isinstance(exc, NotFound) and exc.code == "NOT_FOUND", (
                    f"expected NotFound (404 NOT_FOUND), got {type(exc).__name__} "
                    f"({exc.status} {exc.code})"
                )
                _assert_clean("not found", exc, _forbidden(kit, payload))

        self._run(check)

    # -- 4. health against the mock ----------------------------------------------------------

    def test_health_is_ok_against_the_mock(self, tmp_path: Path) -> None:
        """health() answers ok against the mock."""

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                health = await kit.adapter.health()
                assert isinstance(health, Health), f"health() returned {health!r}"
                assert health.ok, f"health() is not ok against the mock: {health}"

        self._run(check)
