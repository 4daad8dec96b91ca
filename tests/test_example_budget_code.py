"""The worked example of docs/adapters.md: the budget-relationship code registry, an adapter
in a separate distribution (`examples/budget-code`, made with `hub adapter new --package`).

Its own tests pass; installed with pip (into a folder of its own, never this environment),
it is found by a real `hub serve` process through its entry point, with no change to the
hub's core: it is in the catalogue, `/ready` probes it, and the generic route calls it
against its mock, itself a real server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.test_servers import HUB, free_port, start, stop, wait_until_up
from tests.wheels import install_into_folder

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "budget-code"


def test_the_examples_own_tests_pass():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example installed with pip from its wheel into a folder of its own."""
    work = tmp_path_factory.mktemp("budget-code")
    return install_into_folder(EXAMPLE, work, "hub_adapter_budget_code-*.whl")


@pytest.mark.server
def test_the_installed_example_is_served_by_the_hub(site: Path, tmp_path: Path):
    mock_port, hub_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "HUB_DATABASE_URL": os.environ.get("HUB_TEST_DATABASE_URL")
        or f"sqlite:///{tmp_path}/hub.db",
        "HUB_SECRET_KEY": "example-test-secret",
        "HUB_ENABLED_ADAPTERS": '["budget-code", "population"]',
        "HUB_BUDGET_CODE_BASE_URL": f"http://127.0.0.1:{mock_port}",
        "HUB_UPSTREAM_TIMEOUT_S": "2",
    }
    if os.environ.get("HUB_TEST_DATABASE_URL"):
        from tests.conftest import reset_database

        reset_database(env["HUB_DATABASE_URL"])
    mock = start([sys.executable, "-m", "budget_code.mock", "--port", str(mock_port)], env)
    hub = start([*HUB, "serve", "--port", str(hub_port), "--log-level", "warning"], env)
    base = f"http://127.0.0.1:{hub_port}"
    try:
        wait_until_up(mock, f"http://127.0.0.1:{mock_port}/_mock/health")
        wait_until_up(hub, f"{base}/health")
        created = subprocess.run(
            [*HUB, "clients", "create", "finance-office", "--allow", "budget-code"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        headers = {"authorization": f"Bearer {json.loads(created.stdout)['api_key']}"}

        catalogue = httpx.get(f"{base}/v1/services", headers=headers).json()["data"]
        [entry] = [s for s in catalogue if s["name"] == "budget-code"]
        assert entry["status"] == "up" and entry["title"] == "Budget-relationship code registry"
        assert httpx.get(f"{base}/ready").json()["services"]["budget-code"]["ok"] is True

        found = httpx.post(
            f"{base}/v1/services/budget-code/lookup", json={"code": "1060431"}, headers=headers
        )
        assert found.status_code == 200, found.text
        assert found.json()["data"]["name"] == "Sở Tài chính tỉnh Lâm Đồng"
        assert found.json()["meta"]["adapter_version"] == "0.1.0"
        below = httpx.post(
            f"{base}/v1/services/budget-code/subordinates",
            json={"code": "1063390"},
            headers=headers,
        )
        assert {u["code"] for u in below.json()["data"]["items"]} >= {"1064018", "1064019"}
        # Grants work for it like for any built-in service.
        refused = httpx.post(
            f"{base}/v1/services/population/lookup",
            json={"personal_id": "001085012345"},
            headers={**headers, "x-purpose": "x"},
        )
        assert refused.status_code == 403
    finally:
        stop(hub)
        stop(mock)
