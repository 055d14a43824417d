"""Where the local issuer lives and which audiences it mints for (the same names the services are given)."""

from __future__ import annotations

import os

DEFAULT_ISSUER_PORT = 7072
ORDERS_AUDIENCE = "api://valerix-orders"
INVENTORY_AUDIENCE = "api://valerix-inventory"


def issuer_port() -> int:
    return int(os.environ.get("DEVSTACK_ISSUER_PORT") or DEFAULT_ISSUER_PORT)


def issuer_url() -> str:
    """The local issuer's identifier: `DEVSTACK_ISSUER_URL`, else loopback on `DEVSTACK_ISSUER_PORT` (7072)."""
    return os.environ.get("DEVSTACK_ISSUER_URL") or f"http://127.0.0.1:{issuer_port()}"
