"""The checks of an adapter whose upstream fails: hangs and read timeouts, HTTP 5xx,
malformed answers, refused connections; and that none of their errors leaks anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.adapter import Health, OperationSpec
from hub.errors import HubError, UpstreamBadResponse, UpstreamError, UpstreamTimeout
from hub.testing.base import ConformanceBase, _over
from hub.testing.client import ConformanceHub
from hub.testing.faults import _ERROR_PAGE, CANARY, Fault, Injection
from hub.testing.leaks import _answer_strings, _assert_clean, _forbidden

_TIMEOUT_FAULTS: tuple[Fault, ...] = ("hang", "read_timeout")
_SERVER_ERROR_FAULTS: tuple[Fault, ...] = ("http_500", "http_503")
#: What each server error is by the hub's one status rule (hub.upstream.raise_for_status):
#: a 503 is unavailable (retried later, with Retry-After), a 500 with its error page an error.
_SERVER_ERRORS: dict[Fault, tuple[int, str]] = {
    "http_500": (502, "UPSTREAM_ERROR"),
    "http_503": (503, "UPSTREAM_UNAVAILABLE"),
}


class FaultChecks(ConformanceBase):
    """The battery's checks with faults injected in the transport around the mock."""

    # -- 5. upstream timeout -----------------------------------------------------------------

    @_over("samples")
    def test_upstream_timeout_is_a_timeout(self, operation: str, tmp_path: Path) -> None:
        """An upstream that never answers (ended by the hub's per-attempt timeout), and one
        whose read times out in the HTTP client, are 504 UPSTREAM_TIMEOUT, after
        `retry_attempts` attempts when the operation is idempotent, else one."""
        spec = self._spec(operation)

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                payload = await self._primed(kit, operation)
                for fault in _TIMEOUT_FAULTS:
                    with kit.transport.inject(fault) as met:
                        async with kit.attempt_timeout(self.attempt_timeout_s):
                            exc = await kit.error(operation, payload)
                    self._assert_met(met)
                    assert isinstance(exc, UpstreamTimeout), (
                        f"{fault}: expected UpstreamTimeout (504), got {type(exc).__name__} "
                        f"({exc.status} {exc.code})"
                    )
                    self._assert_attempts(spec, met, fault)

        self._run(check)

    # -- 6. 5xx retried only when idempotent -------------------------------------------------

    @_over("samples")
    def test_5xx_is_retried_only_when_idempotent(self, operation: str, tmp_path: Path) -> None:
        """HTTP 500 (with an error page) is 502 UPSTREAM_ERROR and 503 (empty) is 503
        UPSTREAM_UNAVAILABLE, tried `retry_attempts` times when the operation is idempotent,
        once when it is not."""
        spec = self._spec(operation)

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                payload = await self._primed(kit, operation)
                for fault in _SERVER_ERROR_FAULTS:
                    with kit.transport.inject(fault) as met:
                        exc = await kit.error(operation, payload)
                    self._assert_met(met)
                    expected = _SERVER_ERRORS[fault]
                    got = (exc.status, exc.code)
                    assert isinstance(exc, UpstreamError) and got == expected, (
                        f"{fault}: expected {expected[0]} {expected[1]}, got "
                        f"{type(exc).__name__} ({exc.status} {exc.code})"
                    )
                    self._assert_attempts(spec, met, fault)

        self._run(check)

    # -- 7. malformed answer -----------------------------------------------------------------

    @_over("samples")
    def test_malformed_answer_is_a_bad_response(self, operation: str, tmp_path: Path) -> None:
        """The real answer cut in half is 502 UPSTREAM_BAD_RESPONSE, and not retried."""

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                payload = await self._primed(kit, operation)
                with kit.transport.inject("malformed") as met:
                    exc = await kit.error(operation, payload)
                self._assert_met(met)
                assert isinstance(exc, UpstreamBadResponse), (
                    f"expected UpstreamBadResponse (502 UPSTREAM_BAD_RESPONSE), got "
                    f"{type(exc).__name__} ({exc.status} {exc.code})"
                )
                assert met.count == 1, f"a malformed answer was retried: {met.count} requests"

        self._run(check)

    # -- 8. no personal data in errors -------------------------------------------------------

    @_over("samples")
    def test_errors_carry_no_personal_data(self, operation: str, tmp_path: Path) -> None:
        """The errors of the failures above (and of the unknown input) show the caller none
        of the input's values, upstream's text or the adapter's secrets."""

        async def check() -> None:
            async with self.running(tmp_path, retry_attempts=1) as kit:
                payload = await self._primed(kit, operation)
                forbidden = _forbidden(kit, payload)
                for fault in (*_TIMEOUT_FAULTS, *_SERVER_ERROR_FAULTS, "malformed"):
                    with kit.transport.inject(fault) as met:
                        async with kit.attempt_timeout(self.attempt_timeout_s):
                            exc = await kit.error(operation, payload)
                    upstream: set[str] = {CANARY, _ERROR_PAGE.decode().splitlines()[-1]}
                    for body in met.cut_answers:
                        upstream |= _answer_strings(body)
                    _assert_clean(fault, exc, forbidden | upstream)
                if operation in self.unknown:
                    missing = await kit.resolve(self.unknown[operation])
                    exc = await kit.error(operation, missing)
                    _assert_clean("unknown", exc, _forbidden(kit, missing))

        self._run(check)

    # -- 9. health with upstream down --------------------------------------------------------

    def test_health_is_not_ok_when_upstream_refuses(self, tmp_path: Path) -> None:
        """With every connection refused, the hub's probe (/ready) reports the adapter not
        ok without failing, and health() itself returns not-ok or raises only a transport
        or hub error (which the contract lets it propagate)."""

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                with kit.transport.inject("refuse"):
                    probed = (await kit.hub.health.adapters())[kit.service]
                    assert not probed.ok, f"the hub's probe is ok with upstream down: {probed}"
                    try:
                        health = await kit.adapter.health()
                    except (httpx.TransportError, HubError):
                        return
                    except Exception as exc:
                        raise AssertionError(
                            f"health() raised {type(exc).__name__}, neither a transport nor "
                            "a hub error"
                        ) from exc
                assert isinstance(health, Health), f"health() returned {health!r}"
                assert not health.ok, f"health() is ok with upstream down: {health}"

        self._run(check)

    @pytest.mark.parametrize("fault", ["unauthorized", "server_error"])
    def test_health_is_not_ok_on_an_error_status(self, fault: Fault, tmp_path: Path) -> None:
        """With every request answered 401 (our credentials refused) or 500, the hub's
        probe and health() say not ok: a probe that reports ok on any HTTP status would
        keep a broken upstream in /ready."""

        async def check() -> None:
            async with self.running(tmp_path) as kit:
                with kit.transport.inject(fault) as met:
                    probed = (await kit.hub.health.adapters())[kit.service]
                    assert not probed.ok, f"the hub's probe is ok with every answer {fault}"
                    try:
                        health = await kit.adapter.health()
                    except (httpx.TransportError, HubError):
                        return
                assert met.count, "health() made no upstream request"
                assert isinstance(health, Health), f"health() returned {health!r}"
                assert not health.ok, f"health() is ok with every answer {fault}: {health}"

        self._run(check)

    # -- shared steps ------------------------------------------------------------------------

    async def _primed(self, kit: ConformanceHub, operation: str) -> dict[str, Any]:
        """The operation's sample, called once without faults: a token or session the
        adapter caches is then in place, so the short per-attempt timeout of the `hang`
        fault is spent on the operation's own request, and faults meet that request."""
        payload = await kit.resolve(self.samples[operation])
        await kit.call(operation, payload)
        return payload

    @staticmethod
    def _assert_met(met: Injection) -> None:
        assert met.count, (
            f"no upstream request met the {met.fault} fault: the operation made none that "
            "`fault_paths` selects"
        )

    def _assert_attempts(self, spec: OperationSpec, met: Injection, what: str = "") -> None:
        expected = self.retry_attempts if spec.idempotent else 1
        kind = "idempotent" if spec.idempotent else "not idempotent"
        prefix = f"{what}: " if what else ""
        assert met.count == expected, (
            f"{prefix}{spec.name} is {kind}: expected {expected} upstream attempt(s), "
            f"saw {met.count}"
        )
