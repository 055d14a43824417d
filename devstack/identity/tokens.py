"""Access tokens shaped like Entra ID v2 ones: `sub`, `oid`, `tid`, `roles`, `azp` for applications."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from devstack.identity.keys import KeyStore

LOCAL_TENANT = "local"
# the Order Service's identity when it calls the inventory (its managed identity in Azure)
ORDER_SERVICE_CLIENT_ID = "valerix-order-service"
DEFAULT_TTL_S = 3600
MAX_TTL_S = 24 * 3600


@dataclass
class TokenMinter:
    keys: KeyStore
    issuer: str

    def mint(
        self, subject: str, audience: str, *, roles: tuple[str, ...] = (), ttl_s: int = DEFAULT_TTL_S,
        application: bool = False, extra: dict[str, Any] | None = None,
    ) -> str:
        if not 1 <= ttl_s <= MAX_TTL_S:
            raise ValueError(f"ttl must be 1..{MAX_TTL_S} seconds")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": audience, "sub": subject, "oid": subject, "tid": LOCAL_TENANT,
            "iat": now, "nbf": now, "exp": now + ttl_s, "jti": uuid.uuid4().hex, "ver": "2.0",
        }
        if roles:
            claims["roles"] = list(roles)
        if application:
            claims |= {"azp": subject, "idtyp": "app"}
        claims |= extra or {}
        key = self.keys.current()
        return jwt.encode(claims, key.private_key, algorithm="RS256", headers={"kid": key.kid, "typ": "JWT"})
