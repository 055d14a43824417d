"""The catalogue copy and the consumed reservation events, in the orders database."""

from __future__ import annotations

from uuid import UUID

from order_functions.application.ports import ProductView
from order_functions.domain.reservation_events import StockLevel
from order_functions.infrastructure.orders_repository import connection
from valerix_common.db import Pool

# Stock figures move only to a newer version; a new product from an event has no price until the next refresh.
_APPLY_LEVEL = (
    "INSERT INTO catalogue (product_id, name, available, reserved, shipped, version)"
    " VALUES (%(product_id)s, %(name)s, %(available)s, %(reserved)s, %(shipped)s, %(version)s)"
    " ON CONFLICT (product_id) DO UPDATE SET available = EXCLUDED.available, reserved = EXCLUDED.reserved,"
    "  shipped = EXCLUDED.shipped, version = EXCLUDED.version, synced_at = now(),"
    "  name = CASE WHEN EXCLUDED.name = '' THEN catalogue.name ELSE EXCLUDED.name END"
    " WHERE catalogue.version < EXCLUDED.version"
)
# A refresh confirms every row (synced_at) and wins the stock figures unless an event already brought a newer version.
_APPLY_LISTING = (
    "INSERT INTO catalogue (product_id, name, price_cents, available, reserved, shipped, version)"
    " VALUES (%(product_id)s, %(name)s, %(price_cents)s, %(available)s, %(reserved)s, %(shipped)s, %(version)s)"
    " ON CONFLICT (product_id) DO UPDATE SET name = EXCLUDED.name, price_cents = EXCLUDED.price_cents,"
    "  synced_at = now(),"
    "  available = CASE WHEN EXCLUDED.version >= catalogue.version"
    "   THEN EXCLUDED.available ELSE catalogue.available END,"
    "  reserved = CASE WHEN EXCLUDED.version >= catalogue.version THEN EXCLUDED.reserved ELSE catalogue.reserved END,"
    "  shipped = CASE WHEN EXCLUDED.version >= catalogue.version THEN EXCLUDED.shipped ELSE catalogue.shipped END,"
    "  version = GREATEST(catalogue.version, EXCLUDED.version)"
)


class CatalogueRepository:
    """The CatalogueStore port in PostgreSQL."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def apply_levels(self, event_id: UUID, event_type: str, levels: tuple[StockLevel, ...]) -> int | None:
        moved = 0
        async with connection(self.pool) as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO consumed_events (event_id, event_type, effect) VALUES (%s, %s, 'applied')"
                " ON CONFLICT (event_id) DO NOTHING", (event_id, event_type))
            if cur.rowcount == 0:
                return None  # a redelivery: the first delivery's changes stand
            for level in sorted(levels, key=lambda lv: lv.product_id):  # one lock order: no deadlocks
                cur = await conn.execute(_APPLY_LEVEL, level.__dict__)
                moved += cur.rowcount
            if not moved:
                await conn.execute("UPDATE consumed_events SET effect = 'no-op' WHERE event_id = %s", (event_id,))
        return moved

    async def apply_listing(self, products: list[ProductView]) -> int:
        async with connection(self.pool) as conn, conn.transaction(), conn.cursor() as cur:
            rows = [
                {k: getattr(p, k) for k in
                 ("product_id", "name", "price_cents", "available", "reserved", "shipped", "version")}
                for p in sorted(products, key=lambda p: p.product_id)
            ]
            if rows:
                await cur.executemany(_APPLY_LISTING, rows)
            await cur.execute(
                "INSERT INTO catalogue_listing (only_row) VALUES (true)"
                " ON CONFLICT (only_row) DO UPDATE SET listed_at = now()"
            )
        return len(rows)

    async def listed(self) -> bool:
        async with connection(self.pool) as conn:
            cur = await conn.execute("SELECT 1 FROM catalogue_listing")
            return await cur.fetchone() is not None

    async def snapshot(self) -> list[ProductView]:
        async with connection(self.pool) as conn:
            cur = await conn.execute(
                "SELECT product_id, name, price_cents, available, reserved, shipped,"
                " version, synced_at FROM catalogue ORDER BY product_id"
            )
            return [
                ProductView(r["product_id"], r["name"], r["price_cents"], r["available"], r["reserved"],
                            r["shipped"], r["version"], r["synced_at"])
                for r in await cur.fetchall()
            ]


class ConsumedEventsRepository:
    """The ConsumedEvents port in PostgreSQL."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def seen(self, event_id: UUID) -> bool:
        async with connection(self.pool) as conn:
            cur = await conn.execute("SELECT 1 FROM consumed_events WHERE event_id = %s", (event_id,))
            return await cur.fetchone() is not None

    async def record(self, event_id: UUID, event_type: str, order_id: UUID | None, effect: str) -> bool:
        async with connection(self.pool) as conn:
            cur = await conn.execute(
                "INSERT INTO consumed_events (event_id, event_type, order_id, effect) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (event_id) DO NOTHING",
                (event_id, event_type, order_id, effect),
            )
            return cur.rowcount == 1
