"""Clients and their API keys: made, edited, rotated, revoked and listed.

What `hub clients` and the console do to the `Client` and `ApiKey` tables. An API key is
`hub_` + 43 random URL-safe characters (256 bits), returned in clear once (`IssuedClient`);
the database keeps only HMAC-SHA256(server secret, key): a fast keyed hash is safe here
because the key is random and long (nothing to brute-force), and it lets a key be found by an
indexed equality look-up instead of a slow hash compared against every row. Authenticating
a call with a key is hub.security.auth's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub.core.models import ApiKey, Client, aware, utcnow

__all__ = [
    "KEY_PREFIX",
    "IssuedClient",
    "create_client",
    "describe_clients",
    "hash_key",
    "revoke",
    "rotate_key",
    "update_client",
]

KEY_PREFIX = "hub_"


def hash_key(secret: bytes, api_key: str) -> str:
    """The stored form of an API key."""
    return hmac.digest(secret, api_key.encode(), hashlib.sha256).hex()  # one-shot C HMAC


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
            if key.expires_at is None or aware(key.expires_at) > until:
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
                    "created_at": aware(client.created_at).isoformat(),
                    "keys": [_key_view(key, now) for key in keys],
                }
            )
        return described


def _key_view(key: ApiKey, now: dt.datetime) -> dict[str, Any]:
    expires = None if key.expires_at is None else aware(key.expires_at)
    if key.revoked_at is not None:
        state = "revoked"
    elif expires is not None and expires <= now:
        state = "expired"
    else:
        state = "live"
    return {
        "prefix": key.prefix,
        "state": state,
        "created_at": aware(key.created_at).isoformat(),
        "expires_at": None if expires is None else expires.isoformat(),
    }
