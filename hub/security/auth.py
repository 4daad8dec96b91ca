"""Authentication of calls: an API key or access token in, a Principal (what the client was
granted) out.

`Authenticator` finds a key by its HMAC (hub.security.clients, where clients and keys are
made, rotated and revoked) or verifies an OAuth2 access token (hub.security.oauth), and
caches the answer briefly; `Principal.authorize` is the grant, purpose, officer and dossier
check of each call. The client-management functions are re-exported here, where their
callers import them from.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select

from hub.core.models import ApiKey, Client, aware, utcnow
from hub.errors import (
    DossierRequired,
    Forbidden,
    HubUnavailable,
    InvalidClient,
    InvalidScope,
    OfficerRequired,
    PurposeNotAllowed,
    PurposeRequired,
    Unauthenticated,
)
from hub.security.clients import (
    KEY_PREFIX,
    IssuedClient,
    create_client,
    describe_clients,
    hash_key,
    revoke,
    rotate_key,
    update_client,
)
from hub.security.oauth import (
    MAX_TOKEN_CHARS,
    TOKEN_START,
    AccessToken,
    AccessTokens,
    TokenClaims,
    TokenRequest,
    covered,
)

__all__ = [
    "ADMIN_SERVICE",
    "HUB_SERVICES",
    "KEY_PREFIX",
    "Authenticator",
    "IssuedClient",
    "Principal",
    "create_client",
    "describe_clients",
    "hash_key",
    "revoke",
    "rotate_key",
    "update_client",
]

#: The admin API's grants (`admin:clients`, `admin:audit`): never part of `*`.
ADMIN_SERVICE = "admin"
#: The hub's own services, reached only by a grant that names them: the admin API, and
#: the audit trail's access report (`audit:access-log`). `*` is every national system.
HUB_SERVICES = frozenset({ADMIN_SERVICE, "audit"})


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated client and what it was granted."""

    client_id: str
    name: str
    allow: frozenset[str]
    purposes: frozenset[str]
    rate_per_minute: int | None = None
    #: (service, fields) pairs: the canonical fields answers of that service are cut to.
    field_grants: tuple[tuple[str, tuple[str, ...]], ...] = ()
    require_officer: bool = False
    require_dossier: bool = False

    def fields_for(self, service: str) -> tuple[str, ...] | None:
        """The fields granted for `service`, or None: answers in full."""
        for name, fields in self.field_grants:
            if name == service:
                return fields
        return None

    def may_call(self, service: str, operation: str) -> bool:
        """`*`, `SERVICE` and `SERVICE:OPERATION` grants. `*` is every national system,
        never the hub's own services (HUB_SERVICES): those grants are always named
        (`admin:clients`, `audit:access-log`)."""
        if service in HUB_SERVICES:
            return bool({service, f"{service}:{operation}"} & self.allow)
        return bool({"*", service, f"{service}:{operation}"} & self.allow)

    def authorize(
        self,
        service: str,
        operation: str,
        *,
        personal_data: bool,
        purpose: str | None,
        officer_id: str | None = None,
        dossier_id: str | None = None,
    ) -> None:
        """Raise unless this client may call the operation for the stated purpose (and, if
        the client must, naming the officer and the dossier)."""
        if not self.may_call(service, operation):
            raise Forbidden(f"this client is not allowed to call {service}:{operation}")
        if not personal_data:
            return
        if not purpose:
            raise PurposeRequired("personal-data calls must state an X-Purpose")
        if purpose not in self.purposes:
            raise PurposeNotAllowed("the stated purpose is not granted to this client")
        if self.require_officer and not (officer_id or "").strip():
            raise OfficerRequired("this client's personal-data calls must send X-Officer-ID")
        if self.require_dossier and not (dossier_id or "").strip():
            raise DossierRequired("this client's personal-data calls must send X-Dossier-ID")


class Authenticator:
    """Turns an `Authorization` header into a Principal.

    Verified keys are cached for `ttl` seconds (never past the key's expiry) so the hot path
    needs no database read; a revoked key therefore stops working within `ttl` (5 s by
    default). Unknown keys are remembered briefly in a separate, smaller cache, so a flood of
    made-up keys can neither evict the good ones nor reach the database each time.

    OAuth2 access tokens (hub.security.oauth) are accepted too. A token is only a signed pointer to
    the API key it was issued against: each one is checked against that key and its client
    as a key is, and cached the same way (by its hash, never past its own expiry), so
    revoking the key or the client stops its tokens within `ttl` as well.
    """

    MAX_CACHED = 10_000
    MAX_REFUSED = 1_000

    def __init__(
        self, engine: Engine, secret: bytes, ttl: float, *, token_ttl: float = 300.0
    ) -> None:
        self._engine, self._secret, self._ttl = engine, secret, ttl
        self._valid: dict[str, tuple[float, Principal]] = {}
        self._refused: dict[str, float] = {}
        self.tokens = AccessTokens(secret, token_ttl)

    async def authenticate(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith(KEY_PREFIX) or len(token) > 200:
            if (
                scheme.lower() == "bearer"
                and token.startswith(TOKEN_START)
                and len(token) <= MAX_TOKEN_CHARS
            ):
                return await self._authenticate_token(token)
            raise Unauthenticated(
                "send Authorization: Bearer <API key or access token>",
                invalid_token=scheme.lower() == "bearer",
            )
        digest = hash_key(self._secret, token)
        now = time.monotonic()
        cached = self._valid.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        refused_until = self._refused.get(digest)
        if refused_until is not None and refused_until > now:
            raise Unauthenticated("the API key is not valid", invalid_token=True)
        try:
            found = await asyncio.to_thread(self._lookup, digest)
        except SQLAlchemyError as exc:
            raise HubUnavailable(log_context={"cause": type(exc).__name__}) from None
        if found is None:
            _remember(self._refused, self.MAX_REFUSED, digest, now + self._ttl)
            raise Unauthenticated("the API key is not valid", invalid_token=True)
        principal, valid_for = found
        until = now + min(self._ttl, valid_for)
        _remember(self._valid, self.MAX_CACHED, digest, (until, principal))
        return principal

    def _lookup(self, digest: str) -> tuple[Principal, float] | None:
        """The key's client and how many seconds the key stays valid, or None."""
        found = self._lookup_key(ApiKey.key_hash == digest)
        return None if found is None else found[:2]

    def _lookup_key(self, where: Any) -> tuple[Principal, float, int] | None:
        """The live key matching `where`: its client, seconds it stays valid, and row id."""
        with Session(self._engine) as session:
            row = session.exec(select(ApiKey, Client).join(Client).where(where)).first()
        if row is None:
            return None
        key, client = row
        if not client.active or key.revoked_at is not None:
            return None
        valid_for = float("inf")
        if key.expires_at is not None:
            valid_for = (aware(key.expires_at) - utcnow()).total_seconds()
            if valid_for <= 0:
                return None
        principal = Principal(
            client.id,
            client.name,
            frozenset(client.allow),
            frozenset(client.purposes),
            client.rate_per_minute,
            tuple((svc, tuple(names)) for svc, names in sorted((client.fields or {}).items())),
            client.require_officer,
            client.require_dossier,
        )
        assert key.id is not None
        return principal, valid_for, key.id

    async def issue_token(self, request: TokenRequest) -> tuple[Principal, AccessToken]:
        """The client-credentials grant: an access token for a client that proved itself with
        one of its live API keys, narrowed to `request.scope` if given, and the client's
        principal (for its rate limit). Raises InvalidClient (a made-up secret is remembered
        as refused, like an unknown key, so repeating it does not reach the database) or
        InvalidScope."""
        secret = request.secret
        if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
            raise InvalidClient("the client credentials are not valid", basic=request.basic)
        digest = hash_key(self._secret, secret)
        now = time.monotonic()
        refused_until = self._refused.get(digest)
        if refused_until is not None and refused_until > now:
            raise InvalidClient("the client credentials are not valid", basic=request.basic)
        found = await self._to_thread(self._lookup_key, ApiKey.key_hash == digest)
        if found is None:
            _remember(self._refused, self.MAX_REFUSED, digest, now + self._ttl)
            raise InvalidClient("the client credentials are not valid", basic=request.basic)
        principal, valid_for, key_id = found
        # A live key of another client: refused, but not remembered as refused (it is valid).
        if not hmac.compare_digest(principal.client_id.encode(), request.client_id.encode()):
            raise InvalidClient("the client credentials are not valid", basic=request.basic)
        scope = tuple(sorted(principal.allow))
        if request.scope is not None:
            if not all(covered(grant, principal.allow) for grant in request.scope):
                raise InvalidScope(
                    "the scope asks for more than this client is granted",
                    client_id=principal.client_id,
                )
            scope = request.scope
        issued = self.tokens.issue(principal.client_id, key_id, scope, valid_for=valid_for)
        return principal, issued

    async def _authenticate_token(self, token: str) -> Principal:
        """The principal of an access token: its key and client still live, its grants the
        token's scope (as far as the client still holds them)."""
        digest = hash_key(self._secret, token)
        now = time.monotonic()
        cached = self._valid.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        refused_until = self._refused.get(digest)
        if refused_until is not None and refused_until > now:
            raise Unauthenticated("the access token is not valid", invalid_token=True)
        claims = self.tokens.verify(token)  # no database read for a forged or stale token
        found = await self._to_thread(self._lookup_token_key, claims)
        lifetime = claims.expires_at - time.time()
        if found is None:
            _remember(self._refused, self.MAX_REFUSED, digest, now + min(self._ttl, lifetime))
            raise Unauthenticated("the access token is not valid", invalid_token=True)
        principal, valid_for = found
        until = now + min(self._ttl, valid_for, lifetime)
        _remember(self._valid, self.MAX_CACHED, digest, (until, principal))
        return principal

    def _lookup_token_key(self, claims: TokenClaims) -> tuple[Principal, float] | None:
        found = self._lookup_key(
            (ApiKey.id == claims.key_id) & (ApiKey.client_id == claims.client_id)
        )
        if found is None:
            return None
        principal, valid_for, _ = found
        allow = frozenset(g for g in claims.scope if covered(g, principal.allow))
        return dataclasses.replace(principal, allow=allow), valid_for

    @staticmethod
    async def _to_thread(func: Any, *args: Any) -> Any:
        try:
            return await asyncio.to_thread(func, *args)
        except SQLAlchemyError as exc:
            raise HubUnavailable(log_context={"cause": type(exc).__name__}) from None


def _remember(cache: dict[str, Any], limit: int, key: str, value: Any) -> None:
    if len(cache) >= limit:  # drop the oldest half (dicts keep insertion order)
        for old in list(cache)[: limit // 2]:
            del cache[old]
    cache[key] = value
