"""The webhook outbox's sender against receivers that misbehave, and callback URL checks.

One agency's endpoint must never hold up the hub's background work or another agency's
deliveries: a receiver that never answers, a URL the HTTP client refuses, rows another
process holds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from hub.capabilities.webhooks import WebhookSender, check_callback_url, enqueue
from hub.core.config import Settings
from hub.core.db import create_schema, make_engine
from hub.core.models import WebhookDelivery, utcnow
from hub.core.sealed import install_sealer
from hub.errors import AuditUnavailable, InvalidCallbackUrl
from tests.conftest import reset_database


class Receiver:
    """Answers 200 at once, except at paths under /hang, which never answer."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.paths.append(scope["path"])
        if scope["path"].startswith("/hang"):
            await asyncio.Event().wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def engine(settings: Settings) -> Any:
    reset_database(settings.database_url)
    engine = make_engine(settings.database_url)
    install_sealer(engine, settings.sealer())  # payloads are sealed at rest, as in the app
    create_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture
async def sender(engine: Any) -> AsyncIterator[tuple[WebhookSender, Receiver]]:
    receiver = Receiver()
    sender = make_sender(engine, receiver, batch=5)
    yield sender, receiver
    await sender.aclose()


def make_sender(engine: Any, receiver: Receiver, **options: Any) -> WebhookSender:
    """A sender to `receiver`: three attempts, 1 s back-off doubling to 10 s, a 0.2 s
    deadline, unless `options` say otherwise."""
    settings: dict[str, Any] = {
        "max_attempts": 3,
        "initial_backoff_s": 1,
        "max_backoff_s": 10,
        "timeout_s": 0.2,
        "transport": httpx.ASGITransport(app=receiver),
    }
    return WebhookSender(engine, b"secret", **(settings | options))


def queue(engine: Any, url: str, *, client: str = "cl_a", leased_for_s: float | None = None) -> str:
    with Session(engine) as session:
        row = enqueue(
            session,
            client_id=client,
            url=url,
            event="payment.paid",
            data={"id": "x"},
            service="payment",
        )
        if leased_for_s is not None:  # held by another hub process
            row.lease_until = utcnow() + dt.timedelta(seconds=leased_for_s)
        session.commit()
        return row.id


def rows(engine: Any) -> dict[str, WebhookDelivery]:
    with Session(engine) as session:
        return {r.id: r for r in session.exec(select(WebhookDelivery)).all()}


async def test_a_receiver_that_never_answers_costs_one_timeout_and_is_retried(engine, sender):
    webhooks, _ = sender
    stuck = queue(engine, "http://agency.test/hang")
    fine = queue(engine, "http://other-agency.test/hook", client="cl_b")
    # Bounded by the sender's own deadline, not by the receiver.
    assert await asyncio.wait_for(webhooks.run_once(), 10) == 2
    after = rows(engine)
    assert after[fine].delivered_at is not None
    assert after[stuck].attempts == 1 and after[stuck].delivered_at is None
    assert after[stuck].last_status is None and after[stuck].next_attempt_at is not None
    assert after[stuck].lease_until is None


async def test_a_url_the_client_refuses_counts_as_an_attempt_and_ends(engine, sender):
    """A row stored before the URL check existed, or by another hub version."""
    webhooks, _ = sender
    bad = queue(engine, "http://xn--a.com/hook")
    for _ in range(3):
        with Session(engine) as session:  # make it due again at once
            row = session.get(WebhookDelivery, bad)
            if row.next_attempt_at is not None:
                row.next_attempt_at = utcnow() - dt.timedelta(seconds=1)
                session.add(row)
                session.commit()
        await webhooks.run_once()
    row = rows(engine)[bad]
    assert row.attempts == 3 and row.gave_up_at is not None and row.next_attempt_at is None


async def test_nothing_is_sent_unless_its_audit_record_is_written(engine):
    """A webhook discloses data as an answer does: its record is written first. While the
    trail is down the delivery waits, the attempt not counted; then it goes, audited."""
    receiver = Receiver()
    audited: list[str] = []
    down = True

    async def audit(row: WebhookDelivery) -> None:
        if down:
            raise AuditUnavailable()
        audited.append(row.id)

    # one counted failure would end it: the held attempts must not count
    webhooks = make_sender(engine, receiver, max_attempts=1, audit=audit)
    try:
        held = queue(engine, "http://agency.test/hook")
        for _ in range(2):
            assert await webhooks.run_once() == 1
            row = rows(engine)[held]
            assert receiver.paths == [] and audited == []
            assert (row.attempts, row.delivered_at, row.gave_up_at) == (0, None, None)
            assert row.lease_until is None and row.next_attempt_at is not None
            assert await webhooks.run_once() == 0  # not due again before the back-off
            make_due(engine, held)
        down = False
        assert await webhooks.run_once() == 1
        assert receiver.paths == ["/hook"] and audited == [held]
        row = rows(engine)[held]
        assert row.attempts == 1 and row.delivered_at is not None
    finally:
        await webhooks.aclose()


def make_due(engine: Any, delivery_id: str) -> None:
    with Session(engine) as session:
        row = session.get(WebhookDelivery, delivery_id)
        row.next_attempt_at = utcnow() - dt.timedelta(seconds=1)
        session.add(row)
        session.commit()


async def test_rows_another_process_holds_do_not_fill_the_batch(engine, sender):
    webhooks, receiver = sender
    for _ in range(8):  # more than a batch, all held elsewhere
        queue(engine, "http://agency.test/held", leased_for_s=60)
    free = queue(engine, "http://other-agency.test/hook", client="cl_b")
    assert await webhooks.run_once() == 1
    assert receiver.paths == ["/hook"]
    assert rows(engine)[free].delivered_at is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com:abc/hook",  # a port that is not a number
        "http://☃.com/hook",
        "http://xn--a.com/hook",  # not valid IDNA
        "http://[::1/hook",
        "ftp://agency.test/hook",
        "http:///hook",
        "https://user:pw@agency.test/hook",
        "https://agency.test/" + "x" * 500,
    ],
)
def test_callback_urls_the_hub_could_not_send_to_are_refused(url):
    with pytest.raises(InvalidCallbackUrl):
        check_callback_url(url, https_only=False)


def test_https_only_refuses_http():
    assert check_callback_url("https://agency.test/hook", https_only=True)
    with pytest.raises(InvalidCallbackUrl):
        check_callback_url("http://agency.test/hook", https_only=True)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://100.64.0.1/hook",  # carrier-grade NAT
        "https://localhost/hook",
        "https://api.localhost./hook",
        # IPv6 forms that lead to an IPv4 address inside the network (issue 18, finding 7)
        "https://[64:ff9b::7f00:1]/hook",  # NAT64 of 127.0.0.1
        "https://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
        "https://[64:ff9b:1::a00:1]/hook",  # NAT64 local-use prefix
        "https://[2002:7f00:1::1]/hook",  # 6to4 of 127.0.0.1
        "https://[2002:c0a8:a::1]/hook",  # 6to4 of 192.168.0.10
        "https://[::7f00:1]/hook",  # IPv4-compatible 127.0.0.1
        "https://[::a00:1]/hook",  # IPv4-compatible 10.0.0.1
        "https://[::ffff:127.0.0.1]/hook",  # IPv4-mapped
        "https://[::ffff:10.0.0.1]/hook",
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook",  # Teredo
    ],
)
def test_public_only_refuses_addresses_inside_the_network(url):
    assert check_callback_url(url, https_only=True) == url  # allowed in development
    with pytest.raises(InvalidCallbackUrl, match="public"):
        check_callback_url(url, https_only=True, public_only=True)


def test_public_only_accepts_public_addresses_and_names():
    for url in (
        "https://8.8.8.8/hook",
        "https://agency.example.gov.vn/hook",
        "https://[64:ff9b::808:808]/hook",  # NAT64 of a public address
        "https://[2002:808:808::1]/hook",  # 6to4 of a public address
        "https://[2606:4700:4700::1111]/hook",
    ):
        assert check_callback_url(url, https_only=True, public_only=True) == url


async def test_delivery_refuses_a_name_that_resolves_inside_the_network(engine):
    """A name passes the check at submission; at delivery it resolves to loopback (no
    network needed: `localhost.` and a name in /etc/hosts resolve locally)."""
    receiver = Receiver()
    webhooks = make_sender(engine, receiver, timeout_s=2, public_only=True)
    try:
        import socket

        local_name = socket.gethostname()  # resolves to this machine's own address
        row_id = queue(engine, f"http://{local_name}/hook")
        assert await webhooks.run_once() == 1
        row = rows(engine)[row_id]
        assert row.attempts == 1 and row.delivered_at is None
        assert receiver.paths == []  # never sent
    finally:
        await webhooks.aclose()
