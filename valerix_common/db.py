"""PostgreSQL connections for both services.

`POSTGRES_AUTH=entra` makes every new connection use a fresh Microsoft Entra token as its password (Azure Database
for PostgreSQL with password auth off). Tokens expire after about an hour, so the pool asks for one per connection
rather than once at start-up; azure-identity caches and refreshes it.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from valerix_common.env import SettingError, env_bool, env_str

log = logging.getLogger(__name__)

ENTRA_POSTGRES_SCOPE = "https://ossrdbms-aad.database.windows.net/.default"

TokenProvider = Callable[[], str]
# The one spelling of "a pool of dict-row async connections", as every repository and the local bus use it.
Pool = AsyncConnectionPool[AsyncConnection[dict[str, Any]]]


def auth_mode() -> str:
    mode = env_str("POSTGRES_AUTH", "password").lower()
    if mode not in {"password", "entra"}:
        raise SettingError(f"POSTGRES_AUTH={mode!r}: expected 'password' or 'entra'")
    return mode


def default_entra_token_provider() -> TokenProvider:
    from azure.identity import DefaultAzureCredential

    client_id = env_str("AZURE_CLIENT_ID") or None
    credential = DefaultAzureCredential(managed_identity_client_id=client_id)

    def token() -> str:
        return credential.get_token(ENTRA_POSTGRES_SCOPE).token

    return token


# psycopg's own default: a statement is prepared on the server after this many executions on one connection.
PREPARE_AFTER = 5


def prepare_threshold() -> int | None:
    """Server-side prepared statements, on unless `POSTGRES_PREPARED_STATEMENTS=false`: they spare PostgreSQL the
    parse and plan of every statement (the benchmark measured about -30 % of its CPU per order). A direct
    connection needs nothing for them. Behind PgBouncer in transaction mode they need PgBouncer >= 1.22 with
    `max_prepared_statements` > 0: Azure's built-in PgBouncer (port 6432, what infra/ deploys) gets the
    `pgbouncer.max_prepared_statements` server parameter from infra/modules/postgres.bicep (Azure's default is
    0). Set `POSTGRES_PREPARED_STATEMENTS=false` for any other pooler in transaction mode that does not track them."""
    return PREPARE_AFTER if env_bool("POSTGRES_PREPARED_STATEMENTS", default=True) else None


def connection_kwargs(mode: str, token_provider: TokenProvider | None = None) -> Callable[[], dict[str, Any]]:
    """Keyword arguments for each new connection; called by the pool every time it connects."""
    base: dict[str, Any] = {"autocommit": True, "prepare_threshold": prepare_threshold(), "row_factory": dict_row}
    if mode == "password":
        return lambda: dict(base)
    provider = token_provider or default_entra_token_provider()

    def with_token() -> dict[str, Any]:
        return {**base, "password": provider()}

    return with_token


# psycopg_pool waits 1 s before retrying a failed connection (and before re-checking after a failed check), doubling
# each time: after a 2 s database restart a pool could stay empty for seconds after the server is back, and every
# checkout then would spend its whole budget waiting for a connection. The backoff is a class constant with no pool
# parameter (it came with psycopg/psycopg#711), so it is set once for every pool here: 0.1 s, growing 1.5× (retries
# at +0.1, +0.25, +0.5, +0.8, +1.3, +2 s ...). A refused connection costs next to nothing.
POOL_RETRY_INITIAL_S = 0.1
POOL_RETRY_BACKOFF = 1.5


def tune_pool_backoff() -> None:
    AttemptWithBackoff.INITIAL_DELAY = POOL_RETRY_INITIAL_S
    AttemptWithBackoff.DELAY_BACKOFF = POOL_RETRY_BACKOFF


def make_pool(
    url: str,
    *,
    name: str,
    min_size: int = 2,
    max_size: int = 10,
    token_provider: TokenProvider | None = None,
    mode: str | None = None,
) -> Pool:
    """An unopened async pool; the caller opens it (`await pool.open()`), so start-up decides when to connect."""
    tune_pool_backoff()
    return AsyncConnectionPool(
        conninfo=url,
        kwargs=connection_kwargs(mode or auth_mode(), token_provider),
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        timeout=10.0,
        # A dead server must not leave broken connections in the pool after it comes back.
        check=check_if_idle,
        reset=_stamp_returned,
    )


# Checking every connection on every checkout costs a round trip per query (the benchmark measured ~14 % of
# throughput). A connection returned moments ago is almost surely alive; one that sat idle may have been cut by a
# server restart, so only those are checked. A connection that fails anyway is discarded by the pool on return.
IDLE_CHECK_AFTER_S = 2.0
_returned_at: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = weakref.WeakKeyDictionary()


async def _stamp_returned(conn: AsyncConnection[Any]) -> None:
    _returned_at[conn] = time.monotonic()


async def check_if_idle(conn: AsyncConnection[Any]) -> None:
    returned = _returned_at.get(conn)
    if returned is not None and time.monotonic() - returned < IDLE_CHECK_AFTER_S:
        return
    await AsyncConnectionPool.check_connection(conn)
