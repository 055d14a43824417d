"""Credentials for the devstack's own tools (chaos harness, bench, smoke checks) against a local stack.

The tools call the API as customers and the inventory as the Order Service, like real clients would: with tokens
from the local issuer's keys (`.data/identity/`, or `DEVSTACK_IDENTITY_DIR`) for the issuer at
`DEVSTACK_ISSUER_URL` (set by `Stack.start()` in the process that started the stack). Tokens are cached per
subject and renewed well before they expire.
"""

from __future__ import annotations

import threading
import time
from functools import cache

from devstack.identity.keys import KeyStore
from devstack.identity.settings import INVENTORY_AUDIENCE, ORDERS_AUDIENCE, issuer_url
from devstack.identity.tokens import ORDER_SERVICE_CLIENT_ID, TokenMinter

TTL_S = 3600
RENEW_BEFORE_S = 600


class TokenCache:
    def __init__(self, minter: TokenMinter) -> None:
        self.minter = minter
        self._tokens: dict[tuple[str, str, tuple[str, ...], bool], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def token(self, subject: str, audience: str, roles: tuple[str, ...] = (), *, application: bool = False) -> str:
        key = (subject, audience, roles, application)
        with self._lock:
            cached = self._tokens.get(key)
            if cached is None or cached[1] - time.time() < RENEW_BEFORE_S:
                minted = self.minter.mint(subject, audience, roles=roles, ttl_s=TTL_S, application=application)
                cached = (minted, time.time() + TTL_S)
                self._tokens[key] = cached
            return cached[0]


@cache
def _cache_for(issuer: str) -> TokenCache:
    return TokenCache(TokenMinter(KeyStore(), issuer))


def api_headers(customer: str, *roles: str) -> dict[str, str]:
    """`Authorization` for calling the Order Service API as `customer` (with app roles, e.g. "ops")."""
    token = _cache_for(issuer_url()).token(customer, ORDERS_AUDIENCE, tuple(roles))
    return {"Authorization": f"Bearer {token}"}


def inventory_metadata() -> tuple[tuple[str, str], ...]:
    """gRPC metadata for calling the inventory as the Order Service's identity (the only caller it admits)."""
    token = _cache_for(issuer_url()).token(ORDER_SERVICE_CLIENT_ID, INVENTORY_AUDIENCE, application=True)
    return (("authorization", f"Bearer {token}"),)
