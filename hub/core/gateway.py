"""The call pipeline every operation goes through, whichever route it came in by.

    authenticate -> find service/operation -> authorize (grant, purpose) -> validate input
    -> call the adapter (timeout, retry if idempotent, error translation: upstream's failures
       to Upstream* errors, any other exception to AdapterError) -> check output (the model,
       re-validated; AdapterError otherwise)
    -> audit (durable before answering) -> metrics

Adapters contain only the upstream protocol and mapping; everything here wraps them the same.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel

from hub.adapter import CallContext, OperationSpec
from hub.audit.subjects import assign, subjects_in
from hub.audit.writer import AuditWriter
from hub.core.adapter_faults import adapter_error, checked_output
from hub.core.caller import CallerHeaders, check_caller, clip, shaped, validate_input
from hub.core.metrics import Metrics
from hub.core.models import utcnow
from hub.core.registry import AdapterRegistry, LoadedAdapter
from hub.errors import (
    AdapterError,
    CallCancelled,
    Forbidden,
    HubError,
    Unauthenticated,
)
from hub.resilience.retry import RetryPolicy, is_upstream_exception
from hub.security.auth import Authenticator, Principal
from hub.security.fields import paths_of
from hub.security.fields import trim as cut_fields
from hub.security.ratelimit import RateLimiter
from hub.security.verification import VerificationGuard, verification_fields

log = logging.getLogger("hub.gateway")


@dataclass(frozen=True, slots=True)
class CallResult:
    """A successful call: the canonical output and what the envelope's `meta` needs."""

    data: dict[str, Any]
    service: str
    operation: str
    adapter_version: str
    duration_ms: float
    client_id: str = ""


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
        limiter: RateLimiter | None = None,
        verifications: VerificationGuard | None = None,
    ) -> None:
        self.limiter = limiter
        #: Throttles and alerts of `@operation(verification=…)` (hub.security.verification).
        self.verifications = verifications
        self.registry = registry
        self.authenticator = authenticator
        self.audit = audit
        self.metrics = metrics
        self.retry = retry
        self._pseudonym_key = pseudonym_key

    async def admit(self, principal: Principal) -> None:
        """Count one request of this client against the rate limits (429 past them). Done
        once per HTTP request: by `call` and `local` when they authenticate it, by a route
        that authenticates itself."""
        if self.limiter is not None:
            await self.limiter.check(principal.client_id, principal.rate_per_minute)

    async def authenticate(self, caller: CallerHeaders) -> Principal:
        """The caller's principal (401 otherwise), for routes that need it before the call."""
        try:
            return await self.authenticator.authenticate(caller.authorization)
        except Unauthenticated:
            self.metrics.auth_failures.inc()
            raise

    async def call(
        self,
        caller: CallerHeaders,
        service: str,
        operation: str,
        payload: Any | Callable[[], Awaitable[Any]],
        *,
        principal: Principal | None = None,
        authorize: bool = True,
        subject_id: str | None = None,
        generic: bool = False,
        trim: bool = True,
    ) -> CallResult:
        """Run one operation for a caller; raises HubError subclasses for every refusal.

        `payload` may be a coroutine function (the route's body reader): it is awaited only
        after authentication, so an anonymous caller gets 401 whatever it sent, and a bad body
        from an authenticated one is audited like any other refusal.

        `principal` skips authentication (the route authenticated already); `authorize=False`
        is for the hub's own background work on behalf of a client (polling a job it
        submitted), which that client was authorized for when it asked. `subject_id` names
        the data subject for the audit record when the input does not (a job's status).
        `generic` is the generic route's call: operations served by a resource route of
        their own (`@operation(route=...)`) are refused there.

        The answer is cut to the fields the principal is granted for the service, and the
        audit record lists what is left: what goes out to the client. `trim=False` is for
        the hub's own use of the answer (a job's submission, a payment's opening): the
        whole canonical output comes back, and the record lists no fields, since none of
        it goes out with this call; what of it reaches the client is cut and recorded
        where it leaves the hub (hub.security.fields).
        """
        started = time.perf_counter()
        admit = principal is None  # a client's own request, not the hub's work for it
        if principal is None:
            principal = await self.authenticate(caller)
        trace = _Trace(principal, caller, service, operation)
        trace.subject_id = subject_id
        try:
            if admit:
                await self.admit(principal)
            loaded = self.registry.get(service)
            spec = loaded.spec(operation)
            trace.known = True  # metric labels only for real operations (bounded cardinality)
            check_caller(caller)
            if generic and spec.route is not None:
                raise Forbidden(f"{service}:{operation} is served through {spec.route}")
            if authorize:
                principal.authorize(
                    service,
                    operation,
                    personal_data=spec.personal_data,
                    purpose=caller.purpose,
                    officer_id=caller.officer_id,
                    dossier_id=caller.dossier_id,
                )
            if callable(payload):
                payload = await payload()
            request = validate_input(spec, payload)
            if spec.subject:
                trace.subject_id = getattr(request, spec.subject, None)
            verdict, guard = spec.verification, self.verifications
            if verdict and guard is not None:
                await guard.admit(principal.client_id, trace.subject_id)
            data = await self._invoke(loaded, spec, request, caller, principal, trace)
            if spec.subject_from:  # people the answer names: subjects too (hub.audit.subjects)
                trace.subject_id, trace.subjects = assign(
                    trace.subject_id, subjects_in(data, spec.subject_from)
                )
            if verdict and guard is not None:
                await guard.answered(principal.client_id, trace.subject_id, data, verdict)
            if trim:
                granted = principal.fields_for(service)
                if verdict:  # one verdict unless granted more: not an oracle
                    granted = verification_fields(verdict, granted)
                data = data if granted is None else cut_fields(data, granted)
                trace.disclosed(data)
        except BaseException as exc:
            await self._fail(trace, started, exc)
            raise
        duration_ms = await self._finish(trace, started)
        return CallResult(
            data, service, operation, loaded.cls.version, duration_ms, principal.client_id
        )

    async def local(
        self,
        caller: CallerHeaders,
        service: str,
        operation: str,
        func: Callable[[Principal], Awaitable[tuple[dict[str, Any], str | None]]],
        *,
        personal_data: bool,
        principal: Principal | None = None,
        authorize: bool = True,
        grant: str | None = None,
        status: int | Callable[[], int] = 200,
    ) -> CallResult:
        """Serve a call from the hub's own records (a job's state, a payment) with the same
        authentication, grant and purpose checks, audit and metrics as an upstream call.

        `func(principal)` returns the data and the data subject's personal ID (for the
        audit record) or raises a HubError; the data is what goes out, already cut to the
        principal's field grant (`hub.fields.trim_view`), and the audit record lists its
        fields. The grant checked is `service:GRANT`, where
        `grant` is the catalogue's operation the route serves (default: `operation`, the
        name the audit record carries). `status` is the HTTP status the route answers a
        success with (201, 202; a callable when `func` decides it), for the audit record.
        """
        started = time.perf_counter()
        admit = principal is None
        if principal is None:
            principal = await self.authenticate(caller)
        trace = _Trace(principal, caller, service, operation)
        trace.known = True  # routes call this with fixed names only
        try:
            if admit:
                await self.admit(principal)
            check_caller(caller)
            if authorize:
                principal.authorize(
                    service,
                    grant or operation,
                    personal_data=personal_data,
                    purpose=caller.purpose,
                    officer_id=caller.officer_id,
                    dossier_id=caller.dossier_id,
                )
            data, trace.subject_id = await func(principal)
            trace.disclosed(data)
            trace.status = status() if callable(status) else status
        except BaseException as exc:
            await self._fail(trace, started, exc)
            raise
        duration_ms = await self._finish(trace, started)
        version = self.registry.get(service).cls.version if service in self.registry else ""
        return CallResult(data, service, operation, version, duration_ms, principal.client_id)

    async def record_event(
        self,
        caller: CallerHeaders,
        client_id: str,
        service: str,
        operation: str,
        *,
        subject_id: str | None = None,
        error: HubError | None = None,
        disclosed: Any = None,
    ) -> None:
        """Audit something that happened without a client's call (an upstream push, a
        payment callback, a webhook sent), on behalf of the client whose request it
        concerns. `disclosed`: the data that goes to the client with it, whose fields the
        record lists."""
        principal = Principal(client_id, "", frozenset(), frozenset())
        trace = _Trace(principal, caller, service, operation)
        trace.known, trace.subject_id = True, subject_id
        if disclosed is not None:
            trace.disclosed(disclosed)
        if error is not None:
            trace.fail(error)
        await self._finish(trace, time.perf_counter())

    async def _fail(self, trace: _Trace, started: float, exc: BaseException) -> None:
        """Audit a failed call (counting an adapter's bug); turn an unexpected exception
        from the core itself into a plain HubError."""
        if isinstance(exc, HubError):
            if isinstance(exc, AdapterError):
                self.metrics.adapter_errors.labels(trace.service).inc()
            trace.fail(exc)
        elif isinstance(exc, asyncio.CancelledError):
            # The caller went away or the server is stopping: upstream may already have been
            # asked about the person, so the call is still recorded (the write is shielded).
            trace.fail(CallCancelled())
        elif isinstance(exc, Exception):  # a bug outside adapters: still audited, still clean
            # The type and the stack, never the message: an adapter's exception text may
            # quote the person asked about, or upstream's answer.
            log.error(
                "unexpected error in %s:%s request_id=%s: %s\n%s",
                trace.service,
                trace.operation,
                trace.caller.request_id,
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
                extra={
                    "request_id": trace.caller.request_id,
                    "service": trace.service,
                    "operation": trace.operation,
                    "exc_type": type(exc).__name__,
                },
            )
            trace.fail(HubError())
            await self._finish(trace, started)
            raise HubError() from exc
        else:
            return
        await self._finish(trace, started)

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
            correlation_id=caller.correlation_id,
        )
        method = getattr(loaded.instance, spec.method)
        upstream = self.metrics.for_operation(trace.service, trace.operation).upstream

        async def attempt() -> Any:
            t0 = time.perf_counter()
            try:
                return await method(request, ctx)
            except Exception as exc:
                if isinstance(exc, HubError) or is_upstream_exception(exc):
                    raise  # upstream's failure: translated, retried, counted by the circuit
                raise adapter_error(loaded.cls, exc) from exc
            finally:
                elapsed = time.perf_counter() - t0
                trace.upstream_ms = (trace.upstream_ms or 0.0) + elapsed * 1000
                upstream.observe(elapsed)

        circuit = loaded.circuit
        try:
            trial = circuit.enter()  # a fast 503 while the circuit is open or the bulkhead full
        except HubError:
            self.metrics.circuit_refusals.labels(trace.service).inc()
            raise
        error: BaseException | None = None
        try:
            result = await self.retry.run(
                attempt,
                idempotent=spec.idempotent,
                timeout_s=loaded.timeout_for(spec),
                deadline_s=loaded.deadline_s,
                on_retry=self.metrics.for_operation(trace.service, trace.operation).retries.inc,
            )
        except BaseException as exc:
            error = exc
            raise
        finally:
            circuit.leave(trial=trial, error=error)
        return checked_output(loaded.cls, spec, result)

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
        subject = self.pseudonym(trace.subject_id)
        message = "call failed request_id=%s client=%s %s:%s code=%s subject=%s context=%s"
        args: list[Any] = [
            trace.caller.request_id,
            trace.principal.client_id,
            trace.service,
            trace.operation,
            exc.code,
            subject,
            exc.log_context,
        ]
        extra = {  # the same, as fields of a JSON log line (hub/core/logs.py)
            "request_id": trace.caller.request_id,
            "client": trace.principal.client_id,
            "service": trace.service,
            "operation": trace.operation,
            "code": exc.code,
            "status": exc.status,
            "subject": subject,
        }
        if isinstance(exc, AdapterError):  # the developer's line: type and stack, no message
            level, extra["exc_type"] = logging.ERROR, exc.exc_type
            if exc.frames:
                message += "\n%s"
                args.append(exc.frames)
        log.log(level, message, *args, extra=extra)

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
        "fields",
        "known",
        "operation",
        "principal",
        "service",
        "status",
        "subject_id",
        "subjects",
        "upstream_ms",
    )

    def __init__(self, principal: Principal, caller: CallerHeaders, service: str, operation: str):
        self.principal, self.caller = principal, caller
        self.service, self.operation = service, operation
        self.subject_id: str | None = None
        self.subjects: str | None = None
        self.upstream_ms: float | None = None
        self.status, self.code = 200, "OK"
        self.error: HubError | None = None
        self.known = False
        self.fields: str | None = None

    def disclosed(self, data: Any) -> None:
        """Note the fields the answer carries, for the audit record."""
        self.fields = orjson.dumps(paths_of(data)).decode()

    def fail(self, exc: HubError) -> None:
        self.error, self.status, self.code = exc, exc.status, exc.code

    def audit_row(self, duration_ms: float) -> dict[str, Any]:
        return {
            "at": utcnow(),
            "request_id": self.caller.request_id,
            "client_id": self.principal.client_id,
            "service": self.service[:64],
            "operation": self.operation[:64],
            "purpose": clip(self.caller.purpose, 64),
            "officer_id": shaped(self.caller.officer_id),
            "dossier_id": shaped(self.caller.dossier_id),
            "subject_id": clip(self.subject_id, 64),
            "status": self.status,
            "code": self.code,
            "duration_ms": round(duration_ms, 3),
            "upstream_ms": None if self.upstream_ms is None else round(self.upstream_ms, 3),
            "fields": self.fields,
            "subjects": self.subjects,
        }


#: The longest X-Purpose, X-Officer-ID and X-Dossier-ID the audit trail keeps whole.
