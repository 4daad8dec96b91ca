"""The adapter conformance kit (hub.testing) applied to the five built-in adapters.

Samples come from the mocks' own data: the synthetic citizens (`mocks.data`), the business
register, the judicial mock's sample applicants, and `/_mock/records` of the running mock.
"""

from __future__ import annotations

import datetime as dt
import pathlib
import re
from typing import Any, ClassVar

import httpx

from adapters.business_registration import BusinessRegistrationAdapter
from adapters.civil_status import CivilStatusAdapter
from adapters.judicial_records import JudicialRecordsAdapter
from adapters.payment import PaymentAdapter
from adapters.population import PopulationAdapter
from hub.testing import AdapterConformance, ConformanceHub, EventSample, Sample
from mocks import create_mock_app
from mocks.business_registration.data import load_register
from mocks.data import load_citizens
from mocks.judicial_records import outcome

CITIZENS = load_citizens()
#: A well-formed personal ID (Hà Nội, male, born 1985) that no citizen of the data set has.
UNKNOWN_PID = "001085999999"
assert all(c.personal_id != UNKNOWN_PID for c in CITIZENS)
VIETNAM = dt.timezone(dt.timedelta(hours=7))


# -- population ----------------------------------------------------------------------------

CITIZEN = CITIZENS[0]


class TestPopulationConformance(AdapterConformance):
    adapter = PopulationAdapter
    mock = staticmethod(lambda: create_mock_app("population"))
    samples: ClassVar[dict[str, Sample]] = {
        "lookup": {"personal_id": CITIZEN.personal_id},
        "verify": {
            "personal_id": CITIZEN.personal_id,
            "full_name": CITIZEN.full_name,
            "date_of_birth": CITIZEN.date_of_birth.isoformat(),
            "gender": CITIZEN.gender,
        },
    }
    # `verify` of an unknown person answers `found: false` by design, not NOT_FOUND.
    unknown: ClassVar[dict[str, Sample]] = {"lookup": {"personal_id": UNKNOWN_PID}}


# -- civil status --------------------------------------------------------------------------

MARRIED = next(c for c in CITIZENS if c.marital_status == "married")


async def a_birth_record(kit: ConformanceHub) -> dict[str, Any]:
    """The first birth record the mock lists at `/_mock/records`."""
    listing = (await kit.mock_request("GET", "/_mock/records", params={"limit": 3})).json()
    key = next(r["key"] for r in listing["records"] if r["kind"] == "KS")
    return {"kind": "birth", "number": key}


#: Living, unmarried citizens the mock registers events of (each test has its own mock).
MOTHER = next(c for c in CITIZENS if c.gender == "female" and c.marital_status == "single")
GROOM = next(c for c in CITIZENS if c.gender == "male" and c.marital_status == "single")
DECEASED = next(c for c in CITIZENS if c.marital_status == "single" and c not in (MOTHER, GROOM))


def registration(**body: str) -> Any:
    """An event sample: the mock registers this birth, death or marriage now."""

    async def register(kit: ConformanceHub) -> None:
        made = await kit.mock_request("POST", "/_mock/events", json=body)
        assert made.status_code == 201, made.text

    return register


class TestCivilStatusConformance(AdapterConformance):
    adapter = CivilStatusAdapter
    mock = staticmethod(lambda: create_mock_app("civil-status"))
    # The OAuth2 token endpoint is an auxiliary step: faults hit the registry's API only.
    fault_paths = ("/api/v1/hotich/",)
    samples: ClassVar[dict[str, Sample]] = {
        "records": {"personal_id": MARRIED.personal_id},
        "record": a_birth_record,
        "marital-status": {"personal_id": MARRIED.personal_id},
    }
    # `records` of an unknown person is an empty list by design (the registry knows
    # records, not people), so it has no unknown input.
    unknown: ClassVar[dict[str, Sample]] = {
        "record": {"kind": "birth", "number": "KS-1900-01-999999"},
        "marital-status": {"personal_id": UNKNOWN_PID},
    }
    events: ClassVar[dict[str, EventSample]] = {
        "birth-registered": registration(kind="birth", personal_id=MOTHER.personal_id),
        "death-registered": registration(kind="death", personal_id=DECEASED.personal_id),
        "marriage-registered": registration(
            kind="marriage", personal_id=GROOM.personal_id, spouse_id=MOTHER.personal_id
        ),
    }


# -- business registration -----------------------------------------------------------------

REGISTER = load_register()
ENTERPRISE = next(e for e in REGISTER.enterprises if not e.is_branch and e.representatives)
#: The first distinctive word of the name (the search skips the legal form).
NAME_WORD = ENTERPRISE.name.split()[-1]
ACTIVE = next(e for e in REGISTER.enterprises if e.status == "active")


async def a_suspension(kit: ConformanceHub) -> None:
    """An event sample: the register suspends an active enterprise now."""
    body = {"enterprise_code": ACTIVE.code, "status": "suspended"}
    made = await kit.mock_request("POST", "/_mock/events", json=body)
    assert made.status_code == 201, made.text


class TestBusinessRegistrationConformance(AdapterConformance):
    adapter = BusinessRegistrationAdapter
    mock = staticmethod(lambda: create_mock_app("business-registration"))
    # The gateway's token endpoint is an auxiliary step: faults hit the DKKD API only.
    fault_paths = ("/apiDKKD/",)
    samples: ClassVar[dict[str, Sample]] = {
        "lookup": {"enterprise_code": ENTERPRISE.code},
        "search": {"name_prefix": NAME_WORD, "page": 1, "page_size": 5},
        "by-representative": {"personal_id": ENTERPRISE.representatives[0].personal_id},
    }
    unknown: ClassVar[dict[str, Sample]] = {"lookup": {"enterprise_code": f"{ENTERPRISE.code}-999"}}
    events: ClassVar[dict[str, EventSample]] = {"status-changed": a_suspension}


# -- judicial records ----------------------------------------------------------------------

APPLICANT = next(a for a in outcome.sample_applicants(CITIZENS, 3) if a["expected"] == "clean")
APPLICATION = {
    "certificate_type": 1,
    "purpose_code": "01",
    "personal_id": APPLICANT["personal_id"],
    "full_name": APPLICANT["full_name"],
    "gender": APPLICANT["gender"],
    "date_of_birth": APPLICANT["date_of_birth"],
    "permanent_address": APPLICANT["permanent_address"],
    "current_address": APPLICANT["current_address"],
}


async def a_submitted_application(kit: ConformanceHub) -> dict[str, Any]:
    """The reference of an application submitted just now."""
    submitted = await kit.call("submit", APPLICATION)
    return {"reference": submitted["reference"]}


class TestJudicialRecordsConformance(AdapterConformance):
    adapter = JudicialRecordsAdapter
    # No push: the kit's hub is not reachable from the mock, and `status` is what is checked.
    mock = staticmethod(lambda: create_mock_app("judicial-records", push_url=None))
    # The schema describes a record's `data` in a successful answer.
    upstream_answers = staticmethod(
        lambda request, body: body.get("data") if body.get("statusCode") == "00" else None
    )
    samples: ClassVar[dict[str, Sample]] = {
        "submit": APPLICATION,
        "status": a_submitted_application,
    }
    unknown: ClassVar[dict[str, Sample]] = {"status": {"reference": "LLTP-00000000-999999"}}
    # Published by the jobs capability when a certificate's result comes: its payload.
    events: ClassVar[dict[str, EventSample]] = {
        "certificate-issued": {
            "id": "job_conformance",
            "service": "judicial-records",
            "status": "issued",
            "personal_id": APPLICANT["personal_id"],
            "completed_at": "2026-01-02T03:04:05+07:00",
        }
    }


# -- payment -------------------------------------------------------------------------------

ORDER = {
    "reference": "CONFORMANCE-0001",
    "amount": 150000,
    "description": "Lệ phí cấp phiếu lý lịch tư pháp",
    "procedure_code": "1.001234",
    "dossier_id": "HS-2026-0001",
    "payer_name": "Trần Thị Bình",
    "payer_personal_id": MARRIED.personal_id,
    "created_at": dt.datetime.now(dt.UTC).isoformat(),
}


async def an_open_payment(kit: ConformanceHub) -> dict[str, Any]:
    """A payment opened just now, still pending."""
    await kit.call("init", ORDER)
    return {"reference": ORDER["reference"]}


async def a_paid_payment(kit: ConformanceHub) -> dict[str, Any]:
    """A payment opened just now and paid on the mock's settle route (no IPN)."""
    opened = await kit.call("init", ORDER)
    settled = await kit.mock_request(
        "POST",
        f"/_mock/payments/{opened['transaction_id']}/settle",
        json={"outcome": "success", "notify": False},
    )
    assert settled.status_code == 200, settled.text
    return {"reference": ORDER["reference"]}


class TestPaymentConformance(AdapterConformance):
    adapter = PaymentAdapter
    mock = staticmethod(lambda: create_mock_app("payment", ipn_url=None))
    # The schema describes the platform's successful answers (`MaLoi` "00").
    upstream_answers = staticmethod(
        lambda request, body: body if body.get("MaLoi") == "00" else None
    )
    samples: ClassVar[dict[str, Sample]] = {
        "init": ORDER,
        "query": an_open_payment,
        "receipt": a_paid_payment,
        "reconciliation": {"date": dt.datetime.now(VIETNAM).date().isoformat()},
    }
    unknown: ClassVar[dict[str, Sample]] = {
        "query": {"reference": "CONFORMANCE-UNKNOWN"},
        "receipt": {"reference": "CONFORMANCE-UNKNOWN"},
    }
    # Published by the payments capability when a payment settles: its payload.
    events: ClassVar[dict[str, EventSample]] = {
        "settled": {
            "id": "pay_conformance",
            "status": "paid",
            "amount": ORDER["amount"],
            "currency": "VND",
            "procedure_code": ORDER["procedure_code"],
            "dossier_id": ORDER["dossier_id"],
        }
    }


# -- the kit itself ------------------------------------------------------------------------


def test_the_hub_core_never_imports_the_kit() -> None:
    """hub.testing imports pytest: only tests may import it, never the hub's own modules."""
    root = pathlib.Path(__file__).resolve().parents[1] / "hub"
    kit = root / "testing"  # the kit's own modules import each other
    pattern = re.compile(
        r"^\s*(from\s+hub(\.testing\b|\s+import\s+.*\btesting\b)|import\s+hub\.testing\b)", re.M
    )
    importers = [
        str(path.relative_to(root.parent))
        for path in root.rglob("*.py")
        if kit not in path.parents and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert importers == []


async def test_the_fault_transport_targets_only_selected_paths() -> None:
    """Requests outside `fault_paths` pass untouched while a fault is on."""
    from hub.testing import FaultTransport, path_prefixes

    async def upstream(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"path": request.url.path})

    transport = FaultTransport(httpx.MockTransport(upstream), path_prefixes(["/api/"]))
    async with httpx.AsyncClient(transport=transport, base_url="http://up.test") as client:
        with transport.inject("http_503") as met:
            token = await client.post("/token")
            api = await client.get("/api/thing")
        with transport.inject("malformed") as cut:
            half = await client.get("/api/thing")
    assert (token.status_code, api.status_code, met.count) == (200, 503, 1)
    assert cut.cut_answers == [b'{"path":"/api/thing"}']
    assert half.content == b'{"path":"/'
    assert len(transport.requests) == 3
