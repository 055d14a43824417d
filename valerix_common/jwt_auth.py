"""Bearer-token validation shared by the Order Service and the inventory: one implementation, one set of rules.

PyJWT checks the signature against the issuer's published keys (JWKS, fetched over HTTPS in Azure, cached,
refetched at most once per cooldown when an unknown `kid` appears, so forged `kid`s cannot hammer the issuer),
and the registered claims. Only asymmetric algorithms are accepted: with `HS256` allowed, anybody holding the
public key could sign.

A token that passed is remembered (bounded LRU keyed by a SHA-256 of the whole token) until the earlier of its
`exp` and the JWKS cache lifetime, so a client's every request does not pay for RS256 verification again: a changed
byte is another key and is verified afresh, a refused token is never remembered, and a key withdrawn from the JWKS
stops being honoured no later than the JWKS cache would stop honouring it anyway.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import threading
import time
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from valerix_common.env import SettingError, env_float, env_str

log = logging.getLogger(__name__)

ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
DEFAULT_ALGORITHMS = ("RS256", "ES256")
MAX_TOKEN_CHARS = 8192
# RFC 6750 b64token; a JWT is three base64url parts joined by dots
_BEARER = re.compile(r"Bearer ([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE)


class InvalidToken(Exception):
    """The credential is missing or not acceptable; `reason` is for logs, never for the caller."""

    def __init__(self, reason: str, *, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing


@dataclass(frozen=True)
class JwtSettings:
    issuer: str
    audiences: tuple[str, ...]
    jwks_url: str = ""  # empty: read `jwks_uri` from the issuer's OpenID configuration
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway_s: float = 60.0
    jwks_cache_s: float = 300.0
    jwks_refetch_cooldown_s: float = 30.0  # an unknown kid refetches the JWKS at most this often
    http_timeout_s: float = 5.0
    valid_token_cache_size: int = 4096  # tokens remembered as valid (0: verify every time)

    def __post_init__(self) -> None:
        if not self.issuer:
            raise SettingError("a token issuer is required: token validation cannot be switched off")
        if not self.audiences or not all(self.audiences):
            raise SettingError("a token audience is required: token validation cannot be switched off")
        for url in (self.issuer, self.jwks_url):
            if url and not _trusted_transport(url):
                raise SettingError(f"{url} must be https (plain http only on loopback)")
        bad = set(self.algorithms) - ASYMMETRIC_ALGORITHMS
        if bad or not self.algorithms:
            raise SettingError(f"only asymmetric JWT algorithms may be allowed, not {sorted(bad) or 'none'}")

    @classmethod
    def from_env(cls, prefix: str, *, issuer_fallback: str = "") -> JwtSettings:
        """Reads `<prefix>ISSUER`, `<prefix>AUDIENCE` (comma-separated), `<prefix>JWKS_URL`, `<prefix>ALGORITHMS`."""
        algorithms = tuple(a.strip() for a in env_str(f"{prefix}ALGORITHMS", ",".join(DEFAULT_ALGORITHMS)).split(","))
        return cls(
            issuer=env_str(f"{prefix}ISSUER") or (env_str(issuer_fallback) if issuer_fallback else ""),
            audiences=tuple(a.strip() for a in env_str(f"{prefix}AUDIENCE").split(",") if a.strip()),
            jwks_url=env_str(f"{prefix}JWKS_URL"),
            algorithms=tuple(a for a in algorithms if a),
            leeway_s=env_float(f"{prefix}LEEWAY_SECONDS", 60.0, minimum=0, maximum=300),
        )


def _trusted_transport(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in {"127.0.0.1", "::1", "localhost"})


def openid_configuration_url(issuer: str) -> str:
    """OpenID Connect Discovery: the issuer identifier plus `/.well-known/openid-configuration`."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def discover_jwks_url(issuer: str, timeout_s: float) -> str:
    with urllib.request.urlopen(openid_configuration_url(issuer), timeout=timeout_s) as response:
        document = json.load(response)
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        # Entra's multi-tenant `common` document carries a `{tenantid}` template: configure a tenant's issuer
        raise SettingError(f"OpenID configuration of {issuer} names another issuer: {document.get('issuer')!r}")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not _trusted_transport(jwks_uri):
        raise SettingError(f"OpenID configuration of {issuer} has no jwks_uri")
    return jwks_uri


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` value (header or gRPC metadata)."""
    if authorization is None or not authorization.strip():
        raise InvalidToken("no bearer token", missing=True)
    if len(authorization) > MAX_TOKEN_CHARS + 7:
        raise InvalidToken("authorization value too long")
    match = _BEARER.fullmatch(authorization.strip())
    if match is None:
        raise InvalidToken("authorization is not a Bearer token")
    return match.group(1)


class ValidTokenCache:
    """Claims of tokens that passed, until a per-entry deadline (epoch seconds); least recently used go first."""

    def __init__(self, size: int, clock: Callable[[], float] = time.time) -> None:
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[bytes, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, key: bytes) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self.clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return dict(entry[1])  # a copy: a caller's change never reaches the next caller

    def put(self, key: bytes, claims: Mapping[str, Any], ttl_s: float) -> None:
        exp = claims.get("exp")
        if self.size <= 0 or not isinstance(exp, int | float) or isinstance(exp, bool):
            return
        until = min(float(exp), self.clock() + ttl_s)
        with self._lock:
            self._entries[key] = (until, dict(claims))
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class JwtValidator:
    """Validates signed JWTs from one issuer. Thread-safe; JWKS fetches happen off the event loop."""

    def __init__(self, settings: JwtSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._client: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()
        self.valid_tokens = ValidTokenCache(settings.valid_token_cache_size, clock)

    def _jwks(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._client is None:
                s = self.settings
                url = s.jwks_url or discover_jwks_url(s.issuer, s.http_timeout_s)
                self._client = jwt.PyJWKClient(
                    url, cache_jwk_set=True, lifespan=s.jwks_cache_s, timeout=s.http_timeout_s,
                    cooldown_duration=s.jwks_refetch_cooldown_s,
                )
            return self._client

    def validate(self, token: str) -> dict[str, Any]:
        """Claims of a valid token; `InvalidToken` for anything else (blocking on a JWKS fetch at most)."""
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("token too long")
        key = ValidTokenCache.key(token)
        cached = self.valid_tokens.get(key)
        if cached is not None:
            return cached
        claims = self._verify(token)
        self.valid_tokens.put(key, claims, self.settings.jwks_cache_s)
        return claims

    def _verify(self, token: str) -> dict[str, Any]:
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from exc
        if header.get("alg") not in s.algorithms:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token header has no kid")
        try:
            key = self._jwks().get_signing_key(kid)
            claims: dict[str, Any] = jwt.decode(
                token, key=key, algorithms=list(s.algorithms), audience=list(s.audiences), issuer=s.issuer,
                leeway=s.leeway_s, options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_signature": True},
            )
        except jwt.PyJWKClientConnectionError as exc:
            log.error("cannot fetch signing keys of %s: %s", s.issuer, exc)
            raise InvalidToken(f"signing keys unavailable: {exc}") from exc
        except (jwt.PyJWTError, SettingError, OSError, ValueError) as exc:
            raise InvalidToken(f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidToken("sub must be a non-empty string")
        return claims

    async def validate_async(self, token: str) -> dict[str, Any]:
        """As `validate`; a remembered token is answered on the loop, only a verification goes to a thread."""
        if len(token) <= MAX_TOKEN_CHARS:
            cached = self.valid_tokens.get(ValidTokenCache.key(token))
            if cached is not None:
                return cached
        return await asyncio.to_thread(self.validate, token)


def claim_strings(claims: Mapping[str, Any], name: str) -> frozenset[str]:
    """A claim that may be a string or a list of strings (e.g. Entra `roles`), as a set; other shapes are empty."""
    value = claims.get(name)
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()
