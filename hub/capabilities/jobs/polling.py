"""Jobs no push has finished: polled upstream in the background, with back-off.

Any hub process leases due jobs (a row lease), so several processes share the work and a
restart loses nothing: every unfinished job is a row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub.capabilities.jobs.state import set_state
from hub.capabilities.jobs.views import FAILED, SUBMITTING, UNCONFIRMED
from hub.capabilities.webhooks import lease, unleased
from hub.core.gateway import CallerHeaders, Gateway
from hub.core.models import Job, aware, utcnow
from hub.errors import HubError, NotFound
from hub.events import EventType
from hub.resilience.retry import doubling_delay
from hub.security.auth import Principal

log = logging.getLogger("hub.jobs")


class JobPolling:
    """The background polls of one asynchronous service's unfinished jobs."""

    def __init__(
        self,
        gateway: Gateway,
        engine: Engine,
        *,
        service: str,
        final_statuses: frozenset[str],
        final_events: Mapping[str, EventType],
        poll_initial_s: float,
        poll_max_s: float,
        submit_stale_s: float,
        lost_after_s: float,
        unconfirmed_s: float,
        batch: int,
    ) -> None:
        self.gateway, self.engine, self.service = gateway, engine, service
        self.final_statuses = final_statuses
        self.final_events = final_events
        self.poll_initial_s, self.poll_max_s = poll_initial_s, poll_max_s
        self.submit_stale_s, self.batch = submit_stale_s, batch
        self.lost_after_s, self.unconfirmed_s = lost_after_s, unconfirmed_s

    async def run_once(self) -> int:
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
            set_state(
                session,
                job,
                {"status": FAILED, "error": error},
                now,
                final=True,
                final_statuses=self.final_statuses,
                events=self.final_events,
            )
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
        created = aware(job.created_at)
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
                and not set_state(
                    session,
                    job,
                    data,
                    now,
                    final=final,
                    final_statuses=self.final_statuses,
                    events=self.final_events,
                )
            ):
                session.refresh(job)  # a push finished it meanwhile
            if not job.final:
                delay = doubling_delay(self.poll_initial_s, self.poll_max_s, job.poll_attempts)
                job.next_poll_at = now + dt.timedelta(seconds=delay)
            session.add(job)
            session.commit()
