"""A job's state moved on: the one place a job is finished and its client told."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col

from hub.capabilities.events.store import publish
from hub.capabilities.jobs.views import job_view
from hub.capabilities.webhooks import enqueue
from hub.core.models import Job
from hub.events import EventType, RequestEnded, UpstreamEvent
from hub.security.fields import granted_fields


def set_state(
    session: Session,
    job: Job,
    data: dict[str, Any],
    now: dt.datetime,
    *,
    final_statuses: frozenset[str],
    final: bool | None = None,
    events: Mapping[str, EventType] | None = None,
) -> bool:
    """Move a job to upstream's state; on the final one, queue the client's webhook.

    `events`: the event type a final status publishes to the job's owner (AsyncAdapter's
    `final_events`), stored with its deliveries in the same transaction.

    Reaching the final state is claimed with a conditional UPDATE first, so a push and
    a poll finishing the same job at once cannot both notify: False when another got
    there first (the job is left as that one made it).
    """
    status = str(data["status"])
    is_final = final if final is not None else status in final_statuses
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
        if events and (kind := events.get(status)) is not None:
            view = job_view(job, None)
            payload = RequestEnded.model_validate({**view, "personal_id": job.subject_id})
            publish(
                session,
                job.service,
                kind,
                UpstreamEvent(kind.name, f"job:{job.id}", payload, now),
                audience=job.client_id,
            )
        if job.callback_url:
            # Cut now, with the client's grant as it stands: the outbox row never holds
            # more than the client may receive.
            fields = granted_fields(session, job.client_id, job.service)
            enqueue(
                session,
                client_id=job.client_id,
                url=job.callback_url,
                event=f"{job.service}.request.completed",
                data=job_view(job, fields),
                service=job.service,
                subject_id=job.subject_id,
                purpose=job.purpose,
            )
    return True
