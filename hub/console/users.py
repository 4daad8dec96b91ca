"""Console users: named people with roles, argon2id password hashes and an optional TOTP
second factor; failed logins lock the account for a growing while.

Passwords are hashed by argon2-cffi's `PasswordHasher` (argon2id, its RFC 9106 defaults):
memory-hard, so a stolen table costs an attacker dearly per guess. TOTP codes are checked by
pyotp, one 30-second step either side allowed.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from hub.core.models import ConsoleUser, aware, iso, utcnow

#: operator: services, clients, traffic; auditor: audit search, access reports, chain
#: verification; viewer: read-only dashboards.
ROLES = ("operator", "auditor", "viewer")
MIN_PASSWORD = 12
#: Failed logins in a row before the account locks; each further failure doubles the lock.
FREE_FAILURES = 5
LOCK_S = 30.0
MAX_LOCK_S = 900.0

_hasher = PasswordHasher()
#: Verified against when the name is unknown, so an unknown name takes as long as a known one.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True, slots=True)
class User:
    """A console user as the pages see it (never the hash or the TOTP secret)."""

    id: str
    name: str
    roles: frozenset[str]

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))


class LoginRefused(Exception):
    """Wrong name, password or code, a disabled account, or a locked one. `user` is the
    account's name and id when the name was known (the audit record's officer), else None."""

    def __init__(self, reason: str, user: User | None = None, retry_after_s: float = 0) -> None:
        super().__init__(reason)
        self.reason, self.user, self.retry_after_s = reason, user, retry_after_s


def _roles(roles: Iterable[str]) -> str:
    chosen = sorted(set(roles))
    if not chosen:
        raise ValueError("a console user needs a role: " + ", ".join(ROLES))
    for role in chosen:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}: use " + ", ".join(ROLES))
    return ",".join(chosen)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a console password has at least {MIN_PASSWORD} characters")


def new_password() -> str:
    """A random password (about 128 bits), for `hub users create` and `hub up`."""
    return secrets.token_urlsafe(16)


def _as_user(row: ConsoleUser) -> User:
    return User(row.id, row.name, frozenset(row.roles.split(",")))


def create_user(
    engine: Engine, name: str, roles: Iterable[str], password: str, *, totp: bool = False
) -> tuple[User, str | None]:
    """Store a new user; returns it and, with `totp`, its TOTP provisioning URI (shown once)."""
    name = name.strip()
    if not name or len(name) > 64 or not name.isprintable():
        raise ValueError("a console user's name is 1 to 64 printable characters")
    _check_password(password)
    row = ConsoleUser(
        id="us_" + secrets.token_hex(8),
        name=name,
        roles=_roles(roles),
        password_hash=_hasher.hash(password),
        totp_secret=pyotp.random_base32() if totp else None,
    )
    with Session(engine) as session:
        if session.exec(select(ConsoleUser).where(ConsoleUser.name == name)).first():
            raise ValueError(f"a console user named {name!r} exists already")
        session.add(row)
        session.commit()
        session.refresh(row)
    uri = None
    if row.totp_secret:
        uri = pyotp.TOTP(row.totp_secret).provisioning_uri(name=name, issuer_name="LGSP hub")
    return _as_user(row), uri


def _named(session: Session, name: str) -> ConsoleUser:
    row = session.exec(select(ConsoleUser).where(ConsoleUser.name == name)).first()
    if row is None:
        raise LookupError(f"no console user named {name!r}")
    return row


def list_users(engine: Engine) -> list[dict[str, object]]:
    with Session(engine) as session:
        rows = session.exec(select(ConsoleUser).order_by(ConsoleUser.name)).all()
    return [
        {
            "name": row.name,
            "roles": row.roles.split(","),
            "active": row.active,
            "totp": row.totp_secret is not None,
            "created_at": iso(row.created_at),
            "last_login_at": iso(row.last_login_at),
        }
        for row in rows
    ]


def set_active(engine: Engine, name: str, active: bool) -> None:
    """Disable (or enable again) a user; disabling ends the user's sessions."""
    from hub.console.sessions import end_sessions_of

    with Session(engine) as session:
        row = _named(session, name)
        row.active = active
        session.add(row)
        session.commit()
        user_id = row.id
    if not active:
        end_sessions_of(engine, user_id)


def reset_password(engine: Engine, name: str, password: str) -> None:
    """A new password; the lock is lifted and every session of the user ends."""
    from hub.console.sessions import end_sessions_of

    _check_password(password)
    with Session(engine) as session:
        row = _named(session, name)
        row.password_hash = _hasher.hash(password)
        row.failed_logins, row.locked_until = 0, None
        session.add(row)
        session.commit()
        user_id = row.id
    end_sessions_of(engine, user_id)


def load_user(engine: Engine, user_id: str) -> User | None:
    """The active user of a session, or None."""
    with Session(engine) as session:
        row = session.get(ConsoleUser, user_id)
    return _as_user(row) if row is not None and row.active else None


def _lock_s(failures: int) -> float:
    over = failures - FREE_FAILURES
    return 0.0 if over < 0 else min(LOCK_S * 2**over, MAX_LOCK_S)


def authenticate(engine: Engine, name: str, password: str, code: str = "") -> User:
    """The user, when the name, password (and TOTP code, if enrolled) are right and the
    account is active and not locked; LoginRefused otherwise, counting the failure."""
    now = utcnow()
    with Session(engine) as session:
        row = session.exec(select(ConsoleUser).where(ConsoleUser.name == name)).first()
        if row is None:
            _verify(_DUMMY_HASH, password)
            raise LoginRefused("unknown user")
        user = _as_user(row)
        locked = aware(row.locked_until)
        if locked is not None and locked > now:
            raise LoginRefused("locked", user, (locked - now).total_seconds())
        reason = _refusal(row, password, code)
        if reason is not None:
            row.failed_logins += 1
            lock = _lock_s(row.failed_logins)
            row.locked_until = now + dt.timedelta(seconds=lock) if lock else None
            session.add(row)
            session.commit()
            raise LoginRefused(reason, user, lock)
        row.failed_logins, row.locked_until, row.last_login_at = 0, None, now
        if _hasher.check_needs_rehash(row.password_hash):
            row.password_hash = _hasher.hash(password)
        session.add(row)
        session.commit()
    return user


def _refusal(row: ConsoleUser, password: str, code: str) -> str | None:
    if not _verify(row.password_hash, password):
        return "wrong password"
    if not row.active:
        return "disabled"
    if row.totp_secret and not pyotp.TOTP(row.totp_secret).verify(code.strip(), valid_window=1):
        return "wrong code"
    return None


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
