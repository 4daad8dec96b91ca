"""The audit chain: how records are linked, hashed and signed, and where the chain ends.

Each record carries `prev_hash`, the hash of the record before it, and `hash`, HMAC-SHA256
(keyed with a key derived from the server secret) over `prev_hash` and the record's canonical
form: its id and every column, in a fixed order (`record_hash`). Ids are given by the writer,
consecutive, under a lock every hub process takes for the length of its commit (a PostgreSQL
advisory lock; SQLite's write lock, taken at BEGIN IMMEDIATE) and checked against the head
row (`checked_end`), so two processes can never fork the chain; a fork written by anyone
else breaks the link verify walks. Altering a record breaks its hash; removing or
inserting one breaks the next record's `prev_hash`; and without the secret nobody can compute
the hashes a forged record or a rewritten chain would need. What a chain cannot show by itself
is its end being cut off: the signed checkpoints do (`hub.audit.checkpoints`).

The chain is written by the hub itself rather than by a ledger library: the few that exist
(immudb, Trillian) are servers to run beside the hub, against the two-command start.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
from typing import Any

import orjson
from sqlalchemy import Connection, Text, cast

from hub.core.models import AuditRecord

#: The `prev_hash` of the first record ever written.
GENESIS = "0" * 64

#: The hashes an archive manifest carries for records from before the chain existed.
UNCHAINED = "unchained"

#: The columns a record's hash covers, in the order they are hashed. Adding a column to the
#: record means adding it here at the end: null values at the end are left out of the hash,
#: so the records written before then keep the hash they were written with.
CHAINED = (
    "id",
    "at",
    "request_id",
    "client_id",
    "service",
    "operation",
    "purpose",
    "officer_id",
    "dossier_id",
    "subject_id",
    "status",
    "code",
    "duration_ms",
    "upstream_ms",
    "fields",
    "subjects",
)

#: How many columns the chain covered when it was introduced (migration 0004).
_FIRST_CHAINED = CHAINED.index("fields") + 1

_PG_CHAIN_LOCK = 7407460912  # pg_advisory_xact_lock key of the audit chain


def signing_key(secret: bytes) -> bytes:
    """The checkpoint and archive signing key, derived from the server secret (the secret
    itself also keys API-key hashes; one key per use)."""
    return hmac.digest(secret, b"lgsp-hub audit signing key v1", hashlib.sha256)


def sign(key: bytes, *parts: Any) -> str:
    return hmac.new(key, "|".join(str(p) for p in parts).encode(), hashlib.sha256).hexdigest()


def manifest_signature(key: bytes, archive: Any) -> str:
    """The signature an archive's manifest carries (`hub.audit.archive` signs, `verify`
    checks)."""
    return sign(
        key,
        "archive",
        archive.file,
        archive.first_id,
        archive.last_id,
        archive.count,
        archive.first_prev_hash,
        archive.last_hash,
        archive.sha256,
    )


def canonical_time(value: dt.datetime | str) -> str:
    """UTC, microseconds, `Z`: the same text whatever the database handed back (SQLite gives
    naive UTC datetimes, or text from a raw query; PostgreSQL aware ones in its time zone)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    elif value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    if value.year < 1000:  # strftime writes such a year unpadded; isoformat would pad it
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # "YYYY-MM-DDTHH:MM:SS.ffffff+00:00": the same text as the strftime above at half its
    # cost (the writer formats one per record).
    return value.isoformat(timespec="microseconds")[:26] + "Z"


def aware(value: Any) -> dt.datetime:
    """A stored time as an aware datetime (SQLite hands back naive UTC, or text)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


#: How a time is stored as text: by the writer on SQLite (naive UTC), and in archive files
#: (canonical). Text in any other form (an offset, fewer digits) was not written by the hub:
#: the same instant written as "…-23:00" would sort a day away in time-filtered searches.
_STORED_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}\.\d{6}Z?")


class NotCanonical(ValueError):
    """A stored value no writer of the hub produces: the record was altered."""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _integer(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and not value.is_integer():
        raise NotCanonical(name)
    return int(value)


def _number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)  # 3 and 3.0 must hash alike
    if not math.isfinite(number):  # orjson writes NaN and infinities as null
        raise NotCanonical(name)
    return number


def _canonical(row: dict[str, Any], at: str | None = None) -> list[Any]:
    # Written out column by column in CHAINED's order (a test holds the two together): a
    # loop over CHAINED testing each name cost the writer 3.6 µs per record, this 1 µs.
    get = row.get
    if at is None:
        value = get("at")
        if value is not None:
            if isinstance(value, str) and not _STORED_TIME.fullmatch(value):
                raise NotCanonical("at")
            at = canonical_time(value)
    values = [
        _integer("id", get("id")),
        at,
        _text(get("request_id")),
        _text(get("client_id")),
        _text(get("service")),
        _text(get("operation")),
        _text(get("purpose")),
        _text(get("officer_id")),
        _text(get("dossier_id")),
        _text(get("subject_id")),
        _integer("status", get("status")),
        _text(get("code")),
        _number("duration_ms", get("duration_ms")),
        _number("upstream_ms", get("upstream_ms")),
        _text(get("fields")),
        _text(get("subjects")),
    ]
    while len(values) > _FIRST_CHAINED and values[-1] is None:
        values.pop()  # a column added later, null: hashed as before it existed
    return values


#: HMAC-SHA256's inner and outer hashes with the key already absorbed, per key: the hash of
#: a record then costs two copies and two updates (0.7 µs) instead of `hmac.digest`'s key
#: set-up each time (1.6 µs).
_PADS: dict[bytes, tuple[Any, Any]] = {}


def _pads(key: bytes) -> tuple[Any, Any]:
    pads = _PADS.get(key)
    if pads is None:
        # RFC 2104: a key longer than the block is hashed first, a shorter one padded.
        block = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
        inner = hashlib.sha256(bytes(k ^ 0x36 for k in block))
        outer = hashlib.sha256(bytes(k ^ 0x5C for k in block))
        if len(_PADS) >= 16:  # a few keys per process (tests use more): stay small
            _PADS.clear()
        pads = _PADS[key] = (inner, outer)
    return pads


def record_hash(key: bytes, prev_hash: str, row: dict[str, Any], *, at: str | None = None) -> str:
    """The hash of a record, given the hash of the one before it: HMAC-SHA256 keyed with the
    audit key, so that nobody without the server secret can compute a valid one. `at`: the
    record's time as `canonical_time` wrote it, if the caller has it already (the writer)."""
    body = orjson.dumps(_canonical(row, at))
    inner_pad, outer_pad = _pads(key)
    inner = inner_pad.copy()
    inner.update(prev_hash.encode())
    inner.update(b"\n")
    inner.update(body)
    outer = outer_pad.copy()
    outer.update(inner.digest())
    return outer.hexdigest()  # type: ignore[no-any-return]


def chained_columns(conn: Connection) -> list[Any]:
    """The columns a record's hash covers, plus its links, as stored: on SQLite `at` is read
    as its stored text, not a parse of it (text in a form the writer never uses is an
    alteration the parse would hide)."""
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    columns = [table.c[name] for name in (*CHAINED, "prev_hash", "hash")]
    if conn.dialect.name == "sqlite":
        columns[CHAINED.index("at")] = cast(table.c.at, Text).label("at")
    return columns


def record_dict(record: Any) -> dict[str, Any]:
    """A row read with `chained_columns`, as the dict `record_hash` takes."""
    return {name: getattr(record, name) for name in (*CHAINED, "prev_hash", "hash")}


def lock_chain(conn: Any) -> None:
    """Take the chain's write lock for this transaction (see the module docstring)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_CHAIN_LOCK})")
    elif conn.dialect.name == "sqlite":
        # pysqlite begins a transaction lazily, at the first write: after we had read the
        # chain's end. BEGIN IMMEDIATE takes the write lock before that read.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def chain_end(conn: Any) -> tuple[int, str]:
    """The id and hash the chain has reached (records archived away count too)."""
    last = conn.exec_driver_sql(
        "SELECT id, hash FROM audit_records ORDER BY id DESC LIMIT 1"
    ).first()
    if last is not None:
        # A record from before the chain existed (migration 0004) has no hash: start anew.
        return int(last[0]), GENESIS if last[1] is None else str(last[1])
    archived = conn.exec_driver_sql(
        "SELECT last_id, last_hash FROM audit_archives ORDER BY last_id DESC LIMIT 1"
    ).first()
    if archived is not None:
        return int(archived[0]), GENESIS if archived[1] == UNCHAINED else str(archived[1])
    return 0, GENESIS


class ChainBroken(Exception):
    """The chain no longer ends where the hub last wrote it: records were cut off the end
    (or the head rewritten). Its text names record ids only, never a record's contents."""


def read_head(conn: Any) -> tuple[int, str] | None:
    """The record id and hash the last commit left the chain at (None: no commit since
    migration 0010)."""
    row = conn.exec_driver_sql("SELECT record_id, hash FROM audit_head WHERE id = 1").first()
    return None if row is None else (int(row[0]), str(row[1]))


def positional(conn: Any, sql: str) -> str:
    """`sql` written with `?` marks, in the driver's own style (sqlite3 qmark, psycopg %s)."""
    return sql if conn.dialect.paramstyle == "qmark" else sql.replace("?", "%s")


def stored_time(conn: Any, at: dt.datetime) -> Any:
    """A time as a driver-level statement stores it: on SQLite the naive UTC text SQLAlchemy
    writes (and reads back), elsewhere the aware datetime."""
    if conn.dialect.name == "sqlite":
        return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return at


def write_head(conn: Any, head: tuple[int, str], *, known: bool) -> None:
    """Record the chain's new end in the caller's transaction (`known`: the row exists)."""
    sql = (
        "UPDATE audit_head SET record_id = ?, hash = ? WHERE id = 1"
        if known
        else "INSERT INTO audit_head (record_id, hash, id) VALUES (?, ?, 1)"
    )
    conn.exec_driver_sql(positional(conn, sql), head)


_END_AND_HEAD = (
    "SELECT (SELECT id FROM audit_records ORDER BY id DESC LIMIT 1),"
    " (SELECT hash FROM audit_records ORDER BY id DESC LIMIT 1),"
    " (SELECT record_id FROM audit_head WHERE id = 1),"
    " (SELECT hash FROM audit_head WHERE id = 1)"
)


def checked_end(conn: Any, mine: tuple[int, str] | None = None) -> tuple[tuple[int, str], bool]:
    """The chain's end, under the chain lock, once it is shown to be where the last commit
    (of any hub process: the head row) and this process's own last commit (`mine`) left it;
    and whether the head row exists. Raises ChainBroken otherwise."""
    # The last record and the head row in one statement: one round trip per commit fewer
    # (on PostgreSQL a round trip on every call's commit when calls come one at a time).
    last_id, last_hash, head_id, head_hash = conn.exec_driver_sql(_END_AND_HEAD).first()
    if last_id is None:
        end = chain_end(conn)  # no records (yet, or archived away)
    else:  # a record from before the chain existed (migration 0004) has no hash: start anew
        end = (int(last_id), GENESIS if last_hash is None else str(last_hash))
    head = None if head_id is None else (int(head_id), str(head_hash))
    if head is not None and head != end:
        raise ChainBroken(
            f"the audit chain ends at record {end[0]}, but its last commit ended it at record "
            f"{head[0]}"
        )
    if mine is not None and mine != end:
        if end[0] < mine[0]:
            raise ChainBroken(
                f"the audit chain ends at record {end[0]}, but this process wrote up to "
                f"record {mine[0]}"
            )
        row = conn.exec_driver_sql(
            positional(conn, "SELECT hash FROM audit_records WHERE id = ?"), (mine[0],)
        ).first()
        if row is not None and row[0] != mine[1]:  # no row: archived since
            raise ChainBroken(f"audit record {mine[0]} is not the one this process wrote")
    return end, head is not None
