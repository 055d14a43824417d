"""`python -m devstack.chaos.naive`: serve the naive order front (NAIVE_PORT, ORDERS_DATABASE_URL, inventory)."""

from __future__ import annotations

import os

from aiohttp import web

from devstack.chaos.naive.app import naive_app
from devstack.identity.clients import inventory_metadata
from valerix_common.db import make_pool
from valerix_common.telemetry import configure_logging


def main() -> None:
    configure_logging("naive-front")
    raw_timeout = os.environ.get("NAIVE_INVENTORY_TIMEOUT_S", "2")
    timeout = float(raw_timeout) if raw_timeout not in ("", "none") else None
    pool = make_pool(os.environ["ORDERS_DATABASE_URL"], name="naive", min_size=2, max_size=20)
    app = naive_app(pool, os.environ["INVENTORY_GRPC_TARGET"], timeout, inventory_metadata())
    web.run_app(app, host="127.0.0.1", port=int(os.environ["NAIVE_PORT"]), access_log=None, print=None)


if __name__ == "__main__":
    main()
