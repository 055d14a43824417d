"""The validator against the real local issuer: keys come over HTTP from its JWKS; every forgery is refused."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.identity import LocalIssuer
from devstack.identity.issuer import CONFIG_PATH, JWKS_PATH
from devstack.identity.settings import ORDERS_AUDIENCE
from order_functions.application.identity import AuthenticationFailed, Forbidden, Principal, require_role
from order_functions.infrastructure.jwt_validator import JwtAuthenticator
from tests import REPO_ROOT
from valerix_common.env import SettingError
from valerix_common.jwt_auth import InvalidToken, JwtSettings, JwtValidator

ROOT = REPO_ROOT


def settings(issuer: LocalIssuer, **overrides: Any) -> JwtSettings:
    return JwtSettings(**{"issuer": issuer.url, "audiences": (ORDERS_AUDIENCE,), **overrides})


def authenticator(issuer: LocalIssuer) -> JwtAuthenticator:
    return JwtAuthenticator(JwtValidator(settings(issuer)))


def claims(issuer: LocalIssuer, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": issuer.url, "aud": ORDERS_AUDIENCE, "sub": "alice", "iat": now, "nbf": now, "exp": now + 600}
    return {k: v for k, v in {**base, **overrides}.items() if v is not None}


def signed(issuer: LocalIssuer, body: dict[str, Any], key: rsa.RSAPrivateKey | None = None, kid: str = "") -> str:
    current = issuer.keys.current()
    return jwt.encode(body, key or current.private_key, algorithm="RS256", headers={"kid": kid or current.kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_a_valid_token_becomes_the_principal_and_keys_came_over_http(issuer: LocalIssuer) -> None:
    auth = authenticator(issuer)
    before = issuer.requests[JWKS_PATH]
    principal = await auth.authenticate("Bearer " + issuer.minter.mint("alice", ORDERS_AUDIENCE, roles=("ops",)))
    assert principal == Principal("alice", frozenset({"ops"}), issuer.url, "local")
    assert principal.is_ops
    assert issuer.requests[CONFIG_PATH] >= 1 and issuer.requests[JWKS_PATH] == before + 1
    for name in ("bob", "carol", "dave"):  # cached: no fetch per token
        assert (await auth.authenticate("bearer " + issuer.minter.mint(name, ORDERS_AUDIENCE))).subject == name
    assert issuer.requests[JWKS_PATH] == before + 1


async def test_a_customer_without_a_role_is_not_ops(issuer: LocalIssuer) -> None:
    principal = await authenticator(issuer).authenticate("Bearer " + issuer.minter.mint("bob", ORDERS_AUDIENCE))
    assert not principal.is_ops and principal.roles == frozenset()
    with pytest.raises(Forbidden) as caught:
        require_role(principal, "ops")
    assert caught.value.www_authenticate == 'Bearer realm="valerix", error="insufficient_scope", scope="ops"'


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def forgeries(issuer: LocalIssuer, other_key: rsa.RSAPrivateKey) -> dict[str, str]:
    other = other_key
    now = int(time.time())
    header_none = b64(json.dumps({"alg": "none", "kid": issuer.keys.current().kid}).encode())
    header_hs = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.keys.current().kid}).encode())
    payload = b64(json.dumps(claims(issuer)).encode())
    public_pem = issuer.keys.current().private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hs_signature = b64(hmac.new(public_pem, f"{header_hs}.{payload}".encode(), hashlib.sha256).digest())
    return {
        "other key, same kid": signed(issuer, claims(issuer), key=other),
        "other key, unknown kid": signed(issuer, claims(issuer), key=other, kid="not-a-published-key"),
        "expired": signed(issuer, claims(issuer, iat=now - 900, nbf=now - 900, exp=now - 120)),
        "not yet valid": signed(issuer, claims(issuer, nbf=now + 600)),
        "wrong issuer": signed(issuer, claims(issuer, iss="https://login.microsoftonline.com/other/v2.0")),
        "wrong audience": signed(issuer, claims(issuer, aud="api://valerix-inventory")),
        "no subject": signed(issuer, claims(issuer, sub=None)),
        "empty subject": signed(issuer, claims(issuer, sub="")),
        "no expiry": signed(issuer, claims(issuer, exp=None)),
        "alg none": f"{header_none}.{payload}.",
        "HS256 keyed with the public key": f"{header_hs}.{payload}.{hs_signature}",
        "tampered payload": signed(issuer, claims(issuer)).split(".")[0] + "." + b64(
            json.dumps(claims(issuer, sub="mallory")).encode()
        ) + "." + signed(issuer, claims(issuer)).split(".")[2],
        "not a jwt": "abc.def",
        "subject unfit as a customer id": signed(issuer, claims(issuer, sub="alice\n")),
    }


REFUSED_BECAUSE = {
    "other key, same kid": "InvalidSignatureError",
    "other key, unknown kid": "Unable to find a signing key",
    "expired": "ExpiredSignatureError",
    "not yet valid": "ImmatureSignatureError",
    "wrong issuer": "InvalidIssuerError",
    "wrong audience": "InvalidAudienceError",
    "no subject": 'missing the "sub" claim',
    "empty subject": "sub must be a non-empty string",
    "no expiry": 'missing the "exp" claim',
    "alg none": "'none' is not allowed",
    "HS256 keyed with the public key": "'HS256' is not allowed",
    "tampered payload": "InvalidSignatureError",
    "not a jwt": "malformed token",
    "subject unfit as a customer id": "not a usable customer id",
}


@pytest.mark.parametrize("case", sorted(REFUSED_BECAUSE))
async def test_forged_or_stale_tokens_are_refused(issuer: LocalIssuer, forgeries: dict[str, str], case: str) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        await authenticator(issuer).authenticate(f"Bearer {forgeries[case]}")
    assert REFUSED_BECAUSE[case] in caught.value.reason
    assert not caught.value.missing
    assert caught.value.www_authenticate == (
        'Bearer realm="valerix", error="invalid_token", error_description="the access token is not valid"'
    )


@pytest.mark.parametrize("header", [None, "", "   "])
async def test_no_credential_is_a_challenge_without_error_code(issuer: LocalIssuer, header: str | None) -> None:
    with pytest.raises(AuthenticationFailed) as caught:
        await authenticator(issuer).authenticate(header)
    assert caught.value.missing and caught.value.www_authenticate == 'Bearer realm="valerix"'


@pytest.mark.parametrize("shape", ["Basic {t}", "Bearer {t} extra", "Bearer{t}", "Token {t}", "Bearer {t}\x00"])
async def test_a_token_not_sent_as_bearer_is_refused(issuer: LocalIssuer, shape: str) -> None:
    token = issuer.minter.mint("alice", ORDERS_AUDIENCE)
    with pytest.raises(AuthenticationFailed) as caught:
        await authenticator(issuer).authenticate(shape.format(t=token))
    assert not caught.value.missing


async def test_a_rotated_key_is_picked_up_and_old_tokens_still_verify(issuer: LocalIssuer) -> None:
    validator = JwtValidator(settings(issuer, jwks_refetch_cooldown_s=0))
    old = issuer.minter.mint("alice", ORDERS_AUDIENCE)
    assert validator.validate(old)["sub"] == "alice"
    issuer.keys.rotate()
    new = issuer.minter.mint("alice", ORDERS_AUDIENCE)
    assert jwt.get_unverified_header(new)["kid"] != jwt.get_unverified_header(old)["kid"]
    assert validator.validate(new)["sub"] == "alice"
    assert validator.validate(old)["sub"] == "alice"


async def test_unknown_kids_do_not_make_the_validator_hammer_the_issuer(
    issuer: LocalIssuer, other_key: rsa.RSAPrivateKey
) -> None:
    validator = JwtValidator(settings(issuer))
    validator.validate(issuer.minter.mint("alice", ORDERS_AUDIENCE))
    fetched = issuer.requests[JWKS_PATH]
    other = other_key
    for n in range(20):
        with pytest.raises(InvalidToken):
            validator.validate(signed(issuer, claims(issuer), key=other, kid=f"random-{n}"))
    assert issuer.requests[JWKS_PATH] == fetched  # inside the cooldown: refused from the cache


@pytest.mark.parametrize("overrides, message", [
    ({"issuer": ""}, "issuer is required"),
    ({"audiences": ()}, "audience is required"),
    ({"algorithms": ("RS256", "HS256")}, "asymmetric"),
    ({"algorithms": ()}, "asymmetric"),
    ({"issuer": "http://login.example.com/tenant/v2.0"}, "must be https"),
])
def test_settings_cannot_switch_validation_off(overrides: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"issuer": "https://login.microsoftonline.com/t/v2.0", "audiences": ("api://x",)}
    with pytest.raises(SettingError, match=message):
        JwtSettings(**{**base, **overrides})


def test_entra_v2_settings_are_accepted_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = "8f1e6a8e-0000-4000-8000-000000000001"
    monkeypatch.setenv("AUTH_ISSUER", f"https://login.microsoftonline.com/{tenant}/v2.0")
    monkeypatch.setenv("AUTH_AUDIENCE", "api://valerix-orders, 11111111-2222-3333-4444-555555555555")
    parsed = JwtSettings.from_env("AUTH_")
    assert parsed.issuer.endswith(f"{tenant}/v2.0") and parsed.algorithms == ("RS256", "ES256")
    assert parsed.audiences == ("api://valerix-orders", "11111111-2222-3333-4444-555555555555")
    monkeypatch.delenv("AUTH_ISSUER")
    with pytest.raises(SettingError):
        JwtSettings.from_env("AUTH_")


def test_the_token_command_prints_a_valid_token_on_its_last_line(issuer: LocalIssuer) -> None:
    env = {**os.environ, "DEVSTACK_IDENTITY_DIR": str(issuer.keys.directory), "DEVSTACK_ISSUER_URL": issuer.url}
    done = subprocess.run(
        [sys.executable, "-m", "devstack", "token", "alice", "--role", "ops", "--ttl", "120"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    principal = asyncio.run(authenticator(issuer).authenticate("Bearer " + done.stdout.strip().splitlines()[-1]))
    assert principal.subject == "alice" and principal.is_ops
    refused = subprocess.run(
        [sys.executable, "-m", "devstack", "token", "alice\n"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=60,
    )
    assert refused.returncode == 2 and "CUSTOMER" in refused.stdout


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def counting_decode(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the signature verifications (the real `jwt.decode` still runs)."""
    calls: list[str] = []
    real = jwt.decode

    def decode(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", decode)
    return calls


async def test_a_valid_token_is_verified_once_then_remembered(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    validator = JwtValidator(settings(issuer))
    verified = counting_decode(monkeypatch)
    token = issuer.minter.mint("alice", ORDERS_AUDIENCE, roles=("ops",))
    first = await validator.validate_async(token)
    first["roles"] = "mallory-was-here"  # a caller's change must not reach the next caller
    again = [await validator.validate_async(token) for _ in range(3)] + [validator.validate(token)]
    assert verified == [token]
    assert all(claims["sub"] == "alice" and claims["roles"] == ["ops"] for claims in again)


async def test_a_remembered_token_with_one_byte_changed_is_verified_and_refused(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    validator = JwtValidator(settings(issuer))
    token = issuer.minter.mint("alice", ORDERS_AUDIENCE)
    await validator.validate_async(token)
    head, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    verified = counting_decode(monkeypatch)
    with pytest.raises(InvalidToken, match="Signature"):
        await validator.validate_async(f"{head}.{payload}.{flipped}")
    with pytest.raises(InvalidToken):  # refused tokens are never remembered: verified again
        await validator.validate_async(f"{head}.{payload}.{flipped}")
    assert len(verified) == 2 and len(validator.valid_tokens) == 1


async def test_a_remembered_token_is_verified_again_after_its_expiry_and_after_the_jwks_lifetime(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    validator = JwtValidator(settings(issuer, jwks_cache_s=300.0), clock=clock)
    verified = counting_decode(monkeypatch)
    now = int(time.time())
    short = signed(issuer, claims(issuer, exp=now + 120))
    long = signed(issuer, claims(issuer, exp=now + 3600))
    for token in (short, long):
        await validator.validate_async(token)
    clock.now = now + 119
    for token in (short, long):
        await validator.validate_async(token)
    assert verified == [short, long]  # both still remembered
    clock.now = now + 121  # past `short`'s exp: verified again (the real clock still accepts it)
    await validator.validate_async(short)
    await validator.validate_async(long)
    assert verified == [short, long, short]
    clock.now = now + 301  # past the JWKS cache lifetime: `long` too is verified again
    await validator.validate_async(long)
    assert verified == [short, long, short, long]


def test_the_valid_token_cache_is_bounded(issuer: LocalIssuer) -> None:
    validator = JwtValidator(settings(issuer, valid_token_cache_size=3))
    tokens = [issuer.minter.mint(f"user{n}", ORDERS_AUDIENCE) for n in range(5)]
    for token in tokens:
        validator.validate(token)
    assert len(validator.valid_tokens) == 3
    off = JwtValidator(settings(issuer, valid_token_cache_size=0))
    off.validate(tokens[0])
    assert len(off.valid_tokens) == 0
