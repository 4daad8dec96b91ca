"""The hub's exception tree; one handler turns any of them into RFC 9457 problem+json.

    HubError (500 INTERNAL_ERROR)
    ├── BadRequest (400 BAD_REQUEST)
    │   ├── DossierRequired (400 DOSSIER_REQUIRED)   for clients created --require-dossier
    │   ├── IdempotencyKeyRequired (400 IDEMPOTENCY_KEY_REQUIRED)   POST /v1/payments
    │   ├── InvalidCallbackUrl (400 INVALID_CALLBACK_URL)   a callback the hub may not call
    │   ├── InvalidEnterpriseCode (400 INVALID_ENTERPRISE_CODE)
    │   ├── InvalidJson (400 INVALID_JSON)
    │   ├── InvalidPersonalId (400 INVALID_PERSONAL_ID)
    │   ├── JsonTooComplex (400 JSON_TOO_COMPLEX)
    │   ├── OfficerRequired (400 OFFICER_REQUIRED)   for clients created --require-officer
    │   ├── PurposeRequired (400 PURPOSE_REQUIRED)
    │   └── StaleMessage (400 STALE_MESSAGE)   a signed message too far from now
    ├── InvalidSignature (401 INVALID_SIGNATURE)   an upstream push or callback that fails
    ├── Unauthenticated (401 UNAUTHENTICATED)
    ├── Forbidden (403 FORBIDDEN)
    │   └── PurposeNotAllowed (403 PURPOSE_NOT_ALLOWED)
    ├── NotFound (404 NOT_FOUND)   no such subject upstream
    │   ├── UnknownEvent (404 UNKNOWN_EVENT)   not an event of this subscription
    │   ├── UnknownEventType (404 UNKNOWN_EVENT_TYPE)
    │   ├── UnknownOperation (404 UNKNOWN_OPERATION)
    │   ├── UnknownService (404 UNKNOWN_SERVICE)
    │   └── UnknownSubscription (404 UNKNOWN_SUBSCRIPTION)   none of this client's
    ├── MethodNotAllowed (405 METHOD_NOT_ALLOWED)
    ├── Conflict (409 CONFLICT)
    │   ├── AuditChainBroken (409 AUDIT_CHAIN_BROKEN)   the console's "verify now" found a break
    │   ├── IdempotencyConflict (409 IDEMPOTENCY_CONFLICT)
    │   ├── PaymentMismatch (409 PAYMENT_MISMATCH)
    │   ├── ReplayedMessage (409 REPLAYED_MESSAGE)
    │   └── SubscriptionExists (409 SUBSCRIPTION_EXISTS)   one per client and event type
    ├── PayloadTooLarge (413 PAYLOAD_TOO_LARGE)
    ├── UriTooLong (414 URI_TOO_LONG)   past the HTTP server's request-line bound
    ├── SchemaViolation (422 VALIDATION_ERROR)
    ├── RateLimited (429 RATE_LIMITED)
    ├── HeadersTooLarge (431 HEADERS_TOO_LARGE)   past the HTTP server's header bound
    ├── CallCancelled (499 CANCELLED)   only in the audit trail: the caller went away
    ├── AdapterError (500 ADAPTER_ERROR)   an adapter's own bug; not retried, not upstream's
    ├── OAuthError (500 INTERNAL_ERROR)   RFC 6749 errors of POST /oauth/token
    │   ├── InvalidRequest (400 INVALID_REQUEST)
    │   ├── InvalidScope (400 INVALID_SCOPE)
    │   ├── UnsupportedGrantType (400 UNSUPPORTED_GRANT_TYPE)
    │   └── InvalidClient (401 INVALID_CLIENT)
    ├── UpstreamError (502 UPSTREAM_ERROR)   upstream failed; retriable
    │   ├── UpstreamBadResponse (502 UPSTREAM_BAD_RESPONSE)   unparsable or off-contract
    │   │   ├── ResponseTooLarge (502 UPSTREAM_BAD_RESPONSE)   past the size cap
    │   │   └── UpstreamUnreadable (502 UPSTREAM_BAD_RESPONSE)   not JSON/XML, or past its
    │   │                                                         bounds: counted by the circuit
    │   ├── UpstreamRejected (502 UPSTREAM_REJECTED)   upstream refused our request
    │   ├── UpstreamUnavailable (503 UPSTREAM_UNAVAILABLE)   cannot connect, or it is down
    │   │   ├── BulkheadFull (503 UPSTREAM_UNAVAILABLE)   too many calls in flight to it
    │   │   └── CircuitOpen (503 UPSTREAM_UNAVAILABLE)   refused without calling it
    │   └── UpstreamTimeout (504 UPSTREAM_TIMEOUT)
    └── HubUnavailable (503 HUB_UNAVAILABLE)   the hub's own database is unreachable
        └── AuditUnavailable (503 AUDIT_UNAVAILABLE)   the audit trail cannot be written

Every error the hub answers with is defined here, and this tree is complete: a test
(tests/unit/test_errors.py) draws it from the classes and compares.

Adapters raise these (mostly NotFound and the Upstream* ones); `hub.upstream.raise_for_status`
and `response_json` raise the ones an HTTP status or a JSON body means. The core translates
transport and parse errors (httpx, lxml, zeep, JSON, the mapping's) into them in one place
(hub.resilience.retry.translate_upstream_errors), and any other exception an adapter's operation
raises, or an answer off its output model, into AdapterError (hub.core.gateway).
`retriable` is what the retry policy reads: retries follow the error class, never ad-hoc status
checks. `detail` is shown to the caller, so it must never carry personal data or upstream's raw
text: give a fixed sentence, and put anything diagnostic in `log_context` (not returned).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

#: The realm the hub's 401 challenges name (Bearer on the API, Basic at the token endpoint).
REALM = "lgsp-hub"


#: A caller's path segment the errors may repeat: a name's shape (a letter first, so never a
#: personal ID or another number), at most 64 characters. Anything else is not echoed.
_ECHOABLE = re.compile(r"[a-z][a-z0-9_-]{0,63}")


def echoable(segment: str) -> bool:
    """Whether an error may quote what the caller sent: a name's shape (a letter, then at
    most 63 of `a-z0-9_-`), which a personal ID or free text never has."""
    return _ECHOABLE.fullmatch(segment) is not None


def echoed(segment: str, named: str, unnamed: str) -> str:
    """`named` with the segment quoted in it (`{!r}`), or `unnamed` when the segment is not
    a name's shape: an error repeats nothing else of what the caller sent."""
    return named.format(segment) if _ECHOABLE.fullmatch(segment) else unnamed


class HubError(Exception):
    """Base of every error the hub answers with; carries its HTTP status and stable code."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"
    title: ClassVar[str] = "Internal error"
    retriable: ClassVar[bool] = False
    #: Retry-After (seconds) sent when the raiser gives none; None: no header.
    default_retry_after: ClassVar[int | None] = None

    def __init__(
        self,
        detail: str | None = None,
        *,
        retry_after: int | None = None,
        errors: list[dict[str, Any]] | None = None,
        log_context: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        self.retry_after = self.default_retry_after if retry_after is None else retry_after
        self.errors = errors
        self.log_context = log_context or {}
        super().__init__(self.detail)

    def response_headers(self) -> dict[str, str]:
        """The headers the answer carries besides the body (Retry-After; a 401's challenge)."""
        if self.retry_after is None:
            return {}
        return {"retry-after": str(self.retry_after)}

    def problem(self, request_id: str | None) -> dict[str, Any]:
        """The RFC 9457 body for this error."""
        body: dict[str, Any] = {
            "type": f"https://lgsp-hub.dev/problems/{self.code.lower().replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            "request_id": request_id,
        }
        if self.errors:
            body["errors"] = self.errors
        return body


class AdapterError(HubError):
    """An adapter broke its contract: its operation raised an exception that is neither a
    hub error nor a transport or parse error of upstream's answer (a KeyError, a TypeError,
    a bare ValueError), or answered something that is not its output model.

    The hub's own fault, so the title blames no one outside and never carries the
    exception's text (it may quote the person asked about). Not retried, and not counted
    against upstream by the circuit breaker. `exc_type` and `frames` (the stack, without
    the message) are for the one log line the gateway writes."""

    status, code, title = 500, "ADAPTER_ERROR", "The hub's adapter of this service failed"

    def __init__(
        self,
        *,
        exc_type: str,
        frames: str = "",
        log_context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(log_context={**(log_context or {}), "exc_type": exc_type})
        self.exc_type, self.frames = exc_type, frames


class BadRequest(HubError):
    status, code, title = 400, "BAD_REQUEST", "Bad request"


class InvalidJson(BadRequest):
    code, title = "INVALID_JSON", "The request body is not valid JSON"


class JsonTooComplex(BadRequest):
    """Valid JSON nested deeper, or with more elements, than the hub reads."""

    code, title = "JSON_TOO_COMPLEX", "The request body's JSON is too deeply nested or too large"


class InvalidPersonalId(BadRequest):
    code, title = "INVALID_PERSONAL_ID", "Invalid personal ID"


class InvalidEnterpriseCode(BadRequest):
    code, title = "INVALID_ENTERPRISE_CODE", "Invalid enterprise code"


class PurposeRequired(BadRequest):
    code, title = "PURPOSE_REQUIRED", "X-Purpose header required"


class OfficerRequired(BadRequest):
    code, title = "OFFICER_REQUIRED", "X-Officer-ID header required"


class DossierRequired(BadRequest):
    code, title = "DOSSIER_REQUIRED", "X-Dossier-ID header required"


class Unauthenticated(HubError):
    """401 with the Bearer challenge RFC 6750 (section 3) asks for: `error="invalid_token"`
    when a credential was sent and refused, no error code when none was sent."""

    status, code, title = 401, "UNAUTHENTICATED", "Missing or invalid credential"

    def __init__(self, detail: str | None = None, *, invalid_token: bool = False) -> None:
        super().__init__(detail)
        self.invalid_token = invalid_token

    def response_headers(self) -> dict[str, str]:
        challenge = f'Bearer realm="{REALM}"'
        if self.invalid_token:
            challenge += ', error="invalid_token"'
        return {**super().response_headers(), "www-authenticate": challenge}


class InvalidSignature(HubError):
    """An inbound callback (payment IPN, judicial-records push) whose signature does not verify."""

    status, code, title = 401, "INVALID_SIGNATURE", "The message signature does not verify"


class StaleMessage(BadRequest):
    """An inbound callback whose timestamp is outside the accepted window, or a replay."""

    code, title = "STALE_MESSAGE", "The message is too old or was already received"


class Forbidden(HubError):
    status, code, title = 403, "FORBIDDEN", "Not allowed"


class PurposeNotAllowed(Forbidden):
    code, title = "PURPOSE_NOT_ALLOWED", "Purpose not granted to this client"


class NotFound(HubError):
    status, code, title = 404, "NOT_FOUND", "Not found"


class UnknownService(NotFound):
    code, title = "UNKNOWN_SERVICE", "No such service"


class UnknownOperation(NotFound):
    code, title = "UNKNOWN_OPERATION", "No such operation"


class UnknownEventType(NotFound):
    code, title = "UNKNOWN_EVENT_TYPE", "No such event type"


class UnknownSubscription(NotFound):
    code, title = "UNKNOWN_SUBSCRIPTION", "No such subscription"


class UnknownEvent(NotFound):
    code, title = "UNKNOWN_EVENT", "No such event for this subscription"


class MethodNotAllowed(HubError):
    status, code, title = 405, "METHOD_NOT_ALLOWED", "Method not allowed"


class Conflict(HubError):
    status, code, title = 409, "CONFLICT", "Conflict"


class AuditChainBroken(Conflict):
    code, title = "AUDIT_CHAIN_BROKEN", "The audit chain is broken"


class SubscriptionExists(Conflict):
    code, title = "SUBSCRIPTION_EXISTS", "This client already subscribes to this event type"


class IdempotencyConflict(Conflict):
    code, title = "IDEMPOTENCY_CONFLICT", "The Idempotency-Key was used with another request"


class IdempotencyKeyRequired(BadRequest):
    code, title = "IDEMPOTENCY_KEY_REQUIRED", "Idempotency-Key header required"


class ReplayedMessage(Conflict):
    code, title = "REPLAYED_MESSAGE", "This message was already received"


class PaymentMismatch(Conflict):
    code, title = "PAYMENT_MISMATCH", "The message does not match the payment"


class PayloadTooLarge(HubError):
    status, code, title = 413, "PAYLOAD_TOO_LARGE", "Request body too large"


class UriTooLong(HubError):
    """The request line's target is longer than the HTTP server reads (hub.core.http_server)."""

    status, code, title = 414, "URI_TOO_LONG", "Request URL too long"


class HeadersTooLarge(HubError):
    """The request's headers are larger than the HTTP server reads (hub.core.http_server)."""

    status, code, title = 431, "HEADERS_TOO_LARGE", "Request headers too large"


class SchemaViolation(HubError):
    status, code, title = 422, "VALIDATION_ERROR", "The request does not match the schema"

    @classmethod
    def from_errors(cls, errors: list[Any]) -> SchemaViolation:
        """From pydantic error dicts: each field and rule named, the submitted value never."""
        fields = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]}
            for e in errors
        ]
        names = ", ".join(f["field"] or "(body)" for f in fields)
        return cls(f"invalid field(s): {names}", errors=fields)


class RateLimited(HubError):
    status, code, title = 429, "RATE_LIMITED", "Too many requests"


class HubUnavailable(HubError):
    """The hub itself cannot serve the call now (its database is unreachable)."""

    status, code, title = 503, "HUB_UNAVAILABLE", "The hub cannot serve this call now"
    default_retry_after = 5


class AuditUnavailable(HubUnavailable):
    code, title = "AUDIT_UNAVAILABLE", "The audit trail cannot be written"


class InvalidCallbackUrl(BadRequest):
    code, title = "INVALID_CALLBACK_URL", "The callback URL is not acceptable"


class OAuthError(HubError):
    """An RFC 6749 §5.2 error: problem+json that also carries `error` and
    `error_description`, so OAuth2 client libraries and the hub's own clients both read it."""

    error: ClassVar[str] = "invalid_request"

    def problem(self, request_id: str | None) -> dict[str, Any]:
        body = super().problem(request_id)
        body["error"] = self.error
        body["error_description"] = self.detail
        return body


class InvalidRequest(OAuthError):
    status, code, title, error = 400, "INVALID_REQUEST", "Invalid token request", "invalid_request"


class InvalidClient(OAuthError):
    status, code, title = 401, "INVALID_CLIENT", "Client authentication failed"
    error = "invalid_client"

    def __init__(self, detail: str | None = None, *, basic: bool = False) -> None:
        super().__init__(detail)
        #: The client tried HTTP Basic: the answer must carry `WWW-Authenticate: Basic`.
        self.basic = basic

    def response_headers(self) -> dict[str, str]:
        headers = super().response_headers()
        if self.basic:  # RFC 6749 section 5.2: the scheme the client authenticated with
            headers["www-authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
        return headers


class UnsupportedGrantType(OAuthError):
    status, code, title = 400, "UNSUPPORTED_GRANT_TYPE", "Unsupported grant type"
    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    status, code, title, error = 400, "INVALID_SCOPE", "Invalid scope", "invalid_scope"

    def __init__(self, detail: str | None = None, *, client_id: str | None = None) -> None:
        super().__init__(detail)
        #: The client that asked, known by then (its credentials were good): for the audit.
        self.client_id = client_id


class CallCancelled(HubError):
    """Recorded in the audit trail when a call is cancelled mid-way (never sent to anyone)."""

    status, code, title = 499, "CANCELLED", "The call was cancelled"


class UpstreamError(HubError):
    status, code, title = 502, "UPSTREAM_ERROR", "The upstream system failed"
    retriable = True


class UpstreamBadResponse(UpstreamError):
    code, title = "UPSTREAM_BAD_RESPONSE", "The upstream system answered badly"
    retriable = False


class UpstreamRejected(UpstreamError):
    code, title = "UPSTREAM_REJECTED", "The upstream system refused the request"
    retriable = False


class UpstreamUnavailable(UpstreamError):
    status, code, title = 503, "UPSTREAM_UNAVAILABLE", "The upstream system is unavailable"
    default_retry_after = 5


class UpstreamTimeout(UpstreamError):
    status, code, title = 504, "UPSTREAM_TIMEOUT", "The upstream system did not answer in time"


def error_for_status(status: int) -> type[HubError]:
    """The most specific hub error class for a bare HTTP status (used for framework errors)."""
    return {
        400: BadRequest,
        401: Unauthenticated,
        403: Forbidden,
        404: NotFound,
        405: MethodNotAllowed,
        409: Conflict,
        413: PayloadTooLarge,
        422: SchemaViolation,
        429: RateLimited,
    }.get(status, HubError)


class ResponseTooLarge(UpstreamBadResponse):
    """Upstream's answer passed the size cap; refused before it was all read."""

    def __init__(self, size: int) -> None:
        super().__init__(log_context={"cause": "response too large", "bytes_at_least": size})


class UpstreamUnreadable(UpstreamBadResponse):
    """Upstream's answer is not its protocol's format at all: not JSON or XML, not UTF-8,
    nested deeper or holding more than the hub reads. Unlike an off-contract value in one
    record, this says the upstream (or something between) is broken or hostile, so the
    circuit breaker counts it as an upstream failure; like any bad response, not retried."""


class CircuitOpen(UpstreamUnavailable):
    """The upstream's circuit is open: refused without calling it."""


class BulkheadFull(UpstreamUnavailable):
    """Too many calls to this upstream are in flight already."""

    default_retry_after = 1
