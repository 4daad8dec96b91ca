"""Signed checkpoints: what shows the chain's end was not cut off.

Every `checkpoint_every` records, at least every `checkpoint_interval_s` seconds while any
record is unsigned (a timer: an idle hub signs too) and at shutdown, the writer signs the id
and hash the chain has reached; records removed after a
checkpoint, or a database restored to an older copy and written again, no longer match it.
Each checkpoint is also witnessed outside the database (`witness`): a file on other storage
and the process log, since one kept only in the database could be deleted with its records.
"""

from __future__ import annotations

import hmac
import logging
import os
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from hub.audit.chain import (
    canonical_time,
    checked_end,
    lock_chain,
    positional,
    sign,
    stored_time,
)
from hub.core.models import utcnow

log = logging.getLogger("hub.audit")


def write_checkpoint(conn: Any, key: bytes, record_id: int, digest: str) -> dict[str, Any]:
    """Sign `record_id` and its hash into the database, in the caller's transaction; the
    signed entry, for `witness` once that transaction is committed."""
    at = utcnow()
    entry = {
        "record_id": record_id,
        "hash": digest,
        "at": canonical_time(at),
        "signature": sign(key, "checkpoint", record_id, digest, canonical_time(at)),
    }
    sql = "INSERT INTO audit_checkpoints (at, record_id, hash, signature) VALUES (?, ?, ?, ?)"
    values = (stored_time(conn, at), record_id, digest, entry["signature"])
    conn.exec_driver_sql(positional(conn, sql), values)
    return entry


def checkpoint_signed(key: bytes, cp: dict[str, Any]) -> bool:
    """Whether a checkpoint (from the database or a witness line) carries its signature."""
    try:
        expected = sign(
            key, "checkpoint", int(cp["record_id"]), cp["hash"], canonical_time(cp["at"])
        )
        return hmac.compare_digest(expected, str(cp["signature"]))
    except (KeyError, ValueError, TypeError):
        return False


def witness(path: Path | None, entry: dict[str, Any]) -> None:
    """Put a signed checkpoint where a database-only attacker cannot reach it: appended and
    synced to the witness file (kept beside the archives, on other storage than the
    database), and into the process log, which production ships to central logging. A
    checkpoint kept only in the database could be deleted with the records it vouches for.

    A failure here loses only this copy: the records and the database's checkpoint are
    committed already, so it is logged and the call goes on."""
    log.info("audit checkpoint at record %d", entry["record_id"], extra={"checkpoint": entry})
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        line = orjson.dumps(entry) + b"\n"
        # O_APPEND: several hub processes append whole lines without interleaving them.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        log.error("audit checkpoint not witnessed in %s: %s", path, type(exc).__name__)


def read_witness(path: Path) -> list[dict[str, Any]]:
    """The checkpoints a witness file holds (a torn last line, from a crash, is skipped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    entries = []
    for line in data.splitlines():
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def sign_end(
    conn: Any, key: bytes, mine: tuple[int, str] | None = None
) -> tuple[dict[str, Any] | None, tuple[int, str]]:
    """In the caller's transaction, under the chain lock: sign the chain's end unless it is
    signed already. Returns the signed entry (None: nothing new) and the end. Raises
    ChainBroken, signing nothing, when the end is not where the last commit left it: a
    checkpoint must never vouch for a chain cut short."""
    lock_chain(conn)
    end, _ = checked_end(conn, mine)
    latest = conn.exec_driver_sql("SELECT MAX(record_id) FROM audit_checkpoints").scalar()
    if end[0] == 0 or (latest is not None and int(latest) >= end[0]):
        return None, end
    return write_checkpoint(conn, key, *end), end


def checkpoint(
    engine: Engine,
    key: bytes,
    witness_file: Path | None = None,
    mine: tuple[int, str] | None = None,
) -> int | None:
    """Sign the chain's current end unless it is signed already; the record id, or None
    when there is nothing (new) to sign. Raises ChainBroken (see `sign_end`)."""
    with engine.connect() as conn:
        entry, _ = sign_end(conn, key, mine)
        if entry is None:
            conn.rollback()
            return None
        conn.commit()
    witness(witness_file, entry)
    return int(entry["record_id"])
