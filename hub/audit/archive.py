"""Retention: records older than the retention period move to gzip-compressed JSON-lines
files with a signed manifest (`archive`), and `hub.audit.verify` checks the database and
those files as one chain. `AuditRetention` is the hub's background step that does it by
itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gzip
import hashlib
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Engine

from hub.audit.chain import (
    GENESIS,
    UNCHAINED,
    aware,
    canonical_time,
    chained_columns,
    lock_chain,
    manifest_signature,
    record_dict,
)
from hub.audit.verify import Verification, walk
from hub.core.models import AuditArchive, AuditCheckpoint, AuditRecord, AuditSubject, utcnow

log = logging.getLogger("hub.audit")


def archive(
    engine: Engine,
    key: bytes,
    directory: Path,
    before: dt.datetime,
    *,
    max_records: int = 100_000,
) -> AuditArchive | None:
    """Move the records older than `before` (at most `max_records`, the oldest first) to a
    signed gzip file in `directory`, then out of the database. The file is written and
    synced before anything is deleted; a crash in between leaves a file that the next run
    writes again, identical. Returns the manifest, or None when nothing was due.

    The run is checked against the chain before it is signed (a broken run is refused and
    logged: signing it would hide the tampering behind a valid signature). Records from
    before the chain existed go to archives of their own, marked unchained."""
    table = AuditRecord.__table__  # type: ignore[attr-defined]
    rows: list[dict[str, Any]] = []
    with engine.connect() as conn:
        manifests = AuditArchive.__table__  # type: ignore[attr-defined]
        previous = conn.execute(
            select(manifests.c.last_id, manifests.c.last_hash)
            .order_by(manifests.c.last_id.desc())
            .limit(1)
        ).first()
        # The oldest records in chain order, up to the first one still within retention:
        # ids follow commit order, times follow each call's end, so a later id can carry an
        # earlier time; an archive is always a run of consecutive records, and either all
        # chained or all from before the chain.
        oldest = select(*chained_columns(conn)).order_by(table.c.id).limit(max_records)
        for record in conn.execute(oldest):
            if aware(record.at) >= before:
                break
            row = record_dict(record)
            if rows and (row["hash"] is None) != (rows[0]["hash"] is None):
                break
            rows.append(row)
    if not rows:
        return None
    first, last = rows[0], rows[-1]
    unchained = first["hash"] is None
    if not unchained:
        prev_id, prev_hash = 0, GENESIS
        if previous is not None:
            prev_id = int(previous[0])
            prev_hash = GENESIS if previous[1] == UNCHAINED else str(previous[1])
        checked = Verification()
        walk(iter(rows), key, prev_id, prev_hash, "", checked)
        if not checked.ok:
            log.error("audit archive refused, the chain is broken: %s", checked.problems[0])
            return None
    lines = []
    for row in rows:
        row["at"] = canonical_time(row["at"])
        lines.append(orjson.dumps(row))
    data = gzip.compress(b"\n".join(lines) + b"\n", mtime=0)  # mtime 0: same rows, same bytes
    name = f"audit-{first['id']:012d}-{last['id']:012d}.jsonl.gz"
    directory.mkdir(parents=True, exist_ok=True)
    manifest = AuditArchive(
        created_at=utcnow(),
        file=name,
        first_id=first["id"],
        last_id=last["id"],
        count=len(rows),
        first_prev_hash=UNCHAINED if unchained else first["prev_hash"],
        last_hash=UNCHAINED if unchained else last["hash"],
        sha256=hashlib.sha256(data).hexdigest(),
        signature="",
    )
    manifest.signature = manifest_signature(key, manifest)
    _write_durably(directory / name, data)
    sidecar = manifest.model_dump(mode="json", exclude={"id"})
    _write_durably(directory / (name + ".manifest.json"), orjson.dumps(sidecar))
    with engine.connect() as conn:
        lock_chain(conn)
        still = conn.execute(
            select(table.c.id, table.c.hash)
            .where(table.c.id.between(manifest.first_id, manifest.last_id))
            .order_by(table.c.id)
        ).all()
        if len(still) != manifest.count or still[-1][1] != (None if unchained else last["hash"]):
            conn.rollback()  # another process archived them meanwhile
            return None
        archives = AuditArchive.__table__  # type: ignore[attr-defined]
        conn.execute(archives.insert().values(**manifest.model_dump(exclude={"id"})))
        conn.execute(table.delete().where(table.c.id <= manifest.last_id))
        subjects = AuditSubject.__table__  # type: ignore[attr-defined]
        conn.execute(subjects.delete().where(subjects.c.record_id <= manifest.last_id))
        checkpoints = AuditCheckpoint.__table__  # type: ignore[attr-defined]
        conn.execute(checkpoints.delete().where(checkpoints.c.record_id <= manifest.last_id))
        conn.commit()
    log.info("archived audit records %d-%d to %s", manifest.first_id, manifest.last_id, name)
    return manifest


def _write_durably(path: Path, data: bytes) -> None:
    """Write a file whole or not at all, and durably: under a name of this writer's own
    (two archivers never share a temporary file), synced, renamed into place, and the
    folder synced so that the rename itself survives a power cut."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class AuditRetention:
    """The background step that archives records past retention, at most once per interval
    in each process (processes racing for the same records write the same file; one of them
    moves the records)."""

    def __init__(
        self, engine: Engine, key: bytes, directory: str, days: float, interval_s: float
    ) -> None:
        self._engine, self._key, self._directory = engine, key, Path(directory)
        self._days, self._interval_s = days, interval_s
        self._next = 0.0

    async def run_once(self) -> int:
        if time.monotonic() < self._next:
            return 0
        self._next = time.monotonic() + self._interval_s
        before = utcnow() - dt.timedelta(days=self._days)
        moved = 0
        while True:  # a backlog goes in several files of at most 100,000 records
            done = await asyncio.to_thread(
                archive, self._engine, self._key, self._directory, before
            )
            if done is None:
                return moved
            moved += done.count
