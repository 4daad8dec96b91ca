"""Persistent records (SQLModel tables): clients, their API keys, and the audit trail."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Client(SQLModel, table=True):
    """An agency application allowed to call the hub."""

    __tablename__ = "clients"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(index=True, unique=True, max_length=200)
    agency: str | None = Field(default=None, max_length=200)
    allow: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    purposes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    created_at: dt.datetime = Field(default_factory=utcnow)


class ApiKey(SQLModel, table=True):
    """An API key of a client, stored as an HMAC of the key (the key itself is never stored)."""

    __tablename__ = "api_keys"

    id: int | None = Field(default=None, primary_key=True)
    client_id: str = Field(foreign_key="clients.id", index=True, max_length=40)
    key_hash: str = Field(index=True, unique=True, max_length=64)
    prefix: str = Field(max_length=16, description="first characters, to tell keys apart")
    created_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None


class AuditRecord(SQLModel, table=True):
    """One record per call that passed authentication: who asked what, why, and what came of it."""

    __tablename__ = "audit_records"

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(index=True)
    request_id: str = Field(index=True, max_length=128)
    client_id: str = Field(index=True, max_length=40)
    service: str = Field(max_length=64)
    operation: str = Field(max_length=64)
    purpose: str | None = Field(default=None, max_length=64)
    officer_id: str | None = Field(default=None, max_length=128)
    dossier_id: str | None = Field(default=None, max_length=128)
    subject_id: str | None = Field(default=None, index=True, max_length=64)
    status: int
    code: str = Field(max_length=64)
    duration_ms: float
    upstream_ms: float | None = None
