"""Signed notifications to clients (webhooks), delivered from a database outbox.

A state change that a client asked to hear about (a judicial certificate issued, a payment
paid) writes a WebhookDelivery row in the same transaction as the change itself, so a
notification is never lost nor sent for a change that did not commit. Any hub process
delivers due rows; a lease on the row keeps two processes from sending it at once.

Each request carries::

    X-Hub-Event: judicial-request.completed
    X-Hub-Delivery: wh_…                      (the same on every retry: dedupe on it)
    X-Hub-Signature: t=1732240000,v1=<hex HMAC-SHA256(key, f"{t}.{body}")>

`key` is the client's webhook secret, derived from the server secret and the client id
(`hub clients webhook-secret NAME` prints it), so nothing more is stored. Receivers check
the signature in constant time and refuse a `t` more than a few minutes old.

Retries use exponential back-off with full jitter. It is computed here rather than by
tenacity because the schedule has to survive restarts: the next attempt time is a column.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from hub.core.gateway import CallerHeaders, Gateway
from hub.core.models import WebhookDelivery, utcnow
from hub.errors import HubError, InvalidCallbackUrl
from hub.resilience.retry import doubling_delay

#: How long a process holds a delivery it is sending (longer than any send may take).
LEASE_S = 60

log = logging.getLogger("hub.webhooks")

SIGNATURE_HEADER = "x-hub-signature"


def webhook_secret(server_secret: bytes, client_id: str) -> str:
    """The key a client verifies its webhooks with."""
    return hmac.digest(server_secret, b"webhook:" + client_id.encode(), hashlib.sha256).hex()


def sign(key: str, body: bytes, timestamp: int) -> str:
    """The `X-Hub-Signature` value for a body sent at `timestamp`."""
    mac = hmac.digest(key.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hex()}"


def verify(
    key: str, body: bytes, header: str, *, max_age_s: float = 300, now: float | None = None
) -> bool:
    """Check an `X-Hub-Signature` (what a receiving agency does; used by the tests)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > max_age_s:
        return False
    expected = sign(key, body, timestamp).rpartition("v1=")[2]
    return hmac.compare_digest(expected, parts.get("v1", ""))


#: IPv6 prefixes that carry an IPv4 address in their last 32 bits, which a translator or
#: a relay then reaches: NAT64's well-known prefix (RFC 6052) and the deprecated
#: IPv4-compatible addresses (`::a.b.c.d`, RFC 4291). Python's `is_global` judges these by
#: the IPv6 prefix alone, so `64:ff9b::127.0.0.1` would pass as public.
_EMBEDDING_V4 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("::/96"))
#: NAT64's local-use prefix (RFC 8215): where the IPv4 address sits depends on the site's
#: prefix length, so it is never judged public.
_LOCAL_NAT64 = ipaddress.IPv6Network("64:ff9b:1::/48")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to (mapped, 6to4, NAT64, IPv4-compatible)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in network for network in _EMBEDDING_V4):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(address: str) -> bool:
    """An address the open internet routes to: not loopback, private, link-local, shared,
    reserved or multicast (where a callback URL could reach the hub's own network). An IPv6
    address that embeds an IPv4 one (mapped, 6to4, NAT64, IPv4-compatible) is judged by the
    IPv4 address it leads to as well; Teredo (2001::/32) is not global to begin with."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _LOCAL_NAT64:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return embedded.is_global and not embedded.is_multicast
    return True


def _local_name(host: str) -> bool:
    host = host.rstrip(".").lower()
    return host == "localhost" or host.endswith(".localhost")


def check_callback_url(url: Any, *, https_only: bool, public_only: bool = False) -> str | None:
    """Validate a client-supplied callback URL (None when absent). `public_only` refuses a
    host that is a non-public address or a local name; names are resolved and checked
    again at each delivery (WebhookSender)."""
    if url is None:
        return None
    if not isinstance(url, str) or len(url) > 500:
        raise InvalidCallbackUrl("callback_url must be a URL of at most 500 characters")
    allowed = ("https",) if https_only else ("http", "https")
    wrong = InvalidCallbackUrl(f"callback_url must be an absolute {' or '.join(allowed)} URL")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
        httpx.Request("POST", url)  # what will send it must accept it too (IDNA, characters)
    except (ValueError, httpx.InvalidURL):
        raise wrong from None
    if parts.scheme not in allowed or not parts.hostname:
        raise wrong
    if parts.username or parts.password:
        raise InvalidCallbackUrl("callback_url must not carry credentials")
    host = parts.hostname
    if public_only and (_local_name(host) or (_is_ip(host) and not is_public_address(host))):
        raise InvalidCallbackUrl("callback_url must be a public address")
    return url


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def enqueue(
    session: Session,
    *,
    client_id: str,
    url: str,
    event: str,
    data: Mapping[str, Any],
    service: str,
    subject_id: str | None = None,
    purpose: str | None = None,
) -> WebhookDelivery:
    """Add a delivery to the session (committed with the caller's state change). `service`,
    `subject_id` (the person the data is about, if any) and `purpose` (the one the client
    stated when it asked) go into the audit record that each attempt to send it writes."""
    delivery_id = "wh_" + secrets.token_hex(10)
    body = {"id": delivery_id, "event": event, "created_at": utcnow().isoformat(), "data": data}
    row = WebhookDelivery(
        id=delivery_id,
        client_id=client_id,
        url=url,
        event=event,
        service=service,
        subject_id=subject_id,
        purpose=purpose,
        payload=orjson.dumps(body).decode(),
        next_attempt_at=utcnow(),
    )
    session.add(row)
    return row


#: Writes the audit record of one delivery attempt before it is sent (raises HubError when
#: the trail cannot be written, and then nothing is sent).
AuditHook = Callable[[WebhookDelivery], Awaitable[None]]


def audit_by(gateway: Gateway) -> AuditHook:
    """The audit hook that writes a delivery attempt's record through the gateway's trail."""

    async def record(row: WebhookDelivery) -> None:
        data = orjson.loads(row.payload).get("data")
        await gateway.record_event(
            CallerHeaders(request_id=row.id, authorization=None, purpose=row.purpose),
            row.client_id,
            row.service or "-",
            "webhook",
            subject_id=row.subject_id,
            disclosed=data,
        )

    return record


class WebhookSender:
    """Delivers due webhooks; one `run_once()` per worker tick.

    A webhook hands a client data as an answer does, so each attempt is audited as one:
    the record (operation `webhook`, the delivery id as its request id, the fields the
    body carries, the person it concerns) is committed before the body leaves. When the
    audit trail cannot be written nothing is sent; the delivery waits, without the attempt
    counting against it, and goes once the trail is back.
    """

    def __init__(
        self,
        engine: Engine,
        server_secret: bytes,
        *,
        max_attempts: int,
        initial_backoff_s: float,
        max_backoff_s: float,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        batch: int = 20,
        public_only: bool = False,
        audit: AuditHook | None = None,
    ) -> None:
        self._engine, self._secret = engine, server_secret
        self.max_attempts, self.initial_backoff_s = max_attempts, initial_backoff_s
        self.max_backoff_s, self.batch = max_backoff_s, batch
        self.timeout_s, self.public_only = timeout_s, public_only
        self._audit = audit
        # follow_redirects stays off: a redirect could bounce a signed body anywhere.
        self._http = httpx.AsyncClient(
            transport=transport, timeout=timeout_s, follow_redirects=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run_once(self) -> int:
        """Send every due delivery this process can lease; returns how many were tried."""
        rows = await asyncio.to_thread(self._lease_due)
        if rows:
            await asyncio.gather(*(self._send(row) for row in rows))
        return len(rows)

    def _lease_due(self) -> list[WebhookDelivery]:
        now = utcnow()
        with Session(self._engine, expire_on_commit=False) as session:
            is_due = col(WebhookDelivery.next_attempt_at) <= now
            due = session.exec(
                select(WebhookDelivery.id)
                .where(is_due)
                .where(unleased(WebhookDelivery, now))
                .order_by(col(WebhookDelivery.next_attempt_at))
                .limit(self.batch)
            ).all()
            leased = []
            for delivery_id in due:
                if lease(session, WebhookDelivery, delivery_id, now, seconds=LEASE_S, still=is_due):
                    row = session.get(WebhookDelivery, delivery_id)
                    if row is not None:
                        leased.append(row)
            session.commit()
            for row in leased:
                session.refresh(row)
                session.expunge(row)
        return leased

    async def _send(self, row: WebhookDelivery) -> None:
        if self._audit is not None:
            try:
                await self._audit(row)
            except HubError as exc:
                log.warning(
                    "webhook %s held back: its audit record cannot be written (%s)",
                    row.id,
                    exc.code,
                    extra={"webhook_id": row.id},
                )
                await asyncio.to_thread(self._hold, row.id)
                return
        body = row.payload.encode()
        headers = {
            "content-type": "application/json",
            "x-hub-event": row.event,
            "x-hub-delivery": row.id,
            SIGNATURE_HEADER: sign(
                webhook_secret(self._secret, row.client_id), body, int(time.time())
            ),
        }
        status: int | None = None
        try:
            # One deadline for the whole exchange (a receiver dripping bytes would never
            # trip the per-read timeout), and the answer's body is never read: only its
            # status matters, and a huge one must not fill the hub's memory.
            status = await asyncio.wait_for(self._post(row.url, body, headers), self.timeout_s)
        except Exception as exc:  # any failure, even a URL httpx will not send to, counts
            log.info(
                "webhook %s not delivered: %s",
                row.id,
                type(exc).__name__,
                extra={"webhook_id": row.id},
            )
        await asyncio.to_thread(self._record, row.id, status)

    async def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        if self.public_only:
            await _check_resolves_public(url)
        async with self._http.stream("POST", url, content=body, headers=headers) as response:
            return response.status_code

    def _record(self, delivery_id: str, status: int | None) -> None:
        now = utcnow()
        with Session(self._engine, expire_on_commit=False) as session:
            row = session.get(WebhookDelivery, delivery_id)
            if row is None:
                return
            row.attempts += 1
            row.last_status = status
            row.lease_until = None
            if status is not None and 200 <= status < 300:
                row.delivered_at, row.next_attempt_at = now, None
            elif row.attempts >= self.max_attempts:
                row.gave_up_at, row.next_attempt_at = now, None
                log.warning(
                    "webhook %s given up after %d attempts",
                    row.id,
                    row.attempts,
                    extra={"webhook_id": row.id},
                )
            else:
                row.next_attempt_at = now + dt.timedelta(seconds=self.backoff(row.attempts))
            session.add(row)
            session.commit()

    def _hold(self, delivery_id: str) -> None:
        """Give a delivery back, due again after the first back-off step, its attempts as
        they were: the hub's own trouble is not the receiver's failure."""
        with Session(self._engine) as session:
            row = session.get(WebhookDelivery, delivery_id)
            if row is None:
                return
            row.lease_until = None
            row.next_attempt_at = utcnow() + dt.timedelta(seconds=self.initial_backoff_s)
            session.add(row)
            session.commit()

    def backoff(self, attempts: int) -> float:
        """Full-jitter exponential back-off before attempt `attempts + 1`."""
        ceiling = doubling_delay(self.initial_backoff_s, self.max_backoff_s, attempts - 1)
        return random.uniform(0, ceiling)  # jitter, not security: random is right here


class NotPublic(Exception):
    """A callback host that resolves to a non-public address: never sent to."""


async def _check_resolves_public(url: str) -> None:
    """Resolve the callback's host and refuse it if any address is not public (a name can
    point into the hub's own network). httpx resolves again when it connects, so a name
    whose answer changes in between (DNS rebinding) is not fully covered: a deployment
    that needs that guarantee sends webhooks through an egress proxy."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if _local_name(host):
        raise NotPublic()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = await asyncio.get_running_loop().getaddrinfo(host, port)
    if not infos or not all(is_public_address(str(info[4][0])) for info in infos):
        raise NotPublic()


def unleased(model: Any, now: dt.datetime) -> Any:
    """The condition of a row no process holds now."""
    return or_(model.lease_until.is_(None), model.lease_until < now)


def lease(
    session: Session,
    model: Any,
    row_id: str,
    now: dt.datetime,
    *,
    seconds: float,
    still: Any = None,
) -> bool:
    """Take a row for `seconds` unless another process holds it, and, when `still` is
    given, only while that condition (the row is still due) holds: one conditional UPDATE,
    which both SQLite and PostgreSQL apply atomically. A row finished by another process
    between the select and this update is therefore not taken again."""
    statement = update(model).where(model.id == row_id).where(unleased(model, now))
    if still is not None:
        statement = statement.where(still)
    result = session.execute(statement.values(lease_until=now + dt.timedelta(seconds=seconds)))
    return bool(result.rowcount)  # type: ignore[attr-defined]
