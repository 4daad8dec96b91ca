"""Verifying the audit trail: the database's records, the archives and every signed
checkpoint walked as one chain (`hub audit verify`, `GET /admin/audit/verify`).

`verify` names the first broken record: altered or forged (its hash no longer matches its
contents), removed or inserted (the next record's `prev_hash` no longer matches), or cut off
after a checkpoint signed it (the database's own checkpoints, and the witness file's).
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
from sqlalchemy import Connection, select
from sqlalchemy.engine import Engine

from hub.audit.chain import (
    GENESIS,
    UNCHAINED,
    NotCanonical,
    canonical_time,
    chained_columns,
    manifest_signature,
    read_head,
    record_dict,
    record_hash,
)
from hub.audit.checkpoints import checkpoint_signed, read_witness
from hub.audit.subjects import index_problems
from hub.core.models import AuditArchive, AuditCheckpoint, AuditRecord


@dataclass
class Verification:
    """What `verify` found: counts, and the problems in chain order (the first is the first
    broken record)."""

    records: int = 0
    archived: int = 0
    checkpoints: int = 0
    #: Checkpoints read from the witness file (outside the database).
    witnessed: int = 0
    #: Records written before the hub chained its audit trail (migration 0004): kept, but
    #: nothing can show whether they were altered.
    unchained: int = 0
    last_id: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def walk(
    rows: Iterator[dict[str, Any]],
    key: bytes,
    prev_id: int,
    prev_hash: str,
    where: str,
    found: Verification,
    wanted: set[int] | None = None,
) -> tuple[int, str, dict[int, str]]:
    """Check a run of records against the chain; returns its end and the hashes of the
    `wanted` ids (those checkpoints name)."""
    hashes: dict[int, str] = {}
    for row in rows:
        rid = int(row["id"])
        if found.problems:
            break
        try:
            digest = None if row["hash"] is None else record_hash(key, prev_hash, row)
        except (NotCanonical, ValueError, TypeError):
            digest = None
        if rid <= prev_id:
            found.problems.append(f"record {rid}{where}: out of order after record {prev_id}")
        elif row["prev_hash"] != prev_hash:
            found.problems.append(
                f"record {rid}{where}: does not follow record {prev_id} "
                "(a record between them was removed or inserted)"
            )
        elif digest is None or not hmac.compare_digest(digest, row["hash"]):
            found.problems.append(
                f"record {rid}{where}: altered or forged (its hash does not match its contents)"
            )
        prev_id, prev_hash = rid, str(row["hash"])
        if wanted is not None and rid in wanted:
            hashes[rid] = prev_hash
    return prev_id, prev_hash, hashes


def _snapshot(conn: Connection) -> None:
    """Read records, checkpoints and manifests as of one moment: a hub writing (or
    archiving) while verify runs must not look like tampering."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN")  # a read transaction: one WAL snapshot throughout
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def verify(
    engine: Engine,
    key: bytes,
    archive_dir: Path | None = None,
    *,
    witness_file: Path | None = None,
) -> Verification:
    """Walk the whole chain: the archives (their manifests' signatures; with `archive_dir`,
    the files themselves, which must then be there), the database's records, then every
    signed checkpoint: those in the database and those in the witness file outside it."""
    found = Verification()
    # The witness first: every line in it was appended after its records were committed,
    # so all of them are in the snapshot taken next.
    witnessed = read_witness(witness_file) if witness_file is not None else []
    prev_id, prev_hash = 0, GENESIS
    with engine.connect() as conn:
        _snapshot(conn)
        manifests = AuditArchive.__table__  # type: ignore[attr-defined]
        archives = [
            SimpleNamespace(**row._mapping)
            for row in conn.execute(select(manifests).order_by(manifests.c.first_id))
        ]
        saved = AuditCheckpoint.__table__  # type: ignore[attr-defined]
        checkpoints = [
            {**row._mapping, "at": canonical_time(row.at)}
            for row in conn.execute(select(saved).order_by(saved.c.record_id))
        ]
        found.checkpoints, found.witnessed = len(checkpoints), len(witnessed)
        for number, entry in enumerate(witnessed, 1):
            if not checkpoint_signed(key, entry):
                found.problems.append(f"witness line {number}: bad signature")
                return found
        for archive_row in archives:
            prev_id, prev_hash = _check_archive(
                archive_row, key, prev_id, prev_hash, archive_dir, found
            )
            if found.problems:
                return found
        archived_to = prev_id
        last_unchained = 0
        table = AuditRecord.__table__  # type: ignore[attr-defined]
        result = conn.execution_options(yield_per=2000).execute(
            select(*chained_columns(conn)).order_by(table.c.id)
        )
        chained_before = any(a.last_hash != UNCHAINED for a in archives)

        def rows() -> Iterator[dict[str, Any]]:
            nonlocal last_unchained
            chained = chained_before
            for record in result:
                found.records += 1
                if record.hash is None and not chained:
                    found.unchained += 1  # written before the chain existed
                    last_unchained = int(record.id)
                    continue
                chained = True
                yield record_dict(record)

        wanted = {int(cp["record_id"]) for cp in (*checkpoints, *witnessed)}
        prev_id, prev_hash, hashes = walk(rows(), key, prev_id, prev_hash, "", found, wanted)
        result.close()
        found.last_id = prev_id
        if found.problems:
            return found
        found.problems.extend(index_problems(conn))
        if found.problems:
            return found
        ends = {a.last_id: a.last_hash for a in archives}
        for cp, source in sorted(
            [(cp, "checkpoint") for cp in checkpoints]
            + [(cp, "witnessed checkpoint") for cp in witnessed],
            key=lambda pair: int(pair[0]["record_id"]),
        ):
            rid = int(cp["record_id"])
            if source == "checkpoint" and not checkpoint_signed(key, cp):
                found.problems.append(f"checkpoint at record {rid}: bad signature")
            elif rid <= archived_to:
                if rid in ends and ends[rid] not in (cp["hash"], UNCHAINED):
                    found.problems.append(
                        f"{source} at record {rid}: the archive ending there does not match it"
                    )
            elif rid <= last_unchained:
                found.problems.append(
                    f"record {rid}: its hash was removed, yet a {source} signed it "
                    "(the chain was made to look older than it is)"
                )
            elif rid > prev_id:
                found.problems.append(
                    f"records after {prev_id} were removed: a {source} signed record {rid}"
                )
            elif hashes.get(rid) != cp["hash"]:
                found.problems.append(
                    f"{source} at record {rid}: the chain no longer matches it "
                    "(records up to it were rewritten)"
                )
            if found.problems:
                break
        if not found.problems:
            _check_head(conn, prev_id, prev_hash, found)
    return found


def _check_head(conn: Connection, end_id: int, end_hash: str, found: Verification) -> None:
    """The head row (where the writers' last commit left the chain) against the chain's end.
    It is not signed, so it shows a cut made by someone who did not also rewrite it."""
    head = read_head(conn)
    if head is None or head == (end_id, end_hash):
        return
    if head[0] > end_id:
        found.problems.append(
            f"records after {end_id} were removed: the last commit ended the chain at record "
            f"{head[0]}"
        )
    else:
        found.problems.append(
            f"the chain ends at record {end_id}, not where the last commit left it "
            f"(record {head[0]})"
        )


def _check_archive(
    archive: Any,
    key: bytes,
    prev_id: int,
    prev_hash: str,
    archive_dir: Path | None,
    found: Verification,
) -> tuple[int, str]:
    where = f" (archive {archive.file})"
    unchained = archive.last_hash == UNCHAINED
    if not hmac.compare_digest(manifest_signature(key, archive), archive.signature):
        found.problems.append(f"archive {archive.file}: bad manifest signature")
    elif archive.first_id <= prev_id or (
        (archive.first_prev_hash != prev_hash) if not unchained else (prev_hash != GENESIS)
    ):
        found.problems.append(
            f"archive {archive.file}: does not follow record {prev_id} "
            "(an archive or records before it are missing)"
        )
    if found.problems:
        return prev_id, prev_hash
    if unchained:
        found.unchained += archive.count
    else:
        found.archived += archive.count
    if archive_dir is None:
        return archive.last_id, prev_hash if unchained else archive.last_hash
    path = archive_dir / archive.file
    try:
        data = path.read_bytes()
    except OSError:
        found.problems.append(f"archive {archive.file}: file missing from {archive_dir}")
        return prev_id, prev_hash
    if hashlib.sha256(data).hexdigest() != archive.sha256:
        found.problems.append(f"archive {archive.file}: the file was altered")
        return prev_id, prev_hash
    rows = [orjson.loads(line) for line in gzip.decompress(data).splitlines() if line]
    if unchained:
        ids = [int(r["id"]) for r in rows]
        if len(rows) != archive.count or ids != sorted(ids) or ids[-1] != archive.last_id:
            found.problems.append(f"archive {archive.file}: does not hold its manifest's records")
        return archive.last_id, prev_hash
    end_id, end_hash, _ = walk(iter(rows), key, prev_id, prev_hash, where, found)
    if not found.problems and (end_id, end_hash) != (archive.last_id, archive.last_hash):
        found.problems.append(f"archive {archive.file}: ends short of its manifest")
    return end_id, end_hash
