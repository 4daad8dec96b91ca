"""Console sessions, server-side in the database, so every hub process behind a load balancer
knows them and a logout or a disabled user ends them everywhere.

The cookie carries a random 256-bit token; the row's key is its SHA-256, so reading the
table opens no session. Each session has its own CSRF token, which every form carries back.
A session ends after `idle_s` without a request, or `max_s` after the login, whichever first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from hub.console.users import User, load_user
from hub.core.models import ConsoleSession, aware, utcnow

#: A session's last-seen time is written at most this often (not at every page).
TOUCH_S = 15.0
#: Longest cookie value looked up (a token is 43 characters).
MAX_TOKEN = 64


@dataclass(frozen=True, slots=True)
class Login:
    """A live session: its user and the CSRF token its forms carry."""

    user: User
    csrf_token: str
    session_key: str


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(engine: Engine, user: User) -> tuple[str, Login]:
    """A new session for `user`: returns the cookie's token (never stored) and the login."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with Session(engine) as session:
        session.add(ConsoleSession(id=_key(token), user_id=user.id, csrf_token=csrf))
        session.commit()
    return token, Login(user, csrf, _key(token))


def find_session(engine: Engine, token: str | None, *, idle_s: float, max_s: float) -> Login | None:
    """The live session of a cookie's token, or None (no such session, expired, or its user
    disabled); an expired session is deleted."""
    if not token or len(token) > MAX_TOKEN:
        return None
    key, now = _key(token), utcnow()
    with Session(engine) as session:
        row = session.get(ConsoleSession, key)
        if row is None:
            return None
        seen, created = aware(row.last_seen_at), aware(row.created_at)
        assert seen is not None and created is not None
        if now - seen > dt.timedelta(seconds=idle_s) or now - created > dt.timedelta(seconds=max_s):
            session.delete(row)
            session.commit()
            return None
        if now - seen > dt.timedelta(seconds=TOUCH_S):
            row.last_seen_at = now
            session.add(row)
            session.commit()
        user_id, csrf = row.user_id, row.csrf_token
    user = load_user(engine, user_id)
    return None if user is None else Login(user, csrf, key)


def csrf_ok(login: Login, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(login.csrf_token, submitted or "")


def end_session(engine: Engine, session_key: str) -> None:
    with Session(engine) as session:
        session.execute(delete(ConsoleSession).where(col(ConsoleSession.id) == session_key))
        session.commit()


def end_sessions_of(engine: Engine, user_id: str) -> None:
    with Session(engine) as session:
        session.execute(delete(ConsoleSession).where(col(ConsoleSession.user_id) == user_id))
        session.commit()
