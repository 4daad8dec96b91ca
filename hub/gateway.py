"""The call pipeline every operation goes through, whichever route it came in by.

    authenticate -> find service/operation -> authorize (grant, purpose) -> validate input
    -> call the adapter (timeout, retry if idempotent, error translation) -> check output
    -> audit (durable before answering) -> metrics

Adapters contain only the upstream protocol and mapping; everything here wraps them the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from hub.adapter import CallContext, OperationSpec
from hub.audit import AuditWriter
from hub.auth import Authenticator, Principal
from hub.canonical.common import INVALID_PERSONAL_ID_ERROR
from hub.errors import HubError, InvalidPersonalId, SchemaViolation, Unauthenticated
from hub.metrics import Metrics
from hub.models import utcnow
from hub.registry import AdapterRegistry, LoadedAdapter
from hub.resilience import RetryPolicy, translate_upstream_errors

log = logging.getLogger("hub.gateway")


class CallCancelled(HubError):
    """Recorded in the audit trail when a call is cancelled mid-way (never sent to anyone)."""

    status, code, title = 499, "CANCELLED", "The call was cancelled"


@dataclass(frozen=True, slots=True)
class CallerHeaders:
    """What the HTTP layer hands the pipeline about the caller."""

    request_id: str
    authorization: str | None
    purpose: str | None = None
    officer_id: str | None = None
    dossier_id: str | None = None


@dataclass(frozen=True, slots=True)
class CallResult:
    """A successful call: the canonical output and what the envelope's `meta` needs."""

    data: dict[str, Any]
    service: str
    operation: str
    adapter_version: str
    duration_ms: float


class Gateway:
    """Runs operations for callers through the whole pipeline."""

    def __init__(
        self,
        *,
        registry: AdapterRegistry,
        authenticator: Authenticator,
        audit: AuditWriter,
        metrics: Metrics,
        retry: RetryPolicy,
        pseudonym_key: bytes,
    ) -> None:
        self.registry = registry
        self.authenticator = authenticator
        self.audit = audit
        self.metrics = metrics
        self.retry = retry
        self._pseudonym_key = pseudonym_key

    async def call(
        self,
        caller: CallerHeaders,
        service: str,
        operation: str,
        payload: Any | Callable[[], Awaitable[Any]],
    ) -> CallResult:
        """Run one operation for a caller; raises HubError subclasses for every refusal.

        `payload` may be a coroutine function (the route's body reader): it is awaited only
        after authentication, so an anonymous caller gets 401 whatever it sent, and a bad body
        from an authenticated one is audited like any other refusal.
        """
        started = time.perf_counter()
        try:
            principal = await self.authenticator.authenticate(caller.authorization)
        except Unauthenticated:
            self.metrics.auth_failures.inc()
            raise
        trace = _Trace(principal, caller, service, operation)
        try:
            loaded = self.registry.get(service)
            spec = loaded.spec(operation)
            trace.known = True  # metric labels only for real operations (bounded cardinality)
            principal.authorize(
                service, operation, personal_data=spec.personal_data, purpose=caller.purpose
            )
            if callable(payload):
                payload = await payload()
            request = validate_input(spec, payload)
            if spec.subject:
                trace.subject_id = getattr(request, spec.subject, None)
            data = await self._invoke(loaded, spec, request, caller, principal, trace)
        except HubError as exc:
            trace.fail(exc)
            await self._finish(trace, started)
            raise
        except asyncio.CancelledError:
            # The caller went away or the server is stopping: upstream may already have been
            # asked about the person, so the call is still recorded (the write is shielded).
            trace.fail(CallCancelled())
            await self._finish(trace, started)
            raise
        except Exception as exc:  # an adapter bug: still audited, still a clean problem+json
            log.exception(
                "unexpected error in %s:%s request_id=%s", service, operation, caller.request_id
            )
            error = HubError()
            trace.fail(error)
            await self._finish(trace, started)
            raise error from exc
        duration_ms = await self._finish(trace, started)
        return CallResult(data, service, operation, loaded.cls.version, duration_ms)

    async def _invoke(
        self,
        loaded: LoadedAdapter,
        spec: OperationSpec,
        request: BaseModel,
        caller: CallerHeaders,
        principal: Principal,
        trace: _Trace,
    ) -> dict[str, Any]:
        ctx = CallContext(
            request_id=caller.request_id,
            client_id=principal.client_id,
            client_name=principal.name,
            purpose=caller.purpose,
            officer_id=caller.officer_id,
            dossier_id=caller.dossier_id,
        )
        method = getattr(loaded.instance, spec.method)
        upstream = self.metrics.for_operation(trace.service, trace.operation).upstream

        async def attempt() -> Any:
            t0 = time.perf_counter()
            try:
                return await method(request, ctx)
            finally:
                elapsed = time.perf_counter() - t0
                trace.upstream_ms = (trace.upstream_ms or 0.0) + elapsed * 1000
                upstream.observe(elapsed)

        result = await self.retry.run(
            attempt,
            idempotent=spec.idempotent,
            timeout_s=loaded.timeout_s,
            on_retry=self.metrics.for_operation(trace.service, trace.operation).retries.inc,
        )
        return self._output(spec, result)

    @staticmethod
    def _output(spec: OperationSpec, result: Any) -> dict[str, Any]:
        with translate_upstream_errors():
            if not isinstance(result, spec.output_model):
                result = spec.output_model.model_validate(result)
        return result.model_dump(mode="json")

    async def _finish(self, trace: _Trace, started: float) -> float:
        duration = time.perf_counter() - started
        service, operation = (trace.service, trace.operation) if trace.known else ("-", "-")
        self.metrics.for_operation(service, operation).duration.observe(duration)
        self.metrics.requests.labels(
            trace.principal.client_id, service, operation, trace.code
        ).inc()
        if trace.error is not None:
            self._log_failure(trace)
        await self.audit.record(trace.audit_row(duration * 1000))
        return round(duration * 1000, 3)

    def _log_failure(self, trace: _Trace) -> None:
        exc = trace.error
        assert exc is not None
        level = logging.WARNING if exc.status >= 500 else logging.INFO
        log.log(
            level,
            "call failed request_id=%s client=%s %s:%s code=%s subject=%s context=%s",
            trace.caller.request_id,
            trace.principal.client_id,
            trace.service,
            trace.operation,
            exc.code,
            self.pseudonym(trace.subject_id),
            exc.log_context,
        )

    def pseudonym(self, value: str | None) -> str | None:
        """A keyed hash of a personal identifier, for logs (never the identifier in clear)."""
        if value is None:
            return None
        return "psn_" + hmac.digest(self._pseudonym_key, value.encode(), hashlib.sha256).hex()[:16]


class _Trace:
    """What one call accumulates for its audit record and metrics."""

    __slots__ = (
        "caller",
        "code",
        "error",
        "known",
        "operation",
        "principal",
        "service",
        "status",
        "subject_id",
        "upstream_ms",
    )

    def __init__(self, principal: Principal, caller: CallerHeaders, service: str, operation: str):
        self.principal, self.caller = principal, caller
        self.service, self.operation = service, operation
        self.subject_id: str | None = None
        self.upstream_ms: float | None = None
        self.status, self.code = 200, "OK"
        self.error: HubError | None = None
        self.known = False

    def fail(self, exc: HubError) -> None:
        self.error, self.status, self.code = exc, exc.status, exc.code

    def audit_row(self, duration_ms: float) -> dict[str, Any]:
        return {
            "at": utcnow(),
            "request_id": self.caller.request_id,
            "client_id": self.principal.client_id,
            "service": self.service[:64],
            "operation": self.operation[:64],
            "purpose": _clip(self.caller.purpose, 64),
            "officer_id": _clip(self.caller.officer_id, 128),
            "dossier_id": _clip(self.caller.dossier_id, 128),
            "subject_id": self.subject_id,
            "status": self.status,
            "code": self.code,
            "duration_ms": round(duration_ms, 3),
            "upstream_ms": None if self.upstream_ms is None else round(self.upstream_ms, 3),
        }


def _clip(value: str | None, size: int) -> str | None:
    return None if value is None else value[:size]


def validate_input(spec: OperationSpec, payload: Any) -> BaseModel:
    """Validate an operation's input; a bad personal ID is 400, other schema errors 422.

    The errors name the field and the rule, never the submitted value (it may be personal).
    """
    if not isinstance(payload, dict):
        raise SchemaViolation("the request body must be a JSON object")
    try:
        return spec.input_model.model_validate(payload)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False, include_context=False)
        for error in errors:
            if error["type"] == INVALID_PERSONAL_ID_ERROR:
                raise InvalidPersonalId(error["msg"]) from None
        raise SchemaViolation.from_errors(errors) from None
