"""`python -m valerix_common.db_roles`: create the apps' Entra database roles on Azure Database for PostgreSQL.

Runs inside the VNet as a Container Apps job (infra/modules/dbroles.bicep) under the identity that is the server's
Entra administrator: the server is VNet-injected and has no public endpoint, so nothing outside can do this.
Idempotent: a role that exists is left alone, grants are repeated harmlessly. Each app identity gets CONNECT on
its own database and USAGE + CREATE on its `public` schema (its migrations create its tables), and PUBLIC loses
CONNECT, so neither identity can open the other's database.

Settings: PGHOST, PG_ADMIN_ROLE (the admin identity's name, its role name on the server), AZURE_CLIENT_ID (that
identity), DB_ROLE_GRANTS = "role=database;role=database".
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import psycopg
from psycopg import sql

from valerix_common.db import default_entra_token_provider
from valerix_common.env import SettingError, env_str

log = logging.getLogger("valerix.db_roles")


def parse_grants(raw: str) -> dict[str, str]:
    grants: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in raw.split(";"))):
        role, sep, database = pair.partition("=")
        if not sep or not role.strip() or not database.strip():
            raise SettingError(f"DB_ROLE_GRANTS entry {pair!r}: expected role=database")
        grants[role.strip()] = database.strip()
    if not grants:
        raise SettingError("DB_ROLE_GRANTS is empty: expected role=database;role=database")
    return grants


def ensure_roles(connect: Callable[[str], psycopg.Connection[tuple[object, ...]]], grants: dict[str, str]) -> list[str]:
    """Creates missing Entra principals and grants each its own database; returns the roles created now."""
    created: list[str] = []
    with connect("postgres") as conn:
        for role in grants:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None:
                log.info("role %s exists", role)
                continue
            # Azure's function: a role bound to the managed identity of that display name (is_admin, is_mfa false)
            conn.execute("SELECT * FROM pgaadauth_create_principal(%s, false, false)", (role,))
            log.info("created Entra role %s", role)
            created.append(role)
    for role, database in grants.items():
        with connect(database) as conn:
            db, who = sql.Identifier(database), sql.Identifier(role)
            conn.execute(sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(db))
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(db, who))
            conn.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(who))
            log.info("granted %s its database %s", role, database)
    return created


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, admin = env_str("PGHOST"), env_str("PG_ADMIN_ROLE")
    if not host or not admin:
        raise SettingError("PGHOST and PG_ADMIN_ROLE must be set")
    grants = parse_grants(env_str("DB_ROLE_GRANTS"))
    token = default_entra_token_provider()

    def connect(database: str) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(host=host, port=5432, dbname=database, user=admin, password=token(),
                               sslmode="require", autocommit=True, connect_timeout=15)

    try:
        created = ensure_roles(connect, grants)
    except psycopg.Error as exc:
        log.error("creating database roles on %s as %s failed: %r", host, admin, exc)
        return 1
    log.info("database roles ready (%d created now, %d in all)", len(created), len(grants))
    return 0


if __name__ == "__main__":
    sys.exit(main())
