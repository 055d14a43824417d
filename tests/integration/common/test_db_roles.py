"""valerix_common.db_roles (the in-VNet database-roles job) against a real PostgreSQL.

`pgaadauth_create_principal` exists only on Azure Database for PostgreSQL (the pgaadauth extension); here a SQL
function of the same signature stands in for it and creates a plain LOGIN role, so what is tested is our part:
which principals are created, idempotency, and that each identity reaches its own database and not the other's.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest

from valerix_common.db_roles import ensure_roles, parse_grants
from valerix_common.embedded_pg import EmbeddedPostgres
from valerix_common.env import SettingError

_STAND_IN = """
CREATE OR REPLACE FUNCTION pgaadauth_create_principal(name text, is_admin boolean, is_mfa boolean)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE ROLE %I LOGIN', name);
    RETURN format('Created role for "%s"', name);
END $$;
"""


def _connector(pg: EmbeddedPostgres) -> Callable[[str], psycopg.Connection[tuple[object, ...]]]:
    def connect(database: str) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(pg.url(database), autocommit=True)

    return connect


def _can_connect(pg: EmbeddedPostgres, database: str, role: str) -> bool:
    try:
        with psycopg.connect(pg.url(database, role)) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        assert "permission denied" in str(exc), exc
        return False
    return True


def test_parse_grants_rejects_what_it_cannot_read() -> None:
    assert parse_grants(" id-orders-x=orders ; id-inventory-x=inventory ;") == {
        "id-orders-x": "orders", "id-inventory-x": "inventory"}
    for bad in ("", "id-orders-x", "=orders", "id-orders-x="):
        with pytest.raises(SettingError):
            parse_grants(bad)


def test_roles_created_once_each_confined_to_its_database(pg_server: EmbeddedPostgres | None) -> None:
    if pg_server is None:
        pytest.skip("needs the embedded server (creates roles and a stand-in function)")
    tag = uuid.uuid4().hex[:6]
    orders_db, inventory_db = f"orders_roles_{tag}", f"inventory_roles_{tag}"
    orders_role, inventory_role = f"id-orders-{tag}", f"id-inventory-{tag}"
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        conn.execute(_STAND_IN)
        for name in (orders_db, inventory_db):
            conn.execute(f'CREATE DATABASE "{name}"')
    grants = {orders_role: orders_db, inventory_role: inventory_db}

    assert ensure_roles(_connector(pg_server), grants) == [orders_role, inventory_role]
    assert ensure_roles(_connector(pg_server), grants) == []  # a re-deployment changes nothing

    assert _can_connect(pg_server, orders_db, orders_role)
    assert _can_connect(pg_server, inventory_db, inventory_role)
    assert not _can_connect(pg_server, inventory_db, orders_role)
    assert not _can_connect(pg_server, orders_db, inventory_role)
    with psycopg.connect(pg_server.url(orders_db, orders_role), autocommit=True) as conn:
        conn.execute("CREATE TABLE migrations_can_create_tables (id int)")  # USAGE + CREATE on public
