"""The add-on's one database pool per worker process, built lazily in the worker's event loop (as the core's
composition root does) from NOTIFICATIONS_DATABASE_URL, else ORDERS_DATABASE_URL (its own schema there)."""

from __future__ import annotations

import asyncio

from order_functions.addons.notifications.store import NotificationStore, ensure_schema
from valerix_common.db import make_pool
from valerix_common.env import env_str

_store: tuple[NotificationStore, asyncio.AbstractEventLoop] | None = None
_locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}


async def get_store() -> NotificationStore:
    global _store
    loop = asyncio.get_running_loop()
    if _store is not None and _store[1] is loop:
        return _store[0]
    async with _locks.setdefault(loop, asyncio.Lock()):
        if _store is None or _store[1] is not loop:
            url = env_str("NOTIFICATIONS_DATABASE_URL") or env_str("ORDERS_DATABASE_URL")
            if not url:
                raise RuntimeError("NOTIFICATIONS_DATABASE_URL (or ORDERS_DATABASE_URL) is not set")
            pool = make_pool(url, name="notifications", min_size=1, max_size=4)
            await pool.open(wait=True, timeout=10)
            try:
                await ensure_schema(pool)
            except BaseException:
                await pool.close()
                raise
            _store = (NotificationStore(pool), loop)
    return _store[0]


async def shutdown() -> None:
    global _store
    if _store is not None:
        (store, _), _store = _store, None
        await store.pool.close()
