"""Session fixtures: a real PostgreSQL (embedded unless *_DATABASE_URL point elsewhere) and real servers on loopback."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.inventory import InventoryHarness, inventory_process_env, running_inventory
from valerix_common.embedded_pg import EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres | None]:
    """The embedded server for this test session; None when external database URLs are configured."""
    if os.environ.get("INVENTORY_DATABASE_URL") and os.environ.get("ORDERS_DATABASE_URL"):
        yield None
        return
    datadir = ROOT / ".data" / f"test-pg-{os.getpid()}"
    server = EmbeddedPostgres(datadir).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(datadir, ignore_errors=True)


@pytest.fixture
def pg_datadir() -> Iterator[Path]:
    """A fresh directory for a test's own PostgreSQL server, under .data/ like the session's: the system user the
    server runs as (when the tests run as root) can reach it, whereas /tmp/pytest-of-<user> is kept at mode 0700
    by every pytest session on the machine."""
    datadir = ROOT / ".data" / f"test-pg-{uuid.uuid4().hex[:12]}"
    try:
        yield datadir
    finally:
        shutil.rmtree(datadir, ignore_errors=True)


def _fresh_database(pg: EmbeddedPostgres | None, env_name: str, prefix: str) -> str:
    if pg is None:
        return os.environ[env_name]
    return pg.create_database(f"{prefix}_{uuid.uuid4().hex[:8]}", f"{prefix}_svc")


@pytest.fixture(scope="session")
def inventory_db_url(pg_server: EmbeddedPostgres | None) -> str:
    return _fresh_database(pg_server, "INVENTORY_DATABASE_URL", "inventory")


@pytest.fixture(scope="session")
def orders_db_url(pg_server: EmbeddedPostgres | None) -> str:
    return _fresh_database(pg_server, "ORDERS_DATABASE_URL", "orders")


@pytest.fixture
def own_orders_db_url(pg_server: EmbeddedPostgres | None) -> str:
    """A test's own orders database (and local bus): for modules whose catalogue copy must mirror their own
    inventory only. They override `orders_db_url` with it."""
    if pg_server is None:
        pytest.skip("needs the embedded PostgreSQL server")
    return pg_server.create_database(f"orders_{uuid.uuid4().hex[:8]}", "orders_svc")


@pytest.fixture(scope="session")
async def inventory(inventory_db_url: str) -> AsyncIterator[InventoryHarness]:
    """A real inventory gRPC server on loopback, in this process, shared by the session."""
    async with running_inventory(inventory_db_url) as harness:
        yield harness


@pytest.fixture(name="inventory_process_env")
def inventory_process_env_fixture(inventory_db_url: str) -> dict[str, str]:
    return inventory_process_env(inventory_db_url)
