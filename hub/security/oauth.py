"""OAuth2 client credentials (RFC 6749 §4.4): short-lived signed access tokens for clients
that would rather not send their API key on every call.

A client trades one of its live API keys (the `client_secret`) for an access token at
`POST /oauth/token`; the token then goes where the key would, `Authorization: Bearer …`.
Tokens are JWTs (RFC 9068 profile, `typ: at+jwt`) signed with HS256 under a key derived
from the server secret, so the hub alone can make and check them and the server secret
itself never signs anything a client holds. Each token names the API key row it was issued
against (`key`): revoking that key, or the client, stops its tokens at the next check.

This module knows nothing of the database: `hub.auth.Authenticator` looks clients up and
calls `AccessTokens` to sign and verify.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import jwt

from hub.errors import (
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    Unauthenticated,
    UnsupportedGrantType,
)

ISSUER = AUDIENCE = "lgsp-hub"
ALGORITHM = "HS256"
TOKEN_TYPE = "at+jwt"
#: Clock skew allowed when checking `exp` and `iat` (seconds).
LEEWAY_S = 5
#: Longest access token accepted in `Authorization` (a JWT with many scopes stays far below).
MAX_TOKEN_CHARS = 4096
#: Every JWT in compact form starts with a base64url JSON header: `{"` encodes as `eyJ`.
TOKEN_START = "eyJ"
#: A token request has a handful of fields; more is not a token request.
MAX_FORM_FIELDS = 16

_KEY_LABEL = b"hub oauth token key v1"
_REFUSED = "the access token is not valid"


def signing_key(secret: bytes) -> bytes:
    """The HS256 key: derived from the server secret, never the secret itself, so a token
    (whose signature anyone holding it can attack offline) says nothing about the key that
    also hashes API keys and pseudonymises logs."""
    return hmac.digest(secret, _KEY_LABEL, hashlib.sha256)


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A parsed token request. `secret` is a credential: never log or echo it."""

    client_id: str
    secret: str
    scope: tuple[str, ...] | None
    basic: bool

    def __repr__(self) -> str:  # keep the secret out of tracebacks and debug logs
        return f"TokenRequest(client_id={self.client_id!r}, scope={self.scope!r})"


def parse_token_request(
    content_type: str | None, body: bytes, authorization: str | None
) -> TokenRequest:
    """The client's credentials and scope from a token request, checked for form only
    (RFC 6749 §2.3.1, §3.3, §4.4.2); raises OAuthError subclasses."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise InvalidRequest("send the parameters as application/x-www-form-urlencoded")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the request body is not a valid form") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequest("a parameter is repeated")
        form[name] = value
    form = {name: value for name, value in form.items() if value}  # empty means omitted

    grant_type = form.get("grant_type")
    if grant_type is None:
        raise InvalidRequest("grant_type is required")
    if grant_type != "client_credentials":
        raise UnsupportedGrantType("only grant_type=client_credentials is supported")

    scope: tuple[str, ...] | None = None
    if "scope" in form:
        scope = tuple(dict.fromkeys(form["scope"].split(" ")))
        if not all(_scope_token(grant) for grant in scope):
            raise InvalidScope("scope is a space-separated list of grants")

    basic = authorization is not None
    if basic:
        if "client_secret" in form:
            raise InvalidRequest("authenticate by HTTP Basic or by form fields, not both")
        client_id, secret = _basic_credentials(authorization or "")
        if form.get("client_id", client_id) != client_id:
            raise InvalidRequest("client_id differs from the authenticated client")
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if not client_id or not secret:
            raise InvalidClient("client authentication is required")
    return TokenRequest(client_id, secret, scope, basic)


def _basic_credentials(authorization: str) -> tuple[str, str]:
    """`client_id:client_secret` of an HTTP Basic header, each form-urlencoded (§2.3.1)."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic" or len(encoded) > 1024:
        raise InvalidClient("use HTTP Basic client authentication", basic=True)
    if not encoded.isascii():  # b64decode raises a bare ValueError on non-ASCII text
        raise InvalidClient("the Basic credentials are malformed", basic=True)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient("the Basic credentials are malformed", basic=True) from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id or not secret:
        raise InvalidClient("the Basic credentials are malformed", basic=True)
    return unquote_plus(client_id), unquote_plus(secret)


def _scope_token(grant: str) -> bool:
    """RFC 6749 §3.3 scope-token characters (which `SERVICE:OPERATION` and `*` are)."""
    return bool(grant) and all(c == "!" or "#" <= c <= "[" or "]" <= c <= "~" for c in grant)


def covered(grant: str, allow: Iterable[str]) -> bool:
    """Whether `allow` grants everything `grant` names: `*` covers every national system
    (never the hub's own admin and audit services, as in `Principal.may_call`), `SERVICE`
    covers its operations, `SERVICE:OPERATION` only itself."""
    allow = set(allow)
    if grant in allow:
        return True
    service, colon, _ = grant.partition(":")
    if colon and service in allow:
        return True
    return "*" in allow and service not in ("admin", "audit")  # auth.HUB_SERVICES


@dataclass(frozen=True, slots=True)
class AccessToken:
    """What `POST /oauth/token` answers."""

    access_token: str
    expires_in: int
    scope: tuple[str, ...]

    def __repr__(self) -> str:
        return f"AccessToken(expires_in={self.expires_in}, scope={self.scope!r})"

    def body(self) -> dict[str, Any]:
        """The RFC 6749 §5.1 answer."""
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": " ".join(self.scope),
        }


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """A verified token's claims the hub acts on."""

    client_id: str
    key_id: int
    scope: tuple[str, ...]
    expires_at: float


class AccessTokens:
    """Signs and verifies access tokens."""

    def __init__(self, secret: bytes, ttl_s: float) -> None:
        self._key = signing_key(secret)
        self.ttl_s = ttl_s

    def issue(
        self, client_id: str, key_id: int, scope: Iterable[str], *, valid_for: float
    ) -> AccessToken:
        """A token for this client and key, living `ttl_s` or until the key expires."""
        now = int(time.time())
        lifetime = max(1, int(min(self.ttl_s, valid_for)))
        scope = tuple(scope)
        claims = {
            "iss": ISSUER,
            "sub": client_id,
            "aud": AUDIENCE,
            "client_id": client_id,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(16),
            "scope": " ".join(scope),
            "key": key_id,
        }
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"typ": TOKEN_TYPE})
        return AccessToken(token, lifetime, scope)

    def verify(self, token: str) -> TokenClaims:
        """The claims of a token this hub signed and that is still in date; Unauthenticated
        (with one fixed sentence, whatever was wrong) otherwise. Only HS256 is accepted, so
        neither `alg: none` nor a public-key algorithm can be slipped in."""
        try:
            decoded = jwt.decode_complete(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                leeway=LEEWAY_S,
                options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]},
            )
        except jwt.PyJWTError:
            raise Unauthenticated(_REFUSED, invalid_token=True) from None
        header, claims = decoded["header"], decoded["payload"]
        sub, key_id, scope = claims.get("sub"), claims.get("key"), claims.get("scope", "")
        if (
            header.get("typ") != TOKEN_TYPE
            # PyJWT checked `exp` by its own clock; the hub's (which tests can move) agrees
            or claims["exp"] + LEEWAY_S <= time.time()
            or not isinstance(sub, str)
            or type(key_id) is not int
            or not isinstance(scope, str)
        ):
            raise Unauthenticated(_REFUSED, invalid_token=True)
        return TokenClaims(sub, key_id, tuple(scope.split()), float(claims["exp"]))
