"""Migrations, the embedded server and the Entra-token switch, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from inventory_service.repository import MIGRATIONS
from valerix_common.db import PREPARE_AFTER, connection_kwargs, make_pool
from valerix_common.embedded_pg import EmbeddedPostgres
from valerix_common.env import SettingError
from valerix_common.migrations import apply_migrations, migration_files


async def test_migrations_apply_once(pg_server: EmbeddedPostgres | None) -> None:
    if pg_server is None:
        pytest.skip("needs the embedded server to create a scratch database")
    url = pg_server.create_database("migrations_check", "migrations_svc")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        first = await apply_migrations(conn, MIGRATIONS)
        second = await apply_migrations(conn, MIGRATIONS)
        cur = await conn.execute("SELECT version FROM schema_migrations ORDER BY version")
        recorded = [row[0] for row in await cur.fetchall()]
    assert first == [v for v, _ in migration_files(MIGRATIONS)] and first
    assert second == []
    assert recorded == first


async def test_available_cannot_go_below_zero_even_by_hand(pg_server: EmbeddedPostgres | None) -> None:
    if pg_server is None:
        pytest.skip("needs the embedded server to create a scratch database")
    url = pg_server.create_database("constraint_check", "constraint_svc")
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await apply_migrations(conn, MIGRATIONS)
        await conn.execute("INSERT INTO products (product_id, name, available, received) VALUES ('X', 'x', 1, 1)")
        with pytest.raises(psycopg.errors.CheckViolation):
            await conn.execute("UPDATE products SET available = available - 2 WHERE product_id = 'X'")


def test_migration_names_are_checked(tmp_path: Path) -> None:
    (tmp_path / "1_bad.sql").write_text("SELECT 1")
    with pytest.raises(ValueError, match="NNN_description"):
        migration_files(tmp_path)


async def test_entra_mode_asks_for_a_fresh_token_per_connection(inventory_db_url: str) -> None:
    issued: list[str] = []

    def provider() -> str:
        issued.append(f"token-{len(issued)}")
        return issued[-1]

    pool = make_pool(inventory_db_url, name="entra-check", min_size=2, max_size=2, mode="entra",
                     token_provider=provider)
    await pool.open(wait=True, timeout=10)
    try:
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT 1 AS one")
            assert (await cur.fetchone()) == {"one": 1}
    finally:
        await pool.close()
    assert issued[:2] == ["token-0", "token-1"]  # one token for each of the two connections


def test_password_mode_sends_no_password() -> None:
    kwargs = connection_kwargs("password")()
    assert "password" not in kwargs
    assert connection_kwargs("entra", lambda: "abc")()["password"] == "abc"


def test_unknown_auth_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from valerix_common.db import auth_mode

    monkeypatch.setenv("POSTGRES_AUTH", "kerberos")
    with pytest.raises(SettingError):
        auth_mode()


def test_embedded_server_restarts_on_the_same_port(pg_datadir: Path) -> None:
    server = EmbeddedPostgres(pg_datadir).start()
    try:
        port, pid = server.port, server.pid
        server.restart()
        assert server.pid is not None and server.pid != pid
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT current_setting('port')::int").fetchone() == (port,)
    finally:
        server.destroy()


async def test_pool_replaces_connections_cut_by_a_server_restart(
    pg_datadir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from valerix_common import db

    monkeypatch.setattr(db, "IDLE_CHECK_AFTER_S", 0.1)
    server = EmbeddedPostgres(pg_datadir).start()
    pool = make_pool(server.url(), name="restart-check", min_size=2, max_size=2, mode="password")
    try:
        await pool.open(wait=True, timeout=10)
        async with pool.connection() as conn:
            before = (await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone())["pid"]  # type: ignore[index]
        server.restart()  # every pooled connection is now dead
        await asyncio.sleep(0.2)  # idle past the threshold: the checkout checks and replaces it
        async with pool.connection() as conn:
            after = (await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone())["pid"]  # type: ignore[index]
        assert after != before
    finally:
        await pool.close()
        server.destroy()


async def test_prepared_statements_are_on_by_default_and_reach_the_server(
    inventory_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTGRES_PREPARED_STATEMENTS", "false")  # the way out, for a pooler that cannot track them
    assert connection_kwargs("password")()["prepare_threshold"] is None
    monkeypatch.delenv("POSTGRES_PREPARED_STATEMENTS", raising=False)  # default: on (PgBouncer: postgres.bicep)
    kwargs = connection_kwargs("password")()
    assert kwargs["prepare_threshold"] == PREPARE_AFTER
    async with await psycopg.AsyncConnection.connect(inventory_db_url, **kwargs) as conn:
        for _ in range(PREPARE_AFTER + 1):
            await conn.execute("SELECT %s::text AS prepared_check", ("x",))
        cur = await conn.execute(
            "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE '%%prepared_check%%'"
        )
        row = await cur.fetchone()
    assert row is not None and row["n"] == 1  # prepared once on the server, then reused
    monkeypatch.setenv("POSTGRES_PREPARED_STATEMENTS", "sometimes")
    with pytest.raises(SettingError):
        connection_kwargs("password")
