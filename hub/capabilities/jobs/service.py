"""The job service of one asynchronous service: submit, view, push (polling.py polls).

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

from hub.adapter import Adapter, AsyncAdapter
from hub.capabilities.jobs.polling import JobPolling
from hub.capabilities.jobs.state import set_state
from hub.capabilities.jobs.views import (
    NOTHING_SUBMITTED,
    SUBMITTING,
    UNCONFIRMED,
    job_view,
)
from hub.core.config import Settings
from hub.core.gateway import CallerHeaders, Gateway
from hub.core.models import InboundMessage, Job, utcnow
from hub.core.registry import AdapterRegistry
from hub.errors import (
    HubError,
    NotFound,
    SchemaViolation,
)
from hub.events import EventType
from hub.security.auth import Principal

log = logging.getLogger("hub.jobs")


class JobService:
    """Submit, push, poll and view jobs of one asynchronous service."""

    def __init__(
        self,
        gateway: Gateway,
        engine: Engine,
        *,
        service: str,
        final_statuses: frozenset[str],
        final_events: Mapping[str, EventType] | None = None,
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
        self.final_events = final_events or {}
        self.poll_initial_s = poll_initial_s
        self.polling = JobPolling(
            gateway,
            engine,
            service=service,
            final_statuses=final_statuses,
            final_events=self.final_events,
            poll_initial_s=poll_initial_s,
            poll_max_s=poll_max_s,
            submit_stale_s=submit_stale_s,
            lost_after_s=lost_after_s,
            unconfirmed_s=unconfirmed_s,
            batch=batch,
        )

    async def poll_once(self) -> int:
        """Poll every due job this process can lease; returns how many were polled."""
        return await self.polling.run_once()

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
            if exc.status < 500 or isinstance(exc, NOTHING_SUBMITTED):
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
            set_state(
                session,
                job,
                data,
                now,
                final_statuses=self.final_statuses,
                events=self.final_events,
            )
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
            if not set_state(
                session,
                job,
                data,
                now,
                final_statuses=self.final_statuses,
                events=self.final_events,
            ):
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
            final_events=_final_events(loaded.cls),
            poll_initial_s=settings.job_poll_initial_s,
            poll_max_s=settings.job_poll_max_s,
            submit_stale_s=settings.job_submit_stale_s,
            lost_after_s=settings.job_lost_after_s,
            unconfirmed_s=settings.job_unconfirmed_s,
        )
        for loaded in registry
        if issubclass(loaded.cls, AsyncAdapter)
    }


def _final_events(cls: type[Adapter]) -> dict[str, EventType]:
    """The event type each final status publishes (AsyncAdapter.final_events)."""
    declared = {e.name: e for e in cls.event_types}
    names = getattr(cls, "final_events", {})
    return {status: declared[name] for status, name in names.items() if name in declared}
