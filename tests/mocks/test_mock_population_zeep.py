"""A stock SOAP client (zeep) loads the served WSDL and talks to the mock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import zeep
from zeep.exceptions import Fault
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport

from mocks.data import Citizen
from mocks.population import WSDL_PATH
from mocks.population.client_auth import PopulationAuth

from .conftest import BASE_URL, NS

COMMON = {"MaDVC": "1.004227", "MaTichHop": "LGSP-TEST", "MaCanBo": "CB01"}


@pytest.fixture
async def soap(tmp_path: Path) -> AsyncIterator[Any]:
    """A zeep AsyncClient built from the WSDL the mock serves, signing with the real clock."""
    from mocks.population.app import create_app

    app = create_app()
    auth = PopulationAuth("hub", "population-secret")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, auth=auth) as http:
        served = await http.get("/dancu/ws?wsdl")
        wsdl = tmp_path / "population.wsdl"
        wsdl.write_bytes(served.content)
        with httpx.Client() as wsdl_client:
            client = zeep.AsyncClient(
                str(wsdl), transport=AsyncTransport(client=http, wsdl_client=wsdl_client)
            )
            yield client


def test_the_shipped_wsdl_loads() -> None:
    client = zeep.Client(str(WSDL_PATH))
    service = client.wsdl.services["DanCuService"]
    port = service.ports["DanCuPort"]
    assert port.binding_options["address"] == "http://127.0.0.1:8101/dancu/ws"
    operations = port.binding._operations
    assert set(operations) == {"TraCuuThongTinCongDan", "XacThucThongTinCongDan"}
    for name, operation in operations.items():
        assert operation.soapaction == f"http://dancuquocgia.bca/{name}"
        assert operation.input.body.qname.namespace == "http://dancuquocgia.bca"
        assert operation.output.body.qname.namespace == NS["r"]


async def test_zeep_looks_up_a_citizen(soap: Any, citizen: Citizen) -> None:
    answer = await soap.service.TraCuuThongTinCongDan(
        MaYeuCau="z-1", SoDinhDanh=citizen.personal_id, **COMMON
    )
    assert answer.MaYeuCau == "z-1"
    record = answer.CongdanCollection.CongDan[0]
    assert record.SoDinhDanh == citizen.personal_id
    assert record.SoCMND == citizen.old_id_number
    assert (record.HoVaTen.Ho, record.HoVaTen.ChuDem, record.HoVaTen.Ten) == (
        citizen.family_name,
        citizen.middle_name,
        citizen.given_name,
    )
    assert record.NgayThangNamSinh.NgayThangNam == citizen.date_of_birth.strftime("%Y%m%d")
    assert record.ThuongTru.MaPhuongXa == citizen.permanent_address.ward_code
    assert record.VoChong.SoDinhDanh == citizen.spouse.personal_id
    assert record.ChuHo.QuanHe == "CH01"


async def test_zeep_verifies_a_citizen(soap: Any, citizen: Citizen) -> None:
    answer = await soap.service.XacThucThongTinCongDan(
        MaYeuCau="z-2",
        SoDinhDanh=citizen.personal_id,
        HoVaTen=citizen.full_name.lower(),
        NgayThangNamSinh=citizen.date_of_birth.strftime("%Y%m%d"),
        **COMMON,
    )
    assert answer.TonTai is True and answer.KetQuaXacThuc is True
    assert answer.ChiTietXacThuc.HoVaTen is True
    assert answer.ChiTietXacThuc.GioiTinh is None
    wrong = await soap.service.XacThucThongTinCongDan(
        MaYeuCau="z-3",
        SoDinhDanh=citizen.personal_id,
        HoVaTen=citizen.full_name,
        NgayThangNamSinh="19000101",
        GioiTinh="1" if citizen.gender == "female" else "2",
        **COMMON,
    )
    assert wrong.KetQuaXacThuc is False
    assert (wrong.ChiTietXacThuc.NgayThangNamSinh, wrong.ChiTietXacThuc.GioiTinh) == (False, False)


async def test_zeep_raises_fault_for_unknown_id(soap: Any) -> None:
    with pytest.raises(Fault) as caught:
        await soap.service.TraCuuThongTinCongDan(
            MaYeuCau="z-4", SoDinhDanh="001099000001", **COMMON
        )
    assert caught.value.code == "soap:Client"
    assert caught.value.detail.findtext("r:Loi/r:MaLoi", namespaces=NS) == "KHONG_TIM_THAY"


async def test_zeep_raises_fault_when_auth_fails(tmp_path: Path, citizen: Citizen) -> None:
    from mocks.population.app import create_app

    transport = httpx.ASGITransport(app=create_app())
    wrong = PopulationAuth("hub", "not-the-secret")
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, auth=wrong) as http:
        with httpx.Client() as wsdl_client:
            client = zeep.AsyncClient(
                str(WSDL_PATH), transport=AsyncTransport(client=http, wsdl_client=wsdl_client)
            )
            # zeep 4.3's AsyncClient.create_service returns a *sync* proxy (a zeep bug), so
            # point an async proxy at the mock by hand.
            binding = client.wsdl.bindings["{http://dancuquocgia.bca}DanCuBinding"]
            service = AsyncServiceProxy(client, binding, address=f"{BASE_URL}/dancu/ws")
            with pytest.raises(Fault) as caught:
                await service.TraCuuThongTinCongDan(
                    MaYeuCau="z-5", SoDinhDanh=citizen.personal_id, **COMMON
                )
    assert caught.value.detail.findtext("r:Loi/r:MaLoi", namespaces=NS) == "XAC_THUC_THAT_BAI"
