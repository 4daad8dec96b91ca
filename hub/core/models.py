"""Persistent records (SQLModel tables): clients, API keys, the audit trail, jobs, payments,
replay digests of inbound callbacks and the outbox of webhooks."""

from __future__ import annotations

import datetime as dt
from typing import Any, overload

from sqlalchemy import JSON, BigInteger, Column, DateTime, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.core.sealed import SealedJSON, SealedText


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@overload
def aware(value: dt.datetime) -> dt.datetime: ...
@overload
def aware(value: None) -> None: ...
@overload
def aware(value: dt.datetime | None) -> dt.datetime | None: ...
def aware(value: dt.datetime | None) -> dt.datetime | None:
    """A time read back from the database, in UTC: SQLite hands datetimes back without
    their time zone; they were stored in UTC."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)


def in_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A time to store, in UTC: SQLite keeps no offset, and `aware` reads every stored time
    back as UTC, so a time with another offset (upstream's +07:00) is converted first. A
    naive time is taken to be UTC already."""
    return value if value is None or value.tzinfo is None else value.astimezone(dt.UTC)


def iso(value: dt.datetime | None) -> str | None:
    """A time read back from the database as ISO 8601 with its offset (None stays None)."""
    when = aware(value)
    return None if when is None else when.isoformat()


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
    #: Calls a minute this client may make (None: only the hub's global limit applies).
    rate_per_minute: int | None = None
    #: Per service, the canonical fields this client may receive (dotted for nested ones);
    #: a service not named here answers in full.
    fields: dict[str, list[str]] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    #: Personal-data calls of this client must name the civil servant (X-Officer-ID) and
    #: the administrative dossier (X-Dossier-ID) they serve.
    require_officer: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    require_dossier: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})


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
    """One record per call that passed authentication: who asked what, why, and what came of it.

    Records form a hash chain (hub.audit.chain): `hash` is a keyed hash over `prev_hash` and the
    record's canonical form, so no record can be altered, removed or inserted without
    `hub audit verify` seeing it.
    """

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
    #: The canonical fields the answer carried (dotted paths, JSON list), None if no data.
    fields: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: Not unique (migration 0010): the chain lock keeps writers from forking the chain, and
    #: verify names any fork; the index cost a fifth of the writer's CPU.
    prev_hash: str | None = Field(default=None, max_length=64)
    hash: str | None = Field(default=None, max_length=64)
    #: The further data subjects the answer disclosed (JSON list of personal IDs), None if
    #: `subject_id` is the only one; indexed in `audit_subjects` (hub.audit.subjects).
    subjects: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class AuditSubject(SQLModel, table=True):
    """The index of audit records' further subjects (`AuditRecord.subjects`): one row per
    person and record, so that a person's access report finds every record that disclosed
    them. Written with the records, in their transaction; `hub audit verify` checks it."""

    __tablename__ = "audit_subjects"

    subject_id: str = Field(primary_key=True, max_length=64)
    record_id: int = Field(primary_key=True, index=True)


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement that the chain ended at `record_id` with `hash` at time `at`: once
    signed, rewriting the records up to it (even recomputing every hash) shows."""

    __tablename__ = "audit_checkpoints"

    id: int | None = Field(default=None, primary_key=True)
    at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    record_id: int = Field(index=True)
    hash: str = Field(max_length=64)
    signature: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """Where the chain ended when a hub process last committed to it (one row, id 1): the
    writers compare it with the records' end before each append, so records cut off the end
    (`delete ... where id > N`) stop every hub instead of being written over with reused ids."""

    __tablename__ = "audit_head"

    id: int | None = Field(default=None, primary_key=True)
    record_id: int
    hash: str = Field(max_length=64)


class AuditArchive(SQLModel, table=True):
    """Records moved out of the database to a signed, compressed file (retention)."""

    __tablename__ = "audit_archives"

    id: int | None = Field(default=None, primary_key=True)
    created_at: dt.datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    file: str = Field(max_length=255)
    first_id: int = Field(unique=True)
    last_id: int
    count: int
    first_prev_hash: str = Field(max_length=64)
    last_hash: str = Field(max_length=64)
    sha256: str = Field(max_length=64)
    signature: str = Field(max_length=64)


def _when(*, index: bool = False, nullable: bool = True) -> Any:
    """A timestamp column that keeps its time zone on PostgreSQL (UTC throughout)."""
    return Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), index=index, nullable=nullable),
    )


class Job(SQLModel, table=True):
    """An asynchronous upstream request the hub follows to its end (a judicial-records
    certificate application): submitted once, then updated by upstream's push or by polling.

    The hub process keeps nothing of it in memory: any hub process may poll it, take a push
    for it or deliver its callback, and a restart resumes every unfinished job.
    """

    __tablename__ = "jobs"

    id: str = Field(primary_key=True, max_length=40)
    service: str = Field(index=True, max_length=64)
    client_id: str = Field(index=True, max_length=40)
    status: str = Field(index=True, max_length=32, description="submitting, then upstream's")
    final: bool = Field(default=False, index=True)
    upstream_reference: str | None = Field(default=None, index=True, max_length=64)
    subject_id: str | None = Field(default=None, max_length=64)
    purpose: str | None = Field(default=None, max_length=64)
    officer_id: str | None = Field(default=None, max_length=128)
    dossier_id: str | None = Field(default=None, max_length=128)
    callback_url: str | None = Field(default=None, max_length=500)
    #: Sealed at rest (hub.core.sealed): a certificate, its holder's name and ID.
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(SealedJSON, nullable=True))
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: dt.datetime | None = _when()
    completed_at: dt.datetime | None = _when()
    next_poll_at: dt.datetime | None = _when(index=True)
    poll_attempts: int = 0
    lease_until: dt.datetime | None = _when()


class Payment(SQLModel, table=True):
    """A payment the hub opened for a client through a payment provider (`service`).

    `id` is also the reference sent upstream (e.g. MaThamChieu). The payer's name and ID go
    upstream on the receipt but are not kept here: the hub stores what it needs to follow
    the payment, no more.
    """

    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("client_id", "idempotency_key"),)

    id: str = Field(primary_key=True, max_length=40)
    service: str = Field(max_length=64, description="The provider (a PaymentProvider adapter)")
    client_id: str = Field(index=True, max_length=40)
    idempotency_key: str = Field(max_length=255)
    request_hash: str = Field(max_length=64)
    status: str = Field(index=True, max_length=16, description="initiating|pending|paid|failed")
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(default="VND", max_length=3)
    description: str = Field(max_length=200)
    procedure_code: str = Field(max_length=50)
    dossier_id: str = Field(max_length=50)
    transaction_id: str | None = Field(default=None, index=True, max_length=64)
    pay_url: str | None = Field(default=None, max_length=500)
    callback_url: str | None = Field(default=None, max_length=500)
    last_error: str | None = Field(default=None, max_length=64)
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    updated_at: dt.datetime | None = _when()
    paid_at: dt.datetime | None = _when()
    next_query_at: dt.datetime | None = _when(index=True)
    query_attempts: int = 0
    lease_until: dt.datetime | None = _when()


class InboundMessage(SQLModel, table=True):
    """A digest of every signed callback applied, so a replay changes nothing."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("source", "digest"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=64)
    digest: str = Field(max_length=64)
    received_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class WebhookDelivery(SQLModel, table=True):
    """An outgoing signed notification to a client's callback URL (an outbox row).

    Written in the same transaction as the state change it announces, delivered by any hub
    process, retried with back-off until delivered or given up.
    """

    __tablename__ = "webhook_deliveries"

    id: str = Field(primary_key=True, max_length=40)
    client_id: str = Field(index=True, max_length=40)
    url: str = Field(max_length=500)
    event: str = Field(max_length=64)
    #: The service whose data it carries, the person it concerns and the purpose the client
    #: stated, for the audit record each attempt writes (None in rows from before 0005).
    service: str | None = Field(default=None, max_length=64)
    subject_id: str | None = Field(default=None, max_length=64)
    purpose: str | None = Field(default=None, max_length=64)
    #: Sealed at rest (hub.core.sealed): what the client receives, personal data included.
    payload: str = Field(sa_column=Column(SealedText, nullable=False))
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    attempts: int = 0
    next_attempt_at: dt.datetime | None = _when(index=True)
    delivered_at: dt.datetime | None = _when()
    gave_up_at: dt.datetime | None = _when()
    last_status: int | None = None
    lease_until: dt.datetime | None = _when()


class ConsoleUser(SQLModel, table=True):
    """A named person who logs in to the console (hub/console): an operator, an auditor or
    a viewer. Not an agency client: a console user never holds an API key."""

    __tablename__ = "console_users"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(index=True, unique=True, max_length=64)
    #: Comma-separated roles: operator, auditor, viewer.
    roles: str = Field(max_length=64)
    #: An argon2id hash (argon2-cffi's PasswordHasher), never the password.
    password_hash: str = Field(max_length=255)
    #: The base32 TOTP secret when a second factor is enrolled.
    totp_secret: str | None = Field(default=None, max_length=64)
    active: bool = True
    failed_logins: int = 0
    locked_until: dt.datetime | None = _when()
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    last_login_at: dt.datetime | None = _when()


class ConsoleSession(SQLModel, table=True):
    """A console login, kept server-side: the cookie holds a random token, this row holds
    only its SHA-256 (a copy of the table opens no session)."""

    __tablename__ = "console_sessions"

    id: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="console_users.id", index=True, max_length=40)
    csrf_token: str = Field(max_length=64)
    created_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
    last_seen_at: dt.datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )
