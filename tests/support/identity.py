"""One real local token issuer for the test session (its own keys under a temporary directory), and tokens from it.

The Order Service under test validates every request against this issuer's JWKS over HTTP, exactly as it would
against Entra ID: tests get no bypass, they get tokens.
"""

from __future__ import annotations

import atexit
import tempfile
from functools import cache
from pathlib import Path

from devstack.identity import KeyStore, LocalIssuer
from devstack.identity.settings import INVENTORY_AUDIENCE, ORDERS_AUDIENCE

DEFAULT_CUSTOMER = "c-1"


@cache
def issuer() -> LocalIssuer:
    directory = Path(tempfile.mkdtemp(prefix="valerix-test-identity-"))
    running = LocalIssuer(KeyStore(directory)).start()
    atexit.register(running.stop)
    return running


def token(customer: str = DEFAULT_CUSTOMER, *roles: str, ttl_s: int = 3600) -> str:
    return issuer().minter.mint(customer, ORDERS_AUDIENCE, roles=roles, ttl_s=ttl_s)


def bearer(customer: str = DEFAULT_CUSTOMER, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(customer, *roles)}"}


def order_service_auth_env() -> dict[str, str]:
    """The Order Service's settings for this issuer: its API tokens, and its own credential for the inventory."""
    running = issuer()
    return {
        "AUTH_ISSUER": running.url,
        "AUTH_AUDIENCE": ORDERS_AUDIENCE,
        "INVENTORY_AUTH_AUDIENCE": INVENTORY_AUDIENCE,
        "INVENTORY_AUTH_TOKEN_URL": running.url + "/oauth2/v2.0/token",
    }
