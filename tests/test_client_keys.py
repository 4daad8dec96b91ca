"""Client and key management: several keys per client, rotation with a grace period,
revocation of one key or of the client, expiry, and list/show that never print a key."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from hub.cli import main
from hub.core.db import make_engine, upgrade
from hub.errors import Unauthenticated
from hub.security.auth import Authenticator

SECRET = "key-test-secret-0123456789"


@pytest.fixture
def cli(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/hub.db"
    monkeypatch.setenv("HUB_DATABASE_URL", url)
    monkeypatch.setenv("HUB_SECRET_KEY", SECRET)
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> str:
        result = runner.invoke(main, ["clients", *args])
        assert (result.exit_code == 0) == ok, result.output
        return result.output

    engine = make_engine(url)
    upgrade(engine)
    run.engine = engine  # type: ignore[attr-defined]
    yield run
    engine.dispose()


async def works(engine, key: str) -> bool:
    authenticator = Authenticator(engine, SECRET.encode(), ttl=0)
    try:
        await authenticator.authenticate(f"Bearer {key}")
    except Unauthenticated:
        return False
    return True


async def test_rotation_keeps_the_old_key_for_the_grace_then_revocation(cli):
    first = json.loads(cli("create", "tax-app", "--allow", "population", "--rate", "60/minute"))
    second = json.loads(cli("rotate-key", "tax-app"))
    assert second["client_id"] == first["client_id"] and second["api_key"] != first["api_key"]
    assert await works(cli.engine, first["api_key"]) and await works(cli.engine, second["api_key"])

    shown = json.loads(cli("show", "tax-app"))
    assert [k["state"] for k in shown["keys"]] == ["live", "live"]
    assert shown["keys"][0]["expires_at"] is not None  # the old one ends after the grace
    assert shown["rate_per_minute"] == 60
    text = cli("show", "tax-app") + cli("list")
    assert first["api_key"] not in text and second["api_key"] not in text  # never printed

    third = json.loads(cli("rotate-key", "tax-app", "--grace-hours", "0"))
    assert not await works(cli.engine, first["api_key"])
    assert not await works(cli.engine, second["api_key"])
    assert await works(cli.engine, third["api_key"])
    states = [k["state"] for k in json.loads(cli("show", "tax-app"))["keys"]]
    assert states == ["expired", "expired", "live"]

    prefix = json.loads(cli("show", "tax-app"))["keys"][2]["prefix"]
    assert "revoked: key" in cli("revoke", "tax-app", "--key", prefix)
    assert not await works(cli.engine, third["api_key"])
    cli("revoke", "tax-app", "--key", prefix, ok=False)  # no longer live


async def test_revoking_a_client_stops_every_key(cli):
    first = json.loads(cli("create", "old-app", "--allow", "*"))
    second = json.loads(cli("rotate-key", "old-app"))
    assert "2 key(s)" in cli("revoke", "old-app")
    assert not await works(cli.engine, first["api_key"])
    assert not await works(cli.engine, second["api_key"])
    assert json.loads(cli("show", "old-app"))["active"] is False
    [line] = cli("list").splitlines()
    assert json.loads(line)["name"] == "old-app"


async def test_a_new_key_with_an_expiry(cli):
    cli("create", "short-app", "--allow", "*")
    issued = json.loads(cli("rotate-key", "short-app", "--expires-in-days", "30"))
    assert await works(cli.engine, issued["api_key"])
    keys = json.loads(cli("show", "short-app"))["keys"]
    assert keys[-1]["expires_at"] is not None and keys[-1]["state"] == "live"


def test_unknown_clients_and_bad_values(cli):
    assert "no client named" in cli("show", "nobody", ok=False)
    assert "no client named" in cli("rotate-key", "nobody", ok=False)
    assert "no client named" in cli("revoke", "nobody", ok=False)
    cli("create", "app", "--allow", "*")
    assert "negative" in cli("rotate-key", "app", "--grace-hours", "-1", ok=False)
