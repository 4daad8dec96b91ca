"""A job as its client sees it, and the states the hub gives a job of its own."""

from __future__ import annotations

from typing import Any

from hub.core.models import Job, iso
from hub.errors import UpstreamRejected, UpstreamUnavailable
from hub.security.fields import trim_view

SUBMITTING = "submitting"
#: Submitted, but whether upstream got it is not known (a timeout, a lost answer, a hub
#: stopped mid-call): no reference to poll, so the job waits for upstream's push, which
#: carries the job id back, and resubmitting would risk a duplicate application.
UNCONFIRMED = "unconfirmed"
FAILED = "failed"
#: Hub errors that prove upstream did not take the submission: nothing to wait for.
NOTHING_SUBMITTED = (UpstreamRejected, UpstreamUnavailable)


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
        "submitted_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "completed_at": iso(job.completed_at),
        "callback_url": job.callback_url,
        **{k: v for k, v in result.items() if k not in ("reference", "status")},
    }
    return trim_view(view, fields, hub_keys=JOB_HUB_KEYS, renamed=JOB_RENAMED)
