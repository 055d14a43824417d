"""Behind a real PgBouncer in transaction pooling mode (Azure's port 6432): migrations started concurrently by several
processes each apply exactly once, and a checkout works with both services connected through it.

`pytest -k pgbouncer` selects these. `make test` installs Debian's pgbouncer first (`python -m devstack.pgbouncer
ensure`); the fixture tries the same itself, and skips loudly only when that install fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devstack import pgbouncer as pgb
from inventory_service.repository import MIGRATIONS as INVENTORY_MIGRATIONS
from order_functions.addons.notifications.store import MIGRATIONS as NOTIFICATIONS_MIGRATIONS
from order_functions.infrastructure.orders_repository import MIGRATIONS as ORDERS_MIGRATIONS
from tests import REPO_ROOT
from tests.support.inventory import running_inventory
from tests.support.orders import order_app
from valerix_common.embedded_pg import EmbeddedPostgres

ROOT = REPO_ROOT
PROCESSES = 5

pytestmark = pytest.mark.slow

# One process: connect like the services do (autocommit; prepared statements off, see below), say "ready", wait for
# "go" on stdin (so all of them race from the same instant), apply, print the versions it applied.
_MIGRATE = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from psycopg import AsyncConnection
    from valerix_common.db import connection_kwargs
    from valerix_common.migrations import apply_migrations

    async def main(url, folder):
        conn = await AsyncConnection.connect(url, **connection_kwargs("password")())
        print("ready", flush=True)
        sys.stdin.readline()
        try:
            applied = await apply_migrations(conn, Path(folder))
        finally:
            await conn.close()
        print(",".join(map(str, applied)), flush=True)

    asyncio.run(main(*sys.argv[1:]))
""")


# The notifications add-on's own start-up step (ensure_schema on a pool, as the Order Service runs it).
_ENSURE_NOTIFICATIONS = textwrap.dedent("""
    import asyncio, sys
    from order_functions.addons.notifications.store import ensure_schema
    from valerix_common.db import make_pool

    async def main(url):
        pool = make_pool(url, name="notifications-schema", min_size=1, max_size=2, mode="password")
        await pool.open(wait=True)
        print("ready", flush=True)
        sys.stdin.readline()
        try:
            applied = await ensure_schema(pool)
        finally:
            await pool.close()
        print(",".join(map(str, applied)), flush=True)

    asyncio.run(main(*sys.argv[1:]))
""")


@pytest.fixture(autouse=True)
def _unprepared_statements(monkeypatch: pytest.MonkeyPatch) -> None:
    """The PgBouncer here (Debian's, 1.18) cannot track protocol-level prepared statements (1.21+:
    `max_prepared_statements`, which Azure's gets from postgres.bicep), so the services run as they must behind
    such a pooler: with the documented opt-out (valerix_common/db.py)."""
    monkeypatch.setenv("POSTGRES_PREPARED_STATEMENTS", "false")


@pytest.fixture(scope="module")
def pgbouncer(pg_server: EmbeddedPostgres | None) -> Iterator[pgb.PgBouncer]:
    if pg_server is None:
        pytest.skip("external *_DATABASE_URL configured: this test puts PgBouncer in front of the embedded server")
    if pgb.pgbouncer_path() is None and pgb.ensure() != 0:
        pytest.skip("PGBOUNCER NOT INSTALLED and `apt-get install pgbouncer` failed: PgBouncer tests did not run")
    workdir = ROOT / ".data" / f"pgbouncer-{os.getpid()}"  # beside the embedded server's data: its user can reach it
    users = ("postgres", "inventory_svc", "orders_svc", "localbus_svc", "pgb_probe")
    # one server connection per database/user pair: every client's transactions share it, so a session-level lock
    # taken by one client is "held" by all of them; the harshest case for migrations, and a checkout still works
    bouncer = pgb.PgBouncer(workdir, pg_server.port, users, pool_size=1).start()
    try:
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _database(pg: EmbeddedPostgres, prefix: str, owner: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    pg.create_database(name, owner)
    return name


def _migrate_concurrently(url: str, folder: Path) -> list[list[int]]:
    return _run_concurrently(_MIGRATE, url, str(folder))


def _run_concurrently(script: str, *args: str) -> list[list[int]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", script, *args], env=env, cwd=ROOT,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(PROCESSES)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # bounded: a process that dies closes its stdout
            assert line.strip() == b"ready", (line, proc.poll())
        for proc in procs:  # all connected: release them together
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
        applied: list[list[int]] = []
        for proc in procs:
            out, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
            applied.append([int(v) for v in out.decode().strip().split(",") if v])
        return applied
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def test_pgbouncer_is_in_transaction_mode_clients_share_backends(pgbouncer: pgb.PgBouncer, pg_server: EmbeddedPostgres
                                                             ) -> None:
    """The premise: through this PgBouncer, open clients share server connections transaction by transaction."""
    database = _database(pg_server, "pgb_probe", "pgb_probe")
    url = pgbouncer.url(database, "pgb_probe")
    clients = [psycopg.connect(url, autocommit=True, prepare_threshold=None) for _ in range(4)]
    try:
        seen: set[tuple[int, int]] = set()
        for _ in range(10):
            for number, conn in enumerate(clients):
                row = conn.execute("SELECT pg_backend_pid()").fetchone()
                assert row is not None
                seen.add((number, int(row[0])))
        clients_per_backend = {pid: {c for c, p in seen if p == pid} for _, pid in seen}
        # session pooling would give each open client its own backend (and block the third on a pool of 2)
        assert len(clients_per_backend) <= pgbouncer.pool_size < len(clients)
        assert any(len(users) > 1 for users in clients_per_backend.values()), clients_per_backend
    finally:
        for conn in clients:
            conn.close()


def test_pgbouncer_concurrent_migrations_apply_each_version_once(
    pgbouncer: pgb.PgBouncer, pg_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    """Migrations that are not idempotent (plain CREATE TABLE, an INSERT): a second run of any of them would fail or
    leave a second row; slow ones widen the window in which the others would overtake a lock that is not held."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_first.sql").write_text(
        "SELECT pg_sleep(0.3); CREATE TABLE runs (version int); INSERT INTO runs VALUES (1);")
    (folder / "002_slow.sql").write_text(
        "SELECT pg_sleep(0.3); CREATE TABLE second (id int); INSERT INTO runs VALUES (2);")
    (folder / "003_third.sql").write_text("ALTER TABLE second ADD COLUMN note text; INSERT INTO runs VALUES (3);")
    database = _database(pg_server, "pgb_probe", "pgb_probe")
    applied = _migrate_concurrently(pgbouncer.url(database, "pgb_probe"), folder)
    assert sorted(v for run in applied for v in run) == [1, 2, 3], applied
    with psycopg.connect(pg_server.url(database)) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM runs ORDER BY version")] == [1, 2, 3]
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert rows == [(1, "001_first.sql"), (2, "002_slow.sql"), (3, "003_third.sql")]
    assert "pool_mode" not in pgbouncer.log_tail()  # sanity: the log is PgBouncer's own, not a config error


async def test_pgbouncer_checkout_after_concurrent_service_migrations(
    pgbouncer: pgb.PgBouncer, pg_server: EmbeddedPostgres
) -> None:
    inventory_db = _database(pg_server, "inventory_pgb", "inventory_svc")
    orders_db = _database(pg_server, "orders_pgb", "orders_svc")
    inventory_url = pgbouncer.url(inventory_db, "inventory_svc")
    orders_url = pgbouncer.url(orders_db, "orders_svc")
    inventory_runs = _migrate_concurrently(inventory_url, INVENTORY_MIGRATIONS)
    orders_runs = _migrate_concurrently(orders_url, ORDERS_MIGRATIONS)
    for runs, folder in ((inventory_runs, INVENTORY_MIGRATIONS), (orders_runs, ORDERS_MIGRATIONS)):
        versions = sorted(v for run in runs for v in run)
        assert versions == sorted(int(p.name[:3]) for p in folder.glob("*.sql")), (folder, runs)

    # Both services through PgBouncer. The local Service Bus stand-in keeps a direct connection: it is the dev-only
    # substitute for Azure Service Bus, never deployed behind PgBouncer, and its receivers LISTEN (a session).
    local_bus_url = pg_server.url(orders_db, "orders_svc")
    async with running_inventory(inventory_url) as inventory:
        product = await inventory.new_product(stock=3, prefix="PGB")
        async with order_app(inventory, orders_url, LOCAL_BUS_DATABASE_URL=local_bus_url) as orders:
            status, body, _ = await orders.checkout([(product, 2)], customer="pgb-customer")
            assert (status, body["status"]) == (201, "confirmed"), body
            again, replay, _ = await orders.checkout([(product, 2)], customer="pgb-customer")
            assert (again, replay["status"]) == (409, "rejected"), replay  # 1 left: the stock really moved
        assert inventory.available(product) == 1


def test_pgbouncer_a_schema_of_its_own_migrates_into_that_schema_from_any_backend(
    pg_server: EmbeddedPostgres, pgbouncer: pgb.PgBouncer
) -> None:
    """The notifications add-on keeps its tables in schema `notifications` of the orders database, which Azure
    reaches through PgBouncer. With several server connections, consecutive transactions of one client land on
    different backends: the schema and search_path must hold within each migration transaction, not the session."""
    workdir = ROOT / ".data" / f"pgbouncer-wide-{os.getpid()}"
    wide = pgb.PgBouncer(workdir, pg_server.port, ("orders_svc",), pool_size=3).start()
    try:
        database = _database(pg_server, "orders_pgb_schema", "orders_svc")
        runs = _run_concurrently(_ENSURE_NOTIFICATIONS, wide.url(database, "orders_svc"))
    finally:
        wide.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    versions = sorted(int(p.name[:3]) for p in NOTIFICATIONS_MIGRATIONS.glob("*.sql"))
    assert sorted(v for run in runs for v in run) == versions, runs
    with psycopg.connect(pg_server.url(database)) as conn:
        tables = conn.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN ('public', 'notifications')"
            " ORDER BY 1, 2").fetchall()
        recorded = [r[0] for r in conn.execute("SELECT version FROM notifications.schema_migrations ORDER BY 1")]
    assert tables == [("notifications", "notifications"), ("notifications", "processed_events"),
                      ("notifications", "schema_migrations")]
    assert recorded == versions
