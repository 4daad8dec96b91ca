"""The integrator's kit itself (hub.testing): what it writes, and what it must catch.

The kit's battery is run on deliberately broken copies of an adapter: each breakage must
make the battery fail, so an integrator's mistake cannot pass it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from adapters.business_registration import BusinessRegistrationAdapter
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


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])


async def test_an_unknown_operation_says_which_one_was_meant(hub):
    key = hub.client(allow=["business-registration"])
    base = "/v1/services/business-registration"
    answer = await hub.http.post(f"{base}/by_representative", json={}, headers=hub.headers(key))
    assert answer.status_code == 404 and answer.json()["code"] == "UNKNOWN_OPERATION"
    assert "did you mean `by-representative`?" in answer.json()["detail"]
    far = await hub.http.post(f"{base}/payroll", json={}, headers=hub.headers(key))
    assert "did you mean" not in far.json()["detail"] and "'payroll'" in far.json()["detail"]
    # the caller's path segment is quoted only when short and plain
    for segment in ("x" * 65, "look%3Cscript%3E", "LOOKUP"):
        odd = await hub.http.post(f"{base}/{segment}", json={}, headers=hub.headers(key))
        assert odd.status_code == 404, odd.text
        assert odd.json()["detail"] == "service 'business-registration' has no such operation"
