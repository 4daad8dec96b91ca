"""The mock's OAuth2 authorization server: client-credentials grant and bearer tokens.

RFC 6749 §4.4 (client credentials), §2.3.1 (client authentication by HTTP Basic or by
`client_id`/`client_secret` form fields) and §5 (token and error responses); RFC 6750 §3 for
the API's `WWW-Authenticate: Bearer` challenges.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Callable
from urllib.parse import parse_qs, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["TokenIssuer"]

MAX_FORM_BYTES = 10_000
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(error: str, status: int = 400, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(
        {"error": error}, status_code=status, headers={**_NO_STORE, **(headers or {})}
    )


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
    return (unquote_plus(client_id), unquote_plus(secret)) if sep else None


class TokenIssuer:
    """Issues opaque bearer tokens to one client and checks them until they expire."""

    def __init__(
        self, *, client_id: str, client_secret: str, ttl_s: int, clock: Callable[[], float]
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.ttl_s, self.clock = ttl_s, clock
        self._expiry: dict[str, float] = {}

    def _client_ok(self, client_id: str, secret: str) -> bool:
        # Compare both in full: no early exit to time.
        id_ok = hmac.compare_digest(client_id.encode(), self.client_id.encode())
        secret_ok = hmac.compare_digest(secret.encode(), self.client_secret.encode())
        return id_ok and secret_ok

    async def token_endpoint(self, request: Request) -> Response:
        """`POST /oauth2/token` (application/x-www-form-urlencoded)."""
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _oauth_error("invalid_request")
        try:
            form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            return _oauth_error("invalid_request")
        header = request.headers.get("authorization")
        if header is not None:
            credentials = _basic_credentials(header)
            challenge = {"WWW-Authenticate": 'Basic realm="hotich"'}
        else:
            credentials = (form.get("client_id", ""), form.get("client_secret", ""))
            challenge = {}
        if credentials is None or not self._client_ok(*credentials):
            return _oauth_error("invalid_client", 401, challenge)
        grant = form.get("grant_type")
        if not grant:
            return _oauth_error("invalid_request")
        if grant != "client_credentials":
            return _oauth_error("unsupported_grant_type")
        return JSONResponse(self.issue(), headers=_NO_STORE)

    def issue(self) -> dict[str, object]:
        """A new token as the RFC 6749 §5.1 reply body."""
        now = self.clock()
        if len(self._expiry) > 10_000:  # forget expired tokens now and then
            self._expiry = {t: e for t, e in self._expiry.items() if e > now}
        token = secrets.token_urlsafe(32)
        self._expiry[token] = now + self.ttl_s
        return {"access_token": token, "token_type": "Bearer", "expires_in": self.ttl_s}

    def bearer_error(self, request: Request) -> str | None:
        """None when the request carries a live token, else the RFC 6750 challenge."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return 'Bearer realm="hotich"'
        expiry = self._expiry.get(token.strip())
        if expiry is None or self.clock() >= expiry:
            return 'Bearer realm="hotich", error="invalid_token"'
        return None
