"""The catalogue copy and the consumed reservation events, in the orders database."""

from __future__ import annotations

from uuid import UUID

from order_functions.application.ports import FirstLook, ProductView
from order_functions.domain.models import OrderStatus
from order_functions.domain.reservation_events import StockLevel
from order_functions.infrastructure.orders_repository import ORDER_COLUMNS, connection, order_from_row
from valerix_common.db import Pool

# One stock event in one statement: the record of the event (nothing else happens when it is a redelivery) and the
# levels, which move only to a newer version, upserted in product-id order (one lock order: no deadlocks). A new
# product from an event has no price until the next refresh. The effect is read from the copy as the statement
# found it; the upsert's own WHERE still decides what moves.
_APPLY_LEVELS = (
    "WITH levels AS (SELECT * FROM unnest(%(ids)s::text[], %(names)s::text[], %(available)s::int[],"
    "   %(reserved)s::int[], %(shipped)s::int[], %(versions)s::bigint[])"
    "   AS l(product_id, name, available, reserved, shipped, version)),"
    " fresh AS (INSERT INTO consumed_events (event_id, event_type, effect)"
    "   SELECT %(event_id)s, %(event_type)s, CASE WHEN EXISTS (SELECT 1 FROM levels l"
    "     LEFT JOIN catalogue c USING (product_id) WHERE c.version IS NULL OR c.version < l.version)"
    "     THEN 'applied' ELSE 'no-op' END"
    "   ON CONFLICT (event_id) DO NOTHING RETURNING 1),"
    " moved AS (INSERT INTO catalogue (product_id, name, available, reserved, shipped, version)"
    "   SELECT product_id, name, available, reserved, shipped, version FROM levels"
    "   WHERE EXISTS (SELECT 1 FROM fresh) ORDER BY product_id"
    "   ON CONFLICT (product_id) DO UPDATE SET available = EXCLUDED.available, reserved = EXCLUDED.reserved,"
    "    shipped = EXCLUDED.shipped, version = EXCLUDED.version, synced_at = now(),"
    "    name = CASE WHEN EXCLUDED.name = '' THEN catalogue.name ELSE EXCLUDED.name END"
    "   WHERE catalogue.version < EXCLUDED.version RETURNING 1)"
    " SELECT (SELECT count(*) FROM fresh) AS fresh, (SELECT count(*) FROM moved) AS moved"
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
        newest: dict[str, StockLevel] = {}
        for level in levels:  # one row per product (an upsert cannot touch a row twice): its newest figures
            if level.product_id not in newest or newest[level.product_id].version < level.version:
                newest[level.product_id] = level
        rows = [newest[k] for k in sorted(newest)]
        params = {
            "event_id": event_id, "event_type": event_type, "ids": [lv.product_id for lv in rows],
            "names": [lv.name for lv in rows], "available": [lv.available for lv in rows],
            "reserved": [lv.reserved for lv in rows], "shipped": [lv.shipped for lv in rows],
            "versions": [lv.version for lv in rows],
        }
        async with connection(self.pool) as conn:
            cur = await conn.execute(_APPLY_LEVELS, params)
            row = await cur.fetchone()
        assert row is not None  # the final SELECT always yields one row
        return int(row["moved"]) if row["fresh"] else None  # None: a redelivery, the first delivery's changes stand

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


# A decision event's first look, one statement: seen before? the order; and when the event cannot move the order
# (already settled, or not ours), its record as handled.
_FIRST_LOOK = (
    f"WITH o AS (SELECT {ORDER_COLUMNS} FROM orders WHERE order_id = %(order_id)s),"
    " seen AS (SELECT 1 FROM consumed_events WHERE event_id = %(event_id)s),"
    " recorded AS (INSERT INTO consumed_events (event_id, event_type, order_id, effect)"
    "   SELECT %(event_id)s, %(event_type)s, %(order_id)s,"
    "    CASE WHEN EXISTS (SELECT 1 FROM o) THEN 'no-op' ELSE 'unknown-order' END"
    "   WHERE NOT EXISTS (SELECT 1 FROM seen) AND NOT EXISTS (SELECT 1 FROM o WHERE status = ANY(%(movable)s))"
    "   ON CONFLICT (event_id) DO NOTHING RETURNING 1)"
    " SELECT o.*, EXISTS (SELECT 1 FROM seen) AS seen, (SELECT count(*) FROM recorded) AS recorded"
    " FROM (SELECT 1) AS one LEFT JOIN o ON true"
)


class ConsumedEventsRepository:
    """The ConsumedEvents port in PostgreSQL."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def first_look(
        self, event_id: UUID, event_type: str, order_id: UUID, movable_from: tuple[OrderStatus, ...]
    ) -> FirstLook:
        async with connection(self.pool) as conn:
            cur = await conn.execute(
                _FIRST_LOOK, {"event_id": event_id, "event_type": event_type, "order_id": order_id,
                              "movable": [s.value for s in movable_from]},
            )
            row = await cur.fetchone()
        assert row is not None  # the final SELECT always yields one row
        order = order_from_row(row) if row["order_id"] is not None else None
        return FirstLook(seen=bool(row["seen"]), order=order, recorded=bool(row["recorded"]))

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
