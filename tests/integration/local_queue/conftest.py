from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.support.bus import new_bus_db
from valerix_common.db import make_pool
from valerix_common.embedded_pg import EmbeddedPostgres
from valerix_common.local_bus import Pool, ensure_schema, stop_notifier


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def bus_pool(pg_server: EmbeddedPostgres | None) -> AsyncIterator[Pool]:
    pool = make_pool(new_bus_db(pg_server), name="localbus-test", min_size=1, max_size=10, mode="password")
    await pool.open(wait=True)
    try:
        await ensure_schema(pool)
        yield pool
    finally:
        await stop_notifier(pool)
        await pool.close()
