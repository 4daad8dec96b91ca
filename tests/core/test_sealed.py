"""Certificates and webhook payloads are sealed at rest (issue 18, finding 9): the database
holds Fernet tokens, never the certificate, its holder's ID or the PDF; the hub reads them
back as before; HUB_DATA_KEY (from the environment or the secrets folder) seals, and a list
of keys rotates."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select, text

from hub.core.config import ConfigurationError, Settings
from hub.core.db import create_schema, make_engine
from hub.core.models import Job
from hub.core.sealed import SealBroken, install_sealer, sealer_for
from tests.conftest import reset_database, running_hub
from tests.core import fakes
from tests.core.fakes import FakeJudicialAdapter
from tests.core.test_jobs import (  # noqa: F401
    APPLICATION,
    hub,
    push,
    receiver,
    submit,
    upstream,
)

SECRETS = ("25HN2013/00001", "JVBERi0xLjQK", APPLICATION["personal_id"], "Nguyễn")


def raw_rows(engine: Any) -> tuple[list[str], list[str]]:
    """What the database itself holds, read past the column types."""
    with engine.connect() as conn:
        results = [str(r) for r in conn.execute(text("SELECT result FROM jobs")).scalars()]
        payloads = list(conn.execute(text("SELECT payload FROM webhook_deliveries")).scalars())
    return results, payloads


async def issue_certificate(hub: Any, key: str) -> dict[str, Any]:  # noqa: F811
    job = (
        await submit(hub, key, {**APPLICATION, "callback_url": "http://agency.test/hook"})
    ).json()
    result = {"reference": "REF0001", "status": "issued", "certificate": fakes.CERTIFICATE}
    assert (await push(hub, result)).status_code == 200
    return job["data"]  # type: ignore[no-any-return]


async def test_the_database_holds_no_certificate_in_clear(hub, upstream, receiver):  # noqa: F811
    key = hub.client()
    job = await issue_certificate(hub, key)
    results, payloads = raw_rows(hub.hub.engine)
    assert results and payloads
    for stored in results + payloads:
        assert "gAAAAA" in stored  # a Fernet token
        for secret in SECRETS:
            assert secret not in stored
    # The hub reads them as before: the client's read, the webhook it receives.
    read = await hub.http.get(
        f"/v1/judicial-records/requests/{job['id']}", headers=hub.headers(key)
    )
    assert read.json()["data"]["certificate"] == fakes.CERTIFICATE
    assert await hub.hub.worker.run_once() == 1
    [(_headers, body)] = receiver.received
    assert json.loads(body)["data"]["certificate"]["number"] == "25HN2013/00001"


async def test_the_data_key_setting_seals_and_a_key_list_rotates(settings, upstream, receiver):  # noqa: F811
    old, new = Fernet.generate_key(), Fernet.generate_key()
    settings.data_key = SecretStr(old.decode())
    settings.adapters = {"judicial-records": {"base_url": "http://unused.test"}}
    async with running_hub(settings, adapters=[FakeJudicialAdapter]) as hub:  # noqa: F811
        key = hub.client()
        await issue_certificate(hub, key)
        [result], _ = raw_rows(hub.hub.engine)
        token = result[result.index("gAAAAA") :].split('"')[0]
        assert b"25HN2013/00001" in Fernet(old).decrypt(token.encode())
    # The new key first, the old one kept: old rows still open, new ones seal with the new.
    rotated = sealer_for(f"{new.decode()},{old.decode()}", b"unused")
    engine = make_engine(settings.database_url)
    install_sealer(engine, rotated)
    with engine.connect() as conn:
        [row] = conn.execute(select(Job.__table__.c.result)).scalars().all()
    assert row["certificate"]["number"] == "25HN2013/00001"
    # Without the old key the row does not open, and nothing is guessed.
    install_sealer(engine, sealer_for(new.decode(), b"unused"))
    with engine.connect() as conn, pytest.raises(Exception) as caught:
        conn.execute(select(Job.__table__.c.result)).scalars().all()
    assert isinstance(caught.value, SealBroken) or isinstance(
        caught.value.__cause__ or caught.value.__context__, SealBroken
    )
    engine.dispose()


def test_rows_written_before_sealing_are_still_read(settings):
    reset_database(settings.database_url)
    engine = make_engine(settings.database_url)
    install_sealer(engine, settings.sealer())
    create_schema(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (id, service, client_id, status, final, created_at,"
                " poll_attempts, result) VALUES ('job_old', 'judicial-records', 'cl_x', 'issued',"
                " :f, :t, 0, :r)"
            ),
            {
                "f": True,
                "t": dt.datetime.now(dt.UTC),
                "r": '{"certificate": {"number": "N1"}}',
            },
        )
        [row] = conn.execute(select(Job.__table__.c.result)).scalars().all()
    assert row == {"certificate": {"number": "N1"}}
    engine.dispose()


def test_a_data_key_that_is_not_a_fernet_key_is_refused_without_repeating_it():
    settings = Settings(data_key=SecretStr("not-a-fernet-key-s3cr3t"))
    with pytest.raises(ConfigurationError, match="HUB_DATA_KEY") as caught:
        settings.check()
    assert "s3cr3t" not in str(caught.value)
