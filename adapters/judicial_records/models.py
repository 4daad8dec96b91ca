"""Canonical models of the judicial-records service (criminal-record certificates, LLTP).

A certificate request is asynchronous upstream: `submit` is accepted with an upstream
reference, the certificate is issued (or refused) later and pushed back, and `status` polls.
The hub tracks each request as a job (hub.capabilities.jobs); these models are what the
adapter speaks.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from hub.canonical.common import CanonicalModel, Gender, PersonalIdStr

CertificateType = Literal[1, 2]
#: received -> processing -> issued | rejected (the last two are final).
RequestStatus = Literal["received", "processing", "issued", "rejected"]
FINAL_STATUSES: frozenset[str] = frozenset({"issued", "rejected"})


class CertificateApplication(CanonicalModel):
    """An application for a criminal-record certificate (upstream `toKhai`)."""

    certificate_type: CertificateType = Field(
        description="1: convictions not yet expunged; 2: the full record (loaiPhieu)"
    )
    purpose_code: str = Field(
        min_length=1, max_length=20, description="Upstream purpose code (maMucDich)"
    )
    personal_id: PersonalIdStr
    full_name: str = Field(min_length=1, max_length=100)
    gender: Gender
    date_of_birth: dt.date
    permanent_address: str = Field(min_length=1, max_length=300)
    current_address: str | None = Field(None, max_length=300)


class CertificateSubmission(CanonicalModel):
    """Upstream accepted the application."""

    reference: str = Field(description="Upstream's reference of the application")
    status: RequestStatus


class CertificateStatusQuery(CanonicalModel):
    """Ask upstream where an application stands."""

    reference: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._/-]+$")


class Conviction(CanonicalModel):
    """One judgment on the record."""

    court: str | None = None
    judgment_number: str | None = None
    judgment_date: dt.date | None = None
    offence: str | None = None
    sentence: str | None = None


class Certificate(CanonicalModel):
    """An issued criminal-record certificate (phiếu lý lịch tư pháp)."""

    number: str = Field(description="Certificate number, e.g. 25HN2013/00001")
    issued_on: dt.date
    certificate_type: CertificateType
    has_criminal_record: bool
    convictions: list[Conviction] = Field(default_factory=list)
    pdf_base64: str | None = Field(None, description="The certificate as a PDF, base64")


class CertificateStatus(CanonicalModel):
    """Where an application stands; carries the certificate once issued."""

    reference: str
    status: RequestStatus
    certificate: Certificate | None = None
    rejection_reason: str | None = None
    portal_reference: str | None = Field(
        None, description="The submitter's own reference, as sent with the application"
    )
