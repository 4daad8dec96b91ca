"""Asynchronous upstream requests followed to their end (judicial-records certificates).

An async adapter offers two operations, `submit` (not idempotent; returns
`{"reference", "status"}`) and `status` (`{"reference"}` in, the current state out, with
`status` one of its final statuses when done), and a plain method
`parse_push(body, headers) -> state` that verifies and reads upstream's pushed result.

The hub's part, the same for every such adapter:

- submit: a `submitting` job row is written *before* the upstream call, so a hub that cannot
  write never asks upstream; on refusal the row is removed, on success it takes upstream's
  reference. The caller gets 202 and the job id.
- upstream's push updates the job (signature checked by the adapter; a replayed push
  changes nothing);
- polling as the fallback: any hub process leases due jobs and asks `status`, backing off
  exponentially; a restart loses nothing because every unfinished job is a row;
- on the final state a signed webhook goes to the client's callback URL, from the outbox
  written in the same transaction.

Upstream's answers are stored whole; the job's view, answered by the routes and sent in
the webhook, is cut to the client's field grant (hub.security.fields).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub.adapter import AsyncAdapter
from hub.capabilities.webhooks import enqueue, lease, unleased
from hub.core.config import Settings
from hub.core.gateway import CallerHeaders, Gateway
from hub.core.models import InboundMessage, Job, utcnow
from hub.core.registry import AdapterRegistry
from hub.errors import (
    HubError,
    NotFound,
    SchemaViolation,
    UpstreamRejected,
    UpstreamUnavailable,
)
from hub.resilience.retry import doubling_delay
from hub.security.auth import Principal
from hub.security.fields import granted_fields, trim_view

log = logging.getLogger("hub.jobs")

SUBMITTING = "submitting"
#: Submitted, but whether upstream got it is not known (a timeout, a lost answer, a hub
#: stopped mid-call): no reference to poll, so the job waits for upstream's push, which
#: carries the job id back, and resubmitting would risk a duplicate application.
UNCONFIRMED = "unconfirmed"
FAILED = "failed"
#: Hub errors that prove upstream did not take the submission: nothing to wait for.
_NOTHING_SUBMITTED = (UpstreamRejected, UpstreamUnavailable)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    # SQLite hands datetimes back without their time zone; they were stored in UTC.
    return value if value is None or value.tzinfo else value.replace(tzinfo=dt.UTC)


#: The keys of a job's view that are the hub's own bookkeeping, kept whatever the client's
#: field grant; the others are upstream's canonical fields, cut with it (hub.security.fields).
JOB_HUB_KEYS = frozenset(
    {
        "id",
        "service",
        "status",
        "final",
        "submitted_at",
        "updated_at",
        "completed_at",
        "callback_url",
        "error",
    }
)
#: A job's view names upstream's `reference` so.
JOB_RENAMED = {"upstream_reference": "reference"}


def job_view(job: Job, fields: tuple[str, ...] | None) -> dict[str, Any]:
    """A job as its client sees it, cut to the client's field grant for the service
    (`fields`; None: in full)."""
    result = job.result or {}
    view = {
        "id": job.id,
        "service": job.service,
        "status": job.status,
        "final": job.final,
        "upstream_reference": job.upstream_reference,
        "submitted_at": _iso(job.created_at),
        "updated_at": _iso(job.updated_at),
        "completed_at": _iso(job.completed_at),
        "callback_url": job.callback_url,
        **{k: v for k, v in result.items() if k not in ("reference", "status")},
    }
    return trim_view(view, fields, hub_keys=JOB_HUB_KEYS, renamed=JOB_RENAMED)


def _iso(value: dt.datetime | None) -> str | None:
    aware = _aware(value)
    return None if aware is None else aware.isoformat()


class JobService:
    """Submit, push, poll and view jobs of one asynchronous service."""

    def __init__(
        self,
        gateway: Gateway,
        engine: Engine,
        *,
        service: str,
        final_statuses: frozenset[str],
        poll_initial_s: float,
        poll_max_s: float,
        submit_stale_s: float,
        lost_after_s: float = 3600.0,
        unconfirmed_s: float = 86400.0,
        batch: int = 20,
    ) -> None:
        self.gateway, self.service = gateway, service
        self.engine = engine
        self.final_statuses = final_statuses
        self.poll_initial_s, self.poll_max_s = poll_initial_s, poll_max_s
        self.submit_stale_s, self.batch = submit_stale_s, batch
        self.lost_after_s, self.unconfirmed_s = lost_after_s, unconfirmed_s

    # -- submit ----------------------------------------------------------------------------

    async def submit(
        self,
        caller: CallerHeaders,
        principal: Principal,
        body: dict[str, Any],
        callback_url: str | None,
    ) -> dict[str, Any]:
        """Submit upstream through the pipeline and record the job; returns its view."""
        principal.authorize(  # before anything is written
            self.service,
            "submit",
            personal_data=True,
            purpose=caller.purpose,
            officer_id=caller.officer_id,
            dossier_id=caller.dossier_id,
        )
        job = Job(
            id="job_" + secrets.token_hex(10),
            service=self.service,
            client_id=principal.client_id,
            status=SUBMITTING,
            purpose=caller.purpose,
            officer_id=caller.officer_id,
            dossier_id=caller.dossier_id,
            callback_url=callback_url,
        )
        await asyncio.to_thread(self._insert, job)
        subject = body.get("personal_id") if isinstance(body.get("personal_id"), str) else None
        upstream_caller = dataclasses.replace(caller, correlation_id=job.id)
        fields = principal.fields_for(self.service)
        try:
            # Whole (trim=False): the hub needs upstream's reference whatever the client's
            # field grant; the job's view it answers is cut to that grant.
            result = await self.gateway.call(
                upstream_caller, self.service, "submit", body, principal=principal, trim=False
            )
        except HubError as exc:
            if exc.status < 500 or isinstance(exc, _NOTHING_SUBMITTED):
                await asyncio.shield(asyncio.to_thread(self._delete, job.id))
                raise
            # Upstream may have the application: answer with the job, which upstream's push
            # will finish, rather than an error that invites a duplicate submission.
            log.warning("submit of %s unconfirmed: %s", job.id, exc.code, extra={"job_id": job.id})
            return await asyncio.shield(
                asyncio.to_thread(self._unconfirmed, job.id, exc.code, subject, fields)
            )
        except BaseException:  # cancelled (the caller left) or a bug: upstream may have it
            await asyncio.shield(
                asyncio.to_thread(self._unconfirmed, job.id, None, subject, fields)
            )
            raise
        return await asyncio.to_thread(self._submitted, job.id, result.data, subject, fields)

    def _insert(self, job: Job) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(job)
            session.commit()

    def _delete(self, job_id: str) -> None:
        with Session(self.engine, expire_on_commit=False) as session:
            job = session.get(Job, job_id)
            if job is not None:
                session.delete(job)
                session.commit()

    def _unconfirmed(
        self,
        job_id: str,
        code: str | None,
        subject: str | None,
        fields: tuple[str, ...] | None,
    ) -> dict[str, Any]:
        now = utcnow()
        with Session(self.engine, expire_on_commit=False) as session:
            job = self._claim_submitting(session, job_id)
            if job.status != SUBMITTING:
                return job_view(job, fields)
            job.status, job.subject_id, job.updated_at = UNCONFIRMED, subject, now
            job.result = {"error": code or "SUBMIT_INTERRUPTED"}
            session.add(job)
            session.commit()
            session.refresh(job)
            return job_view(job, fields)

    def _submitted(
        self,
        job_id: str,
        data: dict[str, Any],
        subject: str | None,
        fields: tuple[str, ...] | None,
    ) -> dict[str, Any]:
        now = utcnow()
        with Session(self.engine, expire_on_commit=False) as session:
            job = self._claim_submitting(session, job_id)
            if job.status != SUBMITTING:
                return job_view(job, fields)
            job.upstream_reference = str(data["reference"])
            job.subject_id = subject
            job.updated_at = now
            self._set_state(session, job, data, now)
            if not job.final:
                job.next_poll_at = now + dt.timedelta(seconds=self.poll_initial_s)
            session.add(job)
            session.commit()
            session.refresh(job)
            return job_view(job, fields)

    @staticmethod
    def _claim_submitting(session: Session, job_id: str) -> Job:
        """The job, locked for this transaction if it is still `submitting`. Upstream's push,
        which names the job, may have overtaken the answer to its submission and moved it on
        (`_adopt`): then it is returned as the push left it, for the caller not to touch."""
        session.execute(  # takes the row's write lock (PostgreSQL) or the database's (SQLite)
            update(Job)
            .where(col(Job.id) == job_id)
            .where(col(Job.status) == SUBMITTING)
            .values(status=SUBMITTING)
            .execution_options(synchronize_session=False)
        )
        job = session.get(Job, job_id, populate_existing=True)
        if job is None:  # pragma: no cover - only this process knows the id yet
            raise NotFound("the job vanished")
        return job

    # -- view --------------------------------------------------------------------------------

    async def view(self, principal: Principal, job_id: str) -> tuple[dict[str, Any], str | None]:
        """A client's own job (another client's is 404, as if it did not exist), cut to its
        field grant."""
        job = await asyncio.to_thread(self._get, job_id)
        if job is None or job.client_id != principal.client_id or job.service != self.service:
            raise NotFound("no such request")
        return job_view(job, principal.fields_for(self.service)), job.subject_id

    def _get(self, job_id: str) -> Job | None:
        if len(job_id) > 40:
            return None
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Job, job_id)

    # -- push ----------------------------------------------------------------------------

    async def accept_push(
        self, request_id: str, body: bytes, headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """Apply a pushed result (verified by the adapter). Returns what to answer upstream."""
        adapter = self.gateway.registry.get(self.service).instance
        assert isinstance(adapter, AsyncAdapter)  # only those get a JobService
        try:
            state = adapter.parse_push(body, headers)
        except (ValidationError, ValueError):  # an adapter that let a parse error out
            raise SchemaViolation("the pushed result does not have the expected shape") from None
        data = state.model_dump(mode="json")
        digest = hashlib.sha256(body).hexdigest()
        outcome = await asyncio.to_thread(self._apply_push, data, digest)
        if outcome is None:
            raise NotFound("no request with that reference")
        job, changed = outcome
        await self.gateway.record_event(
            CallerHeaders(request_id=request_id, authorization=None, purpose=job.purpose),
            job.client_id,
            self.service,
            "push",
            subject_id=job.subject_id,
        )
        return {"id": job.id, "status": job.status, "applied": changed}

    def _apply_push(self, data: dict[str, Any], digest: str) -> tuple[Job, bool] | None:
        now = utcnow()
        with Session(self.engine, expire_on_commit=False) as session:
            job = session.exec(
                select(Job)
                .where(Job.service == self.service)
                .where(Job.upstream_reference == str(data["reference"]))
            ).first()
            if job is None:
                job = self._adopt(session, data)
            if job is None:
                return None
            seen = session.exec(
                select(InboundMessage.id)
                .where(InboundMessage.source == self.service)
                .where(InboundMessage.digest == digest)
            ).first()
            if seen is not None or job.final:
                return job, False  # a replay, or news of a job already finished
            session.add(InboundMessage(source=self.service, digest=digest))
            if not self._set_state(session, job, data, now):
                session.rollback()  # a poll finished it meanwhile
                return job, False
            session.add(job)
            session.commit()
            session.refresh(job)
            return job, True

    def _adopt(self, session: Session, data: dict[str, Any]) -> Job | None:
        """The job without upstream's reference that a push names by the reference the hub
        sent (its job id): unconfirmed, or still `submitting` (a hub stopped, or killed,
        before it recorded upstream's answer; the push may also overtake that answer). It
        now has upstream's reference, and is followed like any other."""
        portal_reference = data.get("portal_reference")
        if not isinstance(portal_reference, str) or len(portal_reference) > 40:
            return None
        job = session.get(Job, portal_reference)
        if (
            job is None
            or job.service != self.service
            or job.status not in (UNCONFIRMED, SUBMITTING)
        ):
            return None
        job.upstream_reference = str(data["reference"])
        job.next_poll_at = utcnow()  # followed from now on; a final push ends it at once
        log.info("job %s confirmed by upstream's push", job.id, extra={"job_id": job.id})
        return job

    # -- polling -----------------------------------------------------------------------------

    async def poll_once(self) -> int:
        """Poll every due job this process can lease; returns how many were polled."""
        jobs = await asyncio.to_thread(self._lease_due)
        await asyncio.gather(*(self._poll(job) for job in jobs))
        return len(jobs)

    def _lease_due(self) -> list[Job]:
        now = utcnow()
        with Session(self.engine, expire_on_commit=False) as session:
            self._fail_stale_submissions(session, now)
            unfinished = col(Job.final).is_(False)
            due = session.exec(
                select(Job.id)
                .where(Job.service == self.service)
                .where(unfinished)
                .where(Job.status != SUBMITTING)
                .where(col(Job.next_poll_at) <= now)
                .where(unleased(Job, now))
                .order_by(col(Job.next_poll_at))
                .limit(self.batch)
            ).all()
            leased = [
                job_id
                for job_id in due
                if lease(session, Job, job_id, now, seconds=120, still=unfinished)
            ]
            session.commit()
            jobs = [session.get(Job, job_id) for job_id in leased]
            for job in jobs:
                session.expunge(job)
        return [job for job in jobs if job is not None]

    def _fail_stale_submissions(self, session: Session, now: dt.datetime) -> None:
        """A job left `submitting` by a hub that stopped mid-call never got a reference:
        upstream may have it, so it becomes `unconfirmed` (its push can still find it). An
        unconfirmed job no push has confirmed within `unconfirmed_s` ends failed."""
        cutoff = now - dt.timedelta(seconds=self.submit_stale_s)
        stale = session.exec(
            select(Job)
            .where(Job.service == self.service)
            .where(Job.status == SUBMITTING)
            .where(col(Job.created_at) < cutoff)
            .where(unleased(Job, now))
        ).all()
        for job in stale:
            job.status, job.updated_at = UNCONFIRMED, now
            job.result = {"error": "SUBMIT_INTERRUPTED"}
            session.add(job)
        given_up = now - dt.timedelta(seconds=self.unconfirmed_s)
        for job in session.exec(
            select(Job)
            .where(Job.service == self.service)
            .where(Job.status == UNCONFIRMED)
            .where(col(Job.updated_at) < given_up)
        ).all():
            error = (job.result or {}).get("error") or "SUBMIT_UNCONFIRMED"
            self._set_state(session, job, {"status": FAILED, "error": error}, now, final=True)
            session.add(job)

    async def _poll(self, job: Job) -> None:
        caller = CallerHeaders(
            request_id=f"{job.id}.poll{job.poll_attempts + 1}",
            authorization=None,
            purpose=job.purpose,
            officer_id=job.officer_id,
            dossier_id=job.dossier_id,
        )
        principal = Principal(job.client_id, "hub-worker", frozenset(), frozenset())
        data: dict[str, Any] | None = None
        try:
            result = await self.gateway.call(
                caller,
                self.service,
                "status",
                {"reference": job.upstream_reference},
                principal=principal,
                authorize=False,  # the client was authorized when it submitted
                subject_id=job.subject_id,
                trim=False,  # stored whole; cut where it leaves the hub (view, webhook)
            )
            data = result.data
        except NotFound:
            # Upstream does not know the reference. Just after submission that may be its
            # own lag; later, it lost the application: end the job rather than poll for ever.
            log.info("poll of %s: upstream does not know it", job.id, extra={"job_id": job.id})
            data = {"status": FAILED, "error": "UPSTREAM_LOST"} if self._lost(job) else None
        except HubError as exc:
            log.info("poll of %s failed: %s", job.id, exc.code, extra={"job_id": job.id})
        await asyncio.to_thread(self._polled, job.id, data)

    def _lost(self, job: Job) -> bool:
        created = _aware(job.created_at)
        return created is not None and (utcnow() - created).total_seconds() > self.lost_after_s

    def _polled(self, job_id: str, data: dict[str, Any] | None) -> None:
        now = utcnow()
        with Session(self.engine, expire_on_commit=False) as session:
            job = session.get(Job, job_id)
            if job is None:
                return
            job.poll_attempts += 1
            job.lease_until = None
            final = True if data is not None and data.get("error") == "UPSTREAM_LOST" else None
            if (
                data is not None
                and not job.final
                and not self._set_state(session, job, data, now, final=final)
            ):
                session.refresh(job)  # a push finished it meanwhile
            if not job.final:
                delay = doubling_delay(self.poll_initial_s, self.poll_max_s, job.poll_attempts)
                job.next_poll_at = now + dt.timedelta(seconds=delay)
            session.add(job)
            session.commit()

    # -- state -------------------------------------------------------------------------------

    def _set_state(
        self,
        session: Session,
        job: Job,
        data: dict[str, Any],
        now: dt.datetime,
        *,
        final: bool | None = None,
    ) -> bool:
        """Move a job to upstream's state; on the final one, queue the client's webhook.

        Reaching the final state is claimed with a conditional UPDATE first, so a push and
        a poll finishing the same job at once cannot both notify: False when another got
        there first (the job is left as that one made it).
        """
        status = str(data["status"])
        is_final = final if final is not None else status in self.final_statuses
        if is_final:
            claimed = session.execute(
                update(Job)
                .where(col(Job.id) == job.id)
                .where(col(Job.final).is_(False))
                .values(final=True, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                return False
        job.status = status
        job.result = {
            k: v for k, v in data.items() if k not in ("reference", "status", "portal_reference")
        }
        job.updated_at = now
        job.final = is_final
        if job.final:
            job.completed_at, job.next_poll_at = now, None
            if job.callback_url:
                # Cut now, with the client's grant as it stands: the outbox row never holds
                # more than the client may receive.
                fields = granted_fields(session, job.client_id, self.service)
                enqueue(
                    session,
                    client_id=job.client_id,
                    url=job.callback_url,
                    event=f"{self.service}.request.completed",
                    data=job_view(job, fields),
                    service=self.service,
                    subject_id=job.subject_id,
                    purpose=job.purpose,
                )
        return True


def job_services(
    registry: AdapterRegistry, gateway: Gateway, engine: Engine, settings: Settings
) -> dict[str, JobService]:
    """A job service for every installed AsyncAdapter, by the adapter's name."""
    return {
        loaded.cls.name: JobService(
            gateway,
            engine,
            service=loaded.cls.name,
            final_statuses=loaded.cls.final_statuses,
            poll_initial_s=settings.job_poll_initial_s,
            poll_max_s=settings.job_poll_max_s,
            submit_stale_s=settings.job_submit_stale_s,
            lost_after_s=settings.job_lost_after_s,
            unconfirmed_s=settings.job_unconfirmed_s,
        )
        for loaded in registry
        if issubclass(loaded.cls, AsyncAdapter)
    }
