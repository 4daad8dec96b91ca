"""Clients, API keys and authentication of calls.

An API key is `hub_` + 43 random URL-safe characters (256 bits). The database keeps only
HMAC-SHA256(server secret, key): a fast keyed hash is safe here because the key is random
and long (nothing to brute-force), and it lets a key be found by an indexed equality look-up
instead of a slow hash compared against every row.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from hub.core.models import ApiKey, Client, utcnow
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
from hub.security.oauth import (
    MAX_TOKEN_CHARS,
    TOKEN_START,
    AccessToken,
    AccessTokens,
    TokenClaims,
    TokenRequest,
    covered,
)

KEY_PREFIX = "hub_"

#: The admin API's grants (`admin:clients`, `admin:audit`): never part of `*`.
ADMIN_SERVICE = "admin"
#: The hub's own services, reached only by a grant that names them: the admin API, and
#: the audit trail's access report (`audit:access-log`). `*` is every national system.
HUB_SERVICES = frozenset({ADMIN_SERVICE, "audit"})


def hash_key(secret: bytes, api_key: str) -> str:
    """The stored form of an API key."""
    return hmac.digest(secret, api_key.encode(), hashlib.sha256).hex()  # one-shot C HMAC


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


@dataclass(frozen=True, slots=True)
class IssuedClient:
    """What `create_client` returns: the key is shown this once and never again."""

    client_id: str
    api_key: str


def _check_grants(allow: Sequence[str], rate_per_minute: int | None) -> None:
    """The rules every client's grants and rate limit keep, made or edited (ValueError)."""
    if not allow:
        raise ValueError("a client needs at least one --allow grant")
    for grant in allow:
        if grant != "*" and not all(part.strip() for part in grant.split(":", 1)):
            raise ValueError(f"bad grant {grant!r}: use SERVICE, SERVICE:OPERATION or '*'")
    if rate_per_minute is not None and rate_per_minute < 1:
        raise ValueError("a rate limit is at least 1 call a minute")


def create_client(
    engine: Engine,
    secret: bytes,
    *,
    name: str,
    allow: Iterable[str],
    purposes: Iterable[str] = (),
    agency: str | None = None,
    rate_per_minute: int | None = None,
    fields: Mapping[str, Sequence[str]] | None = None,
    require_officer: bool = False,
    require_dossier: bool = False,
    expires_in_days: float | None = None,
) -> IssuedClient:
    """Store a new client with one API key; return the key in clear (only time it exists)."""
    allow, purposes = sorted(set(allow)), sorted(set(purposes))
    if not name.strip():
        raise ValueError("a client needs a name")
    _check_grants(allow, rate_per_minute)
    if expires_in_days is not None and expires_in_days <= 0:
        raise ValueError("a key's lifetime must be positive")
    expires = None if expires_in_days is None else utcnow() + dt.timedelta(days=expires_in_days)
    client_id = "cl_" + secrets.token_hex(8)
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    with Session(engine) as session:
        if session.exec(select(Client).where(Client.name == name)).first() is not None:
            raise ValueError(f"a client named {name!r} exists already")
        session.add(
            Client(
                id=client_id,
                name=name,
                agency=agency,
                allow=allow,
                purposes=purposes,
                rate_per_minute=rate_per_minute,
                fields={service: list(names) for service, names in (fields or {}).items()},
                require_officer=require_officer,
                require_dossier=require_dossier,
            )
        )
        session.flush()
        session.add(
            ApiKey(
                client_id=client_id,
                key_hash=hash_key(secret, api_key),
                prefix=api_key[:10],
                expires_at=expires,
            )
        )
        session.commit()
    return IssuedClient(client_id=client_id, api_key=api_key)


def _client_named(session: Session, name: str) -> Client:
    client = session.exec(select(Client).where(Client.name == name)).first()
    if client is None:
        raise LookupError(f"no client named {name!r}")
    return client


def rotate_key(
    engine: Engine,
    secret: bytes,
    name: str,
    *,
    grace_s: float = 86400.0,
    expires_in_s: float | None = None,
) -> IssuedClient:
    """Give a client a new key (returned in clear, this once). Its other live keys keep
    working for `grace_s` more seconds, so the agency can switch over without an outage;
    `expires_in_s` gives the new key an expiry."""
    if grace_s < 0 or (expires_in_s is not None and expires_in_s <= 0):
        raise ValueError("the grace period and the expiry must not be negative")
    now = utcnow()
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    with Session(engine) as session:
        client = _client_named(session, name)
        old_keys = session.exec(
            select(ApiKey)
            .where(ApiKey.client_id == client.id)
            .where(col(ApiKey.revoked_at).is_(None))
        ).all()
        until = now + dt.timedelta(seconds=grace_s)
        for key in old_keys:
            if key.expires_at is None or _aware(key.expires_at) > until:
                key.expires_at = until
                session.add(key)
        expires = None if expires_in_s is None else now + dt.timedelta(seconds=expires_in_s)
        session.add(
            ApiKey(
                client_id=client.id,
                key_hash=hash_key(secret, api_key),
                prefix=api_key[:10],
                expires_at=expires,
            )
        )
        session.commit()
        return IssuedClient(client_id=client.id, api_key=api_key)


def revoke(engine: Engine, name: str, *, prefix: str | None = None) -> int:
    """Revoke one key of a client (by its prefix, as `show` lists it), or, with no prefix,
    the client itself: every key stops working. Returns how many keys were revoked."""
    now = utcnow()
    with Session(engine) as session:
        client = _client_named(session, name)
        query = select(ApiKey).where(ApiKey.client_id == client.id)
        query = query.where(col(ApiKey.revoked_at).is_(None))
        if prefix is not None:
            query = query.where(ApiKey.prefix == prefix)
        keys = session.exec(query).all()
        if prefix is not None and not keys:
            raise LookupError(f"client {name!r} has no live key {prefix!r}")
        for key in keys:
            key.revoked_at = now
            session.add(key)
        if prefix is None:
            client.active = False
            session.add(client)
        session.commit()
        return len(keys)


def describe_clients(
    engine: Engine, name: str | None = None, *, offset: int = 0, limit: int | None = None
) -> list[dict[str, Any]]:
    """Clients as `hub clients list/show` print them: grants, limits and each key's prefix,
    dates and state; never a key or its hash. `offset` and `limit` page them by name."""
    now = utcnow()
    with Session(engine) as session:
        query = select(Client).order_by(col(Client.name)).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        if name is not None:
            query = query.where(Client.name == name)
        clients = session.exec(query).all()
        if name is not None and not clients:
            raise LookupError(f"no client named {name!r}")
        described = []
        for client in clients:
            keys = session.exec(
                select(ApiKey).where(ApiKey.client_id == client.id).order_by(col(ApiKey.id))
            ).all()
            described.append(
                {
                    "client_id": client.id,
                    "name": client.name,
                    "agency": client.agency,
                    "active": client.active,
                    "allow": client.allow,
                    "purposes": client.purposes,
                    "rate_per_minute": client.rate_per_minute,
                    "fields": client.fields,
                    "require_officer": client.require_officer,
                    "require_dossier": client.require_dossier,
                    "created_at": _aware(client.created_at).isoformat(),
                    "keys": [_key_view(key, now) for key in keys],
                }
            )
        return described


def _key_view(key: ApiKey, now: dt.datetime) -> dict[str, Any]:
    expires = None if key.expires_at is None else _aware(key.expires_at)
    if key.revoked_at is not None:
        state = "revoked"
    elif expires is not None and expires <= now:
        state = "expired"
    else:
        state = "live"
    return {
        "prefix": key.prefix,
        "state": state,
        "created_at": _aware(key.created_at).isoformat(),
        "expires_at": None if expires is None else expires.isoformat(),
    }


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
            valid_for = (_aware(key.expires_at) - utcnow()).total_seconds()
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


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite hands datetimes back without their time zone; they were stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def update_client(
    engine: Engine,
    name: str,
    *,
    allow: Iterable[str],
    purposes: Iterable[str],
    rate_per_minute: int | None,
    fields: Mapping[str, Sequence[str]],
    require_officer: bool,
    require_dossier: bool,
    agency: str | None = None,
) -> None:
    """Change a client's grants, purposes, rate limit and field grants (the console's edit;
    its keys stay as they are). The same rules as `create_client`; LookupError if unknown.
    Hub processes see the change within HUB_CLIENT_CACHE_TTL_S."""
    allow, purposes = sorted(set(allow)), sorted(set(purposes))
    _check_grants(allow, rate_per_minute)
    with Session(engine) as session:
        client = _client_named(session, name)
        client.allow, client.purposes, client.agency = allow, purposes, agency
        client.rate_per_minute = rate_per_minute
        client.fields = {service: list(names) for service, names in fields.items()}
        client.require_officer, client.require_dossier = require_officer, require_dossier
        session.add(client)
        session.commit()
