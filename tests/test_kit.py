"""The integrator's kit itself (hub.testing): what it writes, and what it must catch.

The kit's battery is run on deliberately broken copies of an adapter: each breakage must
make the battery fail, so an integrator's mistake cannot pass it.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from adapters.business_registration import BusinessRegistrationAdapter
from hub.adapter import Adapter, CallContext, Health, operation
from hub.scaffold import generate
from hub.testing import AdapterConformance, hub_client
from mocks import create_mock_app


def business_battery() -> type[AdapterConformance]:
    """A battery of the business-registration adapter, made here so pytest collects none."""

    class Battery(AdapterConformance):
        adapter = BusinessRegistrationAdapter
        mock = staticmethod(lambda: create_mock_app("business-registration"))

    return Battery


def test_the_kit_writes_nothing_in_the_working_folder(tmp_path, monkeypatch):
    """Run from a hub's working folder, neither `hub_client` nor the battery's hub may touch
    its audit evidence (they once appended checkpoints to ./audit-archive/checkpoints.jsonl,
    and the hub's `hub audit verify` then reported a bad signature)."""
    work = tmp_path / "hub-folder"
    work.mkdir()
    monkeypatch.chdir(work)
    for name in ("HUB_AUDIT_ARCHIVE_DIR", "HUB_AUDIT_WITNESS_FILE", "HUB_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)

    async def run() -> None:
        mock = create_mock_app("business-registration")
        async with hub_client(BusinessRegistrationAdapter, mock) as client:
            answer = await client.get("/v1/services")
            assert answer.status_code == 200
        async with business_battery()().running() as kit:
            assert kit.hub.settings.audit_witness_path.parent != Path("audit-archive")
            witness = kit.hub.settings.audit_witness_path
        assert not witness.exists()  # the temporary folder went with its witness

    asyncio.run(run())
    assert os.listdir(work) == []


def test_kit_settings_keep_every_file_in_the_folder(tmp_path):
    from hub.testing import kit_settings

    settings = kit_settings(tmp_path, retry_attempts=1)
    inside = [
        Path(settings.audit_archive_dir),
        settings.audit_witness_path,
        Path(settings.database_url.removeprefix("sqlite:///")),
    ]
    assert all(path.is_relative_to(tmp_path) for path in inside), inside
    assert settings.retry_attempts == 1


async def test_an_unknown_operation_says_which_one_was_meant(hub):
    key = hub.client(allow=["business-registration"])
    base = "/v1/services/business-registration"
    answer = await hub.http.post(f"{base}/by_representative", json={}, headers=hub.headers(key))
    assert answer.status_code == 404 and answer.json()["code"] == "UNKNOWN_OPERATION"
    assert "did you mean `by-representative`?" in answer.json()["detail"]
    far = await hub.http.post(f"{base}/payroll", json={}, headers=hub.headers(key))
    assert "did you mean" not in far.json()["detail"] and "'payroll'" in far.json()["detail"]
    # the caller's path segment is quoted only when it has a name's shape (hub.errors.echoable)
    for segment in ("x" * 65, "look%3Cscript%3E", "LOOKUP"):
        odd = await hub.http.post(f"{base}/{segment}", json={}, headers=hub.headers(key))
        assert odd.status_code == 404, odd.text
        assert (
            odd.json()["detail"] == "service 'business-registration' has no operation by that name"
        )


# -- the battery on deliberately broken copies of an adapter ---------------------------------


@pytest.fixture
def generated(tmp_path, monkeypatch):
    """A freshly generated REST adapter (`hub adapter new kit-broken`), imported from source:
    (its package, its adapter class, its mock factory, its expected answers)."""
    target = tmp_path / "kit-broken"
    generate("kit-broken", target, personal_data=True)
    monkeypatch.setattr(sys, "path", [str(target), *sys.path])
    package = importlib.import_module("kit_broken")  # generated just now, not a dependency
    mock = importlib.import_module("kit_broken.mock")
    expected = json.loads((target / "tests" / "expected.json").read_text(encoding="utf-8"))
    yield target / "kit_broken", package.KitBrokenAdapter, mock.create_app, expected
    for name in [m for m in sys.modules if m == "kit_broken" or m.startswith("kit_broken.")]:
        del sys.modules[name]


def battery_of(adapter: type[Adapter], mock: Any, expected: dict[str, Any]) -> AdapterConformance:
    known = next(iter(expected))

    class Battery(AdapterConformance):
        pass

    Battery.adapter = adapter
    Battery.mock = staticmethod(mock)
    Battery.samples = {"lookup": {"id": known}}
    Battery.expected = {"lookup": expected[known]}
    return Battery()


def test_the_generated_adapter_passes_the_checks_its_copies_fail(generated, tmp_path):
    _, adapter, mock, expected = generated
    battery = battery_of(adapter, mock, expected)
    battery.test_sample_answers_its_output_model("lookup", tmp_path / "sample")
    for fault in ("unauthorized", "server_error"):
        battery.test_health_is_not_ok_on_an_error_status(fault, tmp_path / fault)
    battery.test_personal_data_is_declared()


@pytest.mark.parametrize("fault", ["unauthorized", "server_error"])
def test_a_health_probe_ok_on_any_status_fails_the_kit(generated, tmp_path, fault):
    _, adapter, mock, expected = generated

    class AnyStatusIsFine(adapter):  # type: ignore[misc,valid-type]
        async def health(self) -> Health:
            response = await self.http.get("/api/v1/health", headers=self._headers())
            return Health(ok=True, detail=f"HTTP {response.status_code}")

    battery = battery_of(AnyStatusIsFine, mock, expected)
    with pytest.raises(AssertionError, match="probe is ok"):
        battery.test_health_is_not_ok_on_an_error_status(fault, tmp_path)


def drifting(app: Any, change: Any) -> Any:
    """The mock's ASGI app with `change` applied to each JSON answer's decoded body."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_mock"):
            await app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    body = json.dumps(change(json.loads(b"".join(chunks)))).encode()
                    headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
                    headers.append((b"content-length", str(len(body)).encode()))
                    await send({**start, "headers": headers})
                    await send({"type": "http.response.body", "body": body})

        await app(scope, receive, keep)

    return wrapped


def with_data(change: Any) -> Any:
    def apply(body: dict[str, Any]) -> dict[str, Any]:
        if isinstance(body.get("data"), dict):
            change(body["data"])
        return body

    return apply


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda record: record.update(TrangThai=1), id="a-number-for-a-string"),
        pytest.param(lambda record: record.update(GhiChu="extra"), id="an-extra-field"),
    ],
)
def test_a_mock_drifting_from_its_upstream_schema_fails_the_kit(generated, tmp_path, change):
    _, adapter, mock, expected = generated
    battery = battery_of(adapter, lambda: drifting(mock(), with_data(change)), expected)
    battery.expected = {}  # the drift alone, whatever the adapter makes of it
    with pytest.raises(Exception, match=r"breaks kit_broken:upstream\.schema\.json"):
        battery.test_sample_answers_its_output_model("lookup", tmp_path)


def test_two_output_fields_swapped_fail_the_kit(generated, tmp_path):
    package, adapter, mock, expected = generated
    mapping = (package / "mapping.yaml").read_text()
    swapped = mapping.replace("id: MaSo", "id: Ten").replace("name: Ten", "name: MaSo")
    assert swapped != mapping
    (package / "swapped.yaml").write_text(swapped)

    class Swapped(adapter):  # type: ignore[misc,valid-type]
        mapping = "kit_broken:swapped.yaml"

    battery = battery_of(Swapped, mock, expected)
    with pytest.raises(AssertionError, match="not the expected one"):
        battery.test_sample_answers_its_output_model("lookup", tmp_path)


class Owner(BaseModel):
    personal_id: str
    full_name: str


class Parcel(BaseModel):
    parcel_id: str
    owner: Owner


class ParcelQuery(BaseModel):
    parcel_id: str


class OwnerQuery(BaseModel):
    personal_id: str


def declared(**kwargs: Any) -> AdapterConformance:
    """A battery of an adapter whose one operation is declared with `kwargs`."""
    by_owner = kwargs.pop("by_owner", False)

    class Land(Adapter):
        name = "land"
        version = "1"

        if by_owner:

            @operation(**kwargs)
            async def parcel(self, request: OwnerQuery, ctx: CallContext) -> Parcel:
                raise NotImplementedError

        else:

            @operation(**kwargs)
            async def parcel(self, request: ParcelQuery, ctx: CallContext) -> Parcel:
                raise NotImplementedError

    class Battery(AdapterConformance):
        adapter = Land

    return Battery()


@pytest.mark.parametrize(
    ("declaration", "problem"),
    [
        ({"personal_data": False, "subject_from": "owner.personal_id"}, "personal_data=False"),
        ({}, "output 'owner.personal_id' is not in `subject_from`"),
        ({"by_owner": True, "subject_from": "owner.personal_id"}, "is not declared as `subject`"),
    ],
)
def test_personal_ids_undeclared_fail_the_kit(declaration, problem):
    with pytest.raises(AssertionError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        declared(**declaration).test_personal_data_is_declared()
    right = {"subject_from": "owner.personal_id"}
    if declaration.get("by_owner"):
        right.update(by_owner=True, subject="personal_id")
    declared(**right).test_personal_data_is_declared()
