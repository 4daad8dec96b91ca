"""OAuth2 client credentials: `POST /oauth/token` trades an API key for a short-lived signed
access token, which then works wherever the key does, and stops when the key or the client
is revoked."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid

import jwt
import pytest

from hub.security.auth import create_client, revoke
from hub.security.oauth import signing_key
from tests.conftest import running_hub
from tests.test_pipeline import PID, EchoAdapter, assert_problem, call, echo, upstream  # noqa: F401

TOKEN_URL = "/oauth/token"
GRANT = {"grant_type": "client_credentials"}
REFUSED = "the access token is not valid"


def make_client(running, allow=("*",), rate_per_minute=None):
    """A client (name, id, API key)."""
    name = f"oauth-{uuid.uuid4().hex[:8]}"
    issued = create_client(
        running.hub.engine,
        running.settings.secret_key.get_secret_value().encode(),
        name=name,
        allow=allow,
        purposes=["test"],
        rate_per_minute=rate_per_minute,
    )
    return name, issued.client_id, issued.api_key


async def get_token(running, client_id, key, **form):
    response = await running.http.post(TOKEN_URL, data={**GRANT, **form}, auth=(client_id, key))
    assert response.status_code == 200, response.text
    return response.json()


def assert_oauth_error(response, status, error):
    body = assert_problem(response, status, error.upper())
    assert body["error"] == error and body["error_description"] == body["detail"]
    assert response.headers["cache-control"] == "no-store"
    return body


def secret_of(running) -> bytes:
    return running.settings.secret_key.get_secret_value().encode()


async def test_token_by_basic_then_a_call_is_audited_under_the_client(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(200, json={"value": 7})
    _, client_id, key = make_client(echo)
    response = await echo.http.post(TOKEN_URL, data=GRANT, auth=(client_id, key))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 300
    assert body["scope"] == "*"
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}

    answer = await call(echo, body["access_token"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"personal_id": PID, "value": 7}
    issued, row = echo.audit_rows()
    # the token's issuance is on the trail too, under the client, before the call it served
    assert (issued["service"], issued["operation"], issued["code"]) == ("oauth", "token", "OK")
    assert issued["client_id"] == client_id and issued["subject_id"] is None
    assert issued["request_id"] == response.headers["x-request-id"]
    assert row["client_id"] == client_id and row["code"] == "OK"
    # the catalogue takes a token too
    listed = await echo.http.get("/v1/services", headers=echo.headers(body["access_token"]))
    assert listed.status_code == 200


async def test_token_by_form_fields(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    _, client_id, key = make_client(echo)
    response = await echo.http.post(
        TOKEN_URL, data={**GRANT, "client_id": client_id, "client_secret": key}
    )
    assert response.status_code == 200, response.text
    assert (await call(echo, response.json()["access_token"])).status_code == 200


async def test_basic_credentials_are_form_urlencoded(echo):  # noqa: F811
    _, client_id, key = make_client(echo)
    # RFC 6749 §2.3.1: each part is form-urlencoded before Basic encoding ("_" as %5F)
    raw = f"{client_id.replace('_', '%5F')}:{key.replace('_', '%5F')}"
    basic = base64.b64encode(raw.encode()).decode()
    response = await echo.http.post(
        TOKEN_URL, data=GRANT, headers={"authorization": f"Basic {basic}"}
    )
    assert response.status_code == 200, response.text


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the raw secret
async def test_the_claims_with_pyjwt(echo):  # noqa: F811
    _, client_id, key = make_client(echo, allow=["echo"])
    body = await get_token(echo, client_id, key)
    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256" and header["typ"] == "at+jwt"
    claims = jwt.decode(
        token,
        signing_key(secret_of(echo)),
        algorithms=["HS256"],
        audience="lgsp-hub",
        issuer="lgsp-hub",
    )
    assert claims["sub"] == claims["client_id"] == client_id
    assert claims["scope"] == "echo"
    assert claims["exp"] - claims["iat"] == 300
    assert abs(claims["iat"] - time.time()) < 10
    assert isinstance(claims["key"], int) and len(claims["jti"]) >= 16
    assert key not in token and key[:10] not in token
    # signed with a derived key, never the server secret itself
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, secret_of(echo), algorithms=["HS256"], audience="lgsp-hub")


async def test_the_token_lives_the_configured_time(settings):
    settings.oauth_token_ttl_s = 60
    async with running_hub(settings, adapters=[]) as running:
        _, client_id, key = make_client(running)
        body = await get_token(running, client_id, key)
    assert body["expires_in"] == 60
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60


async def test_wrong_secret_or_another_clients_key_is_invalid_client(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    _, client_id, _key = make_client(echo)
    _, _other_id, other_key = make_client(echo)
    made_up = "hub_" + "x" * 43
    for secret in (made_up, other_key, "not-a-key"):
        response = await echo.http.post(TOKEN_URL, data=GRANT, auth=(client_id, secret))
        body = assert_oauth_error(response, 401, "invalid_client")
        assert response.headers["www-authenticate"].startswith("Basic")
        assert (
            secret not in response.text and body["detail"] == "the client credentials are not valid"
        )
        # by form fields: the same refusal, without a Basic challenge
        response = await echo.http.post(
            TOKEN_URL, data={**GRANT, "client_id": client_id, "client_secret": secret}
        )
        assert_oauth_error(response, 401, "invalid_client")
        assert "www-authenticate" not in response.headers
    # the other client's key was refused for this client, not spoiled for its own use
    assert (await call(echo, other_key)).status_code == 200
    assert (await get_token(echo, _other_id, other_key))["token_type"] == "Bearer"


async def test_a_refused_secret_is_not_looked_up_again(echo, monkeypatch):  # noqa: F811
    authenticator = echo.hub.gateway.authenticator
    authenticator._ttl = 60  # the tests' settings cache nothing
    _, client_id, _ = make_client(echo)
    lookups = []
    real = authenticator._lookup_key
    monkeypatch.setattr(
        authenticator, "_lookup_key", lambda where: lookups.append(1) or real(where)
    )
    for _ in range(5):
        response = await echo.http.post(TOKEN_URL, data=GRANT, auth=(client_id, "hub_" + "y" * 43))
        assert_oauth_error(response, 401, "invalid_client")
    assert len(lookups) == 1


async def test_missing_client_authentication_is_invalid_client(echo):  # noqa: F811
    response = await echo.http.post(TOKEN_URL, data=GRANT)
    assert_oauth_error(response, 401, "invalid_client")
    response = await echo.http.post(TOKEN_URL, data=GRANT, headers={"authorization": "Basic %%%"})
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_revoking_the_key_or_the_client_stops_its_tokens(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    name, client_id, key = make_client(echo)
    token = (await get_token(echo, client_id, key))["access_token"]
    assert (await call(echo, token)).status_code == 200
    revoke(echo.hub.engine, name, prefix=key[:10])
    refused = await call(echo, token)
    body = assert_problem(refused, 401, "UNAUTHENTICATED")
    assert body["detail"] == REFUSED
    assert refused.headers["www-authenticate"] == 'Bearer realm="lgsp-hub", error="invalid_token"'
    assert_oauth_error(
        await echo.http.post(TOKEN_URL, data=GRANT, auth=(client_id, key)), 401, "invalid_client"
    )

    name, client_id, key = make_client(echo)
    token = (await get_token(echo, client_id, key))["access_token"]
    assert (await call(echo, token)).status_code == 200
    revoke(echo.hub.engine, name)
    assert_problem(await call(echo, token), 401, "UNAUTHENTICATED")


def _forge(running, token, *, signed_with=None, algorithm="HS256", headers=None, **changes):
    """The issued token's claims with `changes` (None drops a claim), signed again."""
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    claims = {name: value for name, value in claims.items() if value is not None}
    key = signing_key(secret_of(running)) if signed_with is None else signed_with
    return jwt.encode(
        claims, key, algorithm=algorithm, headers={"typ": "at+jwt"} if headers is None else headers
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.filterwarnings(
    "ignore::jwt.warnings.InsecureKeyLengthWarning"
)  # HS512, the raw secret
async def test_bad_tokens_are_401_with_one_fixed_detail(echo, upstream):  # noqa: F811
    route = upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    _, client_id, key = make_client(echo)
    _, other_id, other_key = make_client(echo)
    token = (await get_token(echo, client_id, key))["access_token"]
    other_claims = jwt.decode(
        (await get_token(echo, other_id, other_key))["access_token"],
        options={"verify_signature": False},
    )
    now = int(time.time())
    # re-signed unchanged, the forgery helper makes a token that works
    assert (await call(echo, _forge(echo, token))).status_code == 200
    assert route.call_count == 1

    head, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    unsigned_none = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}), None, algorithm="none"
    )
    bad = {
        "tampered signature": f"{head}.{payload}.{flipped}",
        "tampered claims": f"{head}.{_b64(json.dumps({'sub': other_id}).encode())}.{signature}",
        "alg none": unsigned_none,
        "alg none, no signature": ".".join(unsigned_none.split(".")[:2]) + ".",
        "HS512 with the right key": _forge(echo, token, algorithm="HS512"),
        "signed with the server secret": _forge(echo, token, signed_with=secret_of(echo)),
        "expired": _forge(echo, token, iat=now - 1000, exp=now - 60),
        "issued in the future": _forge(echo, token, iat=now + 600, exp=now + 900),
        "wrong audience": _forge(echo, token, aud="someone-else"),
        "wrong issuer": _forge(echo, token, iss="someone-else"),
        "no exp": _forge(echo, token, exp=None),
        "no sub": _forge(echo, token, sub=None),
        "not an access token": _forge(echo, token, headers={"typ": "JWT"}),
        "another client's key": _forge(echo, token, key=other_claims["key"]),
        "another client as subject": _forge(echo, token, sub=other_id),
        "key not a number": _forge(echo, token, key=str(other_claims["key"])),
        "too long": token + "A" * 5000,
    }
    for case, forged in bad.items():
        response = await call(echo, forged)
        body = assert_problem(response, 401, "UNAUTHENTICATED")
        malformed = "send Authorization: Bearer <API key or access token>"
        assert body["detail"] == (malformed if case == "too long" else REFUSED), case
        assert forged not in response.text, case
    assert route.call_count == 1
    # the two tokens issued and the one call: refusals before authentication are not audited
    assert [(r["service"], r["code"]) for r in echo.audit_rows()] == [
        ("oauth", "OK"),
        ("oauth", "OK"),
        ("echo", "OK"),
    ]


async def test_an_expired_token_by_the_clock(echo, upstream, monkeypatch):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    _, client_id, key = make_client(echo)
    token = (await get_token(echo, client_id, key))["access_token"]
    assert (await call(echo, token)).status_code == 200
    later = time.time() + 300 + 6  # past expiry and the leeway
    monkeypatch.setattr(time, "time", lambda: later)
    assert_problem(await call(echo, token), 401, "UNAUTHENTICATED")


async def test_scope_narrows_the_token(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    upstream.post("/charges").respond(200, json={"value": 2})
    _, client_id, key = make_client(echo, allow=["echo"])
    body = await get_token(echo, client_id, key, scope="echo:get")
    assert body["scope"] == "echo:get"
    token = body["access_token"]
    assert (await call(echo, token)).status_code == 200
    assert_problem(
        await call(echo, token, {"amount": 1}, path="/v1/services/echo/charge"), 403, "FORBIDDEN"
    )
    # the key itself keeps every grant
    assert (
        await call(echo, key, {"amount": 1}, path="/v1/services/echo/charge")
    ).status_code == 200

    for scope in ("population", "*", "echo population:lookup", "echo\tget"):
        response = await echo.http.post(
            TOKEN_URL, data={**GRANT, "scope": scope}, auth=(client_id, key)
        )
        assert_oauth_error(response, 400, "invalid_scope")
    tokens = [r for r in echo.audit_rows() if r["service"] == "oauth"]
    assert [(r["client_id"], r["status"], r["code"]) for r in tokens] == [
        (client_id, 200, "OK"),
        # a known client asking for more than it holds is audited; a scope that does not
        # parse ("echo\tget") is refused before the client is checked, so is not
        *[(client_id, 400, "INVALID_SCOPE")] * 3,
    ]


async def test_a_star_client_cannot_scope_itself_into_the_admin_api(echo):  # noqa: F811
    _, client_id, key = make_client(echo, allow=["*"])
    for scope in ("admin", "admin:clients", "admin:audit", "audit:access-log"):
        response = await echo.http.post(
            TOKEN_URL, data={**GRANT, "scope": scope}, auth=(client_id, key)
        )
        assert_oauth_error(response, 400, "invalid_scope")
    token = (await get_token(echo, client_id, key))["access_token"]
    listed = await echo.http.get("/admin/clients", headers={"authorization": f"Bearer {token}"})
    assert_problem(listed, 403, "FORBIDDEN")
    # an admin's token carries its admin grant
    _, admin_id, admin_key = make_client(echo, allow=["admin:clients"])
    admin_token = (await get_token(echo, admin_id, admin_key))["access_token"]
    shown = await echo.http.get(
        "/admin/clients", headers={"authorization": f"Bearer {admin_token}"}
    )
    assert shown.status_code == 200


async def test_malformed_requests(echo):  # noqa: F811
    _, client_id, key = make_client(echo)
    response = await echo.http.post(
        TOKEN_URL, data={"grant_type": "password"}, auth=(client_id, key)
    )
    assert_oauth_error(response, 400, "unsupported_grant_type")
    response = await echo.http.post(TOKEN_URL, data={"scope": "*"}, auth=(client_id, key))
    assert_oauth_error(response, 400, "invalid_request")
    response = await echo.http.post(TOKEN_URL, json=GRANT, auth=(client_id, key))
    assert_oauth_error(response, 400, "invalid_request")
    response = await echo.http.post(
        TOKEN_URL,
        content=b"grant_type=client_credentials&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(client_id, key),
    )
    assert_oauth_error(response, 400, "invalid_request")
    # Basic and a form secret at once
    response = await echo.http.post(
        TOKEN_URL, data={**GRANT, "client_secret": key}, auth=(client_id, key)
    )
    body = assert_oauth_error(response, 400, "invalid_request")
    assert key not in response.text and body["detail"]


async def test_an_oversized_body_is_413(echo):  # noqa: F811
    _, client_id, key = make_client(echo)
    body = b"grant_type=client_credentials&pad=" + b"a" * echo.settings.max_body_bytes
    response = await echo.http.post(
        TOKEN_URL,
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
        auth=(client_id, key),
    )
    assert_problem(response, 413, "PAYLOAD_TOO_LARGE")


async def test_token_requests_count_against_the_rate_limit(echo, upstream):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    now = 1_800_000_000.0  # the start of a minute: no window ends mid-test
    echo.hub.gateway.limiter.clock = lambda: now
    _, client_id, key = make_client(echo, rate_per_minute=2)
    token = (await get_token(echo, client_id, key))["access_token"]
    assert (await call(echo, token)).status_code == 200
    assert_problem(await call(echo, token), 429, "RATE_LIMITED")
    response = await echo.http.post(TOKEN_URL, data=GRANT, auth=(client_id, key))
    assert_problem(response, 429, "RATE_LIMITED")
    tokens = [r["code"] for r in echo.audit_rows() if r["service"] == "oauth"]
    assert tokens == ["OK", "RATE_LIMITED"]


async def test_no_token_leaves_unless_its_issuance_is_audited(echo):  # noqa: F811
    _, client_id, key = make_client(echo)
    echo.hub.audit._sql = "INSERT INTO no_such_table VALUES (1)"
    response = await echo.http.post(TOKEN_URL, data=GRANT, auth=(client_id, key))
    body = assert_problem(response, 503, "AUDIT_UNAVAILABLE")
    assert "access_token" not in response.text and "access_token" not in body


async def test_an_unknown_client_is_refused_without_an_audit_record(echo):  # noqa: F811
    """As a call without a valid key: it is logged and counted (auth failures), not
    audited, so nobody can fill the audit trail without a credential."""
    _, client_id, _ = make_client(echo)
    response = await echo.http.post(TOKEN_URL, data=GRANT, auth=(client_id, "hub_made-up"))
    assert_oauth_error(response, 401, "invalid_client")
    assert echo.audit_rows() == []


async def test_no_secret_or_token_in_answers_or_logs(echo, upstream, caplog):  # noqa: F811
    upstream.get(f"/items/{PID}").respond(200, json={"value": 1})
    _, client_id, key = make_client(echo, allow=["echo"])
    _, _, other_key = make_client(echo)
    answers = []
    with caplog.at_level(logging.DEBUG):
        good = await echo.http.post(TOKEN_URL, data=GRANT, auth=(client_id, key))
        token = good.json()["access_token"]
        answers += [
            await echo.http.post(TOKEN_URL, data=GRANT, auth=(client_id, other_key)),
            await echo.http.post(TOKEN_URL, data={**GRANT, "scope": "*"}, auth=(client_id, key)),
            await echo.http.post(TOKEN_URL, data={"grant_type": "x"}, auth=(client_id, key)),
            await echo.http.post(
                TOKEN_URL, data={**GRANT, "client_secret": key}, auth=(client_id, key)
            ),
            await echo.http.post(
                TOKEN_URL, data={**GRANT, "client_id": client_id, "client_secret": key + "x"}
            ),
            await call(echo, token),
            await call(echo, token[:-2] + "xx"),
        ]
    assert good.status_code == 200 and answers[-2].status_code == 200
    for answer in answers:
        assert key not in answer.text and other_key not in answer.text
        assert token not in answer.text
    assert key not in caplog.text and other_key not in caplog.text and token not in caplog.text
    assert "token issued" in caplog.text and "INVALID_CLIENT" in caplog.text


async def test_the_route_is_in_the_openapi_document(echo):  # noqa: F811
    spec = (await echo.http.get("/openapi.json")).json()
    post = spec["paths"]["/oauth/token"]["post"]
    assert "application/x-www-form-urlencoded" in post["requestBody"]["content"]
    assert {"200", "400", "401"} <= set(post["responses"])
