"""Versioned SQL migrations, applied at start-up, idempotently, serialised across replicas.

The lock is a transaction-scoped advisory lock (`pg_advisory_xact_lock`) taken at the start of each migration's
own transaction: behind PgBouncer in transaction pooling (Azure's port 6432) consecutive transactions of one client
may run on different server connections, so a session lock (`pg_advisory_lock`) taken in one could be "released"
on another backend and never actually be freed, or not held while the migration runs. Inside one transaction the
lock, the version check and the DDL share one backend, and COMMIT or ROLLBACK releases it wherever it ran.

For the same reason a component with a schema of its own (the notifications add-on, the local bus) passes
`schema`: every transaction creates it if missing and points `search_path` at it with `SET LOCAL`, so the schema's
own `schema_migrations` and its unqualified table names resolve there, and nothing outlives the transaction (a
session `SET search_path` would stay on a pooled backend that other clients then use, and miss the backend the next
transaction runs on).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection, sql

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x56414C45  # "VALE": any fixed key; serialises concurrent start-ups of replicas
_CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
)


def migration_files(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} must be named NNN_description.sql")
        found.append((int(match.group(1)), path))
    versions = [v for v, _ in found]
    if len(versions) != len(set(versions)):
        raise ValueError(f"duplicate migration versions in {folder}")
    return found


async def apply_migrations(conn: AsyncConnection[Any], folder: Path, schema: str | None = None) -> list[int]:
    """Applies every migration not yet recorded, each in its own locked transaction (in `schema` when given);
    returns the versions applied."""
    files = migration_files(folder)  # a badly named file fails before anything is written
    async with conn.transaction():
        # concurrent CREATE TABLE IF NOT EXISTS can still collide in the catalogue: under the lock too
        await _lock(conn)
        await _enter(conn, schema, create=True)
        await conn.execute(_CREATE_TABLE)
    applied_now: list[int] = []
    for version, path in files:
        async with conn.transaction():
            await _lock(conn)
            await _enter(conn, schema)
            cur = await conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (version,))
            if await cur.fetchone() is not None:
                continue  # applied earlier, or by a replica that held the lock before us
            await conn.execute(path.read_text())  # type: ignore[arg-type]
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, path.name))
        log.info("applied migration %s", path.name)
        applied_now.append(version)
    return applied_now


async def _lock(conn: AsyncConnection[Any]) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))


async def _enter(conn: AsyncConnection[Any], schema: str | None, *, create: bool = False) -> None:
    if schema is None:
        return
    name = sql.Identifier(schema)
    if create:
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
    await conn.execute(sql.SQL("SET LOCAL search_path TO {}, public").format(name))
