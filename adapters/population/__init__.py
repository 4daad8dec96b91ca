"""Adapter of the National Population Database (SOAP 1.1, HTTP-level auth).

Upstream contract: `population.wsdl` beside this file (the same WSDL the mock serves; a
contract test keeps them equal) and docs/mock-population.md. Field mapping:
`mapping.yaml` beside this file.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.resources
import time
from typing import Any

import httpx
from lxml import etree
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from adapters.population.models import (
    Citizen,
    CitizenLookup,
    CitizenVerification,
    CitizenVerificationResult,
)
from hub.adapter import Adapter, AdapterConfig, CallContext, Health, operation
from hub.errors import (
    NotFound,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamRejected,
    UpstreamUnreadable,
)
from hub.soap import SoapFault, element, envelope, parse_response
from hub.upstream import raise_for_status

REQ_NS = "http://dancuquocgia.bca"
RESP_NS = "http://www.mic.gov.vn/dancu/1.0"
_NS = {"dc": REQ_NS}
_FAULT_NS = {"r": RESP_NS}
_CONG_DAN = f"{{{RESP_NS}}}CongdanCollection/{{{RESP_NS}}}CongDan"

#: Upstream fault codes (detail/Loi/MaLoi) and what they mean to the hub.
_FAULTS: dict[str, type[Exception]] = {
    "KHONG_TIM_THAY": NotFound,
    "YEU_CAU_KHONG_HOP_LE": UpstreamRejected,
    "XAC_THUC_THAT_BAI": UpstreamRejected,
    "LOI_HE_THONG": UpstreamError,
}


def wsdl_text() -> str:
    """The WSDL this adapter was written against."""
    return importlib.resources.files(__package__).joinpath("population.wsdl").read_text("utf-8")


def load_wsdl(path: str) -> Any:
    """A zeep WSDL document read from a local file with zeep's XML hardening all on (its
    defaults leave DTDs and external fetches allowed) and a transport that never goes to the
    network: no DTD, no entity, no huge tree, no import from a URL."""
    import zeep

    class LocalOnly(zeep.transports.Transport):  # type: ignore[misc]
        def _load_remote_data(self, url: str) -> bytes:
            raise ValueError(f"the WSDL may not fetch {url}: only local files are read")

    settings = zeep.Settings(
        forbid_dtd=True, forbid_entities=True, forbid_external=True, xml_huge_tree=False
    )
    return zeep.wsdl.Document(path, LocalOnly(), settings=settings)


def soap_actions() -> dict[str, str]:
    """Load the WSDL with zeep and check it offers what this adapter sends and reads.

    The WSDL stays the contract: the SOAPAction of each call comes from it, and a WSDL whose
    operations or message namespaces differ from what the envelopes below are built for
    stops start-up instead of failing mid-request.
    """
    resource = importlib.resources.files(__package__).joinpath("population.wsdl")
    with importlib.resources.as_file(resource) as path:
        document = load_wsdl(str(path))
    found = {
        name: op
        for binding in document.bindings.values()
        for name, op in binding._operations.items()
    }
    actions = {}
    for name in ("TraCuuThongTinCongDan", "XacThucThongTinCongDan"):
        op = found.get(name)
        if op is None:
            raise RuntimeError(f"population WSDL has no operation {name}")
        if op.input.body.qname.namespace != REQ_NS or op.output.body.qname.namespace != RESP_NS:
            raise RuntimeError(f"population WSDL: {name} uses other message namespaces")
        actions[name] = op.soapaction
    return actions


class PopulationConfig(AdapterConfig):
    """Settings of the population adapter (`HUB_POPULATION_*`)."""

    model_config = SettingsConfigDict(env_prefix="HUB_POPULATION_", extra="forbid")

    base_url: str = Field("http://127.0.0.1:8101", description="Upstream base URL")
    endpoint_path: str = Field("/dancu/ws", description="SOAP endpoint path")
    user: str = Field("hub", description="HTTP Basic user")
    secret: SecretStr = Field(SecretStr("population-secret"), description="Shared secret")
    service_code: str = Field("LGSP-HUB", description="MaDVC sent upstream")
    integration_code: str = Field("LGSP-HUB", description="MaTichHop sent upstream")


class PopulationAdapter(Adapter):
    """Look up and verify citizens in the National Population Database."""

    name = "population"
    version = "1.0.0"
    title = "National Population Database"
    description = "Citizen look-up and verification (Cơ sở dữ liệu quốc gia về dân cư)."
    mapping = "adapters.population:mapping.yaml"
    upstream_schema = "adapters.population:population.wsdl"
    Config = PopulationConfig

    config: PopulationConfig

    async def startup(self) -> None:
        self._url = self.config.base_url.rstrip("/") + self.config.endpoint_path
        self._actions = soap_actions()
        self._lookup_map = self.compiled_mapping.operation("lookup")
        self._verify_map = self.compiled_mapping.operation("verify")

    @operation(
        subject="personal_id",
        # the record names the parents, the spouse and the household's head by personal ID
        subject_from=(
            "father.personal_id",
            "mother.personal_id",
            "spouse.personal_id",
            "household.head.personal_id",
        ),
        resource="GET /v1/citizens/{personal_id}",
        profile="citizen",
    )
    async def lookup(self, request: CitizenLookup, ctx: CallContext) -> Citizen:
        """A citizen's record by personal ID."""
        body = self._call_header("TraCuuThongTinCongDan", ctx) + element(
            "dc:SoDinhDanh", request.personal_id
        )
        payload = await self._call("TraCuuThongTinCongDan", body)
        if payload.find(_CONG_DAN) is None:  # an empty collection: no such citizen
            raise NotFound()
        return Citizen.model_validate(self._lookup_map.apply(payload))

    @operation(subject="personal_id", resource="POST /v1/citizens/verify", verification="match")
    async def verify(
        self, request: CitizenVerification, ctx: CallContext
    ) -> CitizenVerificationResult:
        """Whether stated details (name, birth date, gender) match the national record.

        Answers one overall match; field by field and whether the ID exists only to a
        client granted them (`--fields population:match,found,fields`). Never the
        recorded values. Throttled per client and per person (HUB_VERIFY_*).
        """
        gender = None if request.gender is None else ("1" if request.gender == "male" else "2")
        body = (
            self._call_header("XacThucThongTinCongDan", ctx)
            + element("dc:SoDinhDanh", request.personal_id)
            + element("dc:HoVaTen", request.full_name)
            + element("dc:NgayThangNamSinh", request.date_of_birth.strftime("%Y%m%d"))
            + ("" if gender is None else element("dc:GioiTinh", gender))
        )
        payload = await self._call("XacThucThongTinCongDan", body)
        return CitizenVerificationResult.model_validate(self._verify_map.apply(payload))

    async def health(self) -> Health:
        response = await self.http.get(self.config.endpoint_path, params={"wsdl": ""})
        return Health(ok=response.status_code == 200, detail=f"WSDL HTTP {response.status_code}")

    # -- protocol -------------------------------------------------------------------------

    def _call_header(self, operation_name: str, ctx: CallContext) -> str:
        return (
            f"<dc:{operation_name}>"
            + element("dc:MaYeuCau", ctx.request_id)
            + element("dc:MaDVC", self.config.service_code)
            + element("dc:MaTichHop", self.config.integration_code)
            + element("dc:MaCanBo", ctx.officer_id or "")
        )

    async def _call(self, operation_name: str, body: str) -> etree._Element:
        content = envelope(body + f"</dc:{operation_name}>", _NS)
        response = await self.http.post(
            self.config.endpoint_path,
            content=content,
            headers={
                "content-type": "text/xml; charset=utf-8",
                "soapaction": f'"{self._actions[operation_name]}"',
                **self._auth_headers(),
            },
        )
        return self._read(response)

    def _auth_headers(self) -> dict[str, str]:
        # C06 direct access: Basic user:SHA-256(url + user + timestamp + secret),
        # with the timestamp in its own header.
        timestamp = str(int(time.time()))
        user, secret = self.config.user, self.config.secret.get_secret_value()
        password = hashlib.sha256(f"{self._url}{user}{timestamp}{secret}".encode()).hexdigest()
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"authorization": f"Basic {token}", "timestamp": timestamp}

    @staticmethod
    def _read(response: httpx.Response) -> etree._Element:
        # SOAP 1.1 sends faults with HTTP 500, and this upstream its refusals of our
        # credentials as faults on a 401/403: an error status's body is read as SOAP first.
        raise_for_status(response, replies=range(400, 600))
        status = response.status_code
        try:
            payload = parse_response(response.content).payload
        except SoapFault as fault:
            code = (fault.detail_text("r:Loi/r:MaLoi", _FAULT_NS) or "").strip()
            # Without a known code, the fault's side decides: soap:Client is our request's
            # fault (not worth retrying), anything else upstream's (retriable).
            client_side = fault.faultcode.rpartition(":")[2] == "Client"
            error_cls = _FAULTS.get(code, UpstreamRejected if client_side else UpstreamError)
            # faultstring may quote the personal ID: only the codes go into the log context.
            context = {"fault": fault.faultcode, "upstream_code": code, "http_status": status}
            raise error_cls(log_context=context) from None
        except etree.LxmlError as exc:
            # Not a SOAP envelope: an error page's status decides (a 5xx is worth a retry);
            # on a 200, the answer is off-contract.
            raise_for_status(response)
            context = {"http_status": status, "cause": type(exc).__name__}
            raise UpstreamUnreadable(log_context=context) from None
        if status != 200:
            raise UpstreamBadResponse(log_context={"http_status": status})
        return payload
