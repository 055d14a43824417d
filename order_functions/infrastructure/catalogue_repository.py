"""The catalogue copy and the consumed reservation events, in the orders database."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from order_functions.application.ports import DecisionLook, FirstLook, ProductView
from order_functions.domain.models import OrderStatus
from order_functions.domain.reservation_events import StockChanged, StockLevel
from order_functions.infrastructure.orders_repository import ORDER_COLUMNS, connection, order_from_row
from valerix_common.db import Pool

# Stock events in one statement: the record of each event (nothing else happens for a redelivery) and the levels of
# the fresh ones, which move only to a newer version, upserted in product-id order (one lock order: no deadlocks),
# one row per product (its newest figures in the batch; the newest non-empty name). A new product from an event has
# no price until the next refresh. An event's effect is what applying the events one by one would record: `applied`
# when one of its figures is newer than the copy as the statement found it and than the same product's figures in
# the batch's earlier events; the upsert's own WHERE still decides what moves.
_APPLY_LEVELS = (
    "WITH ev AS (SELECT * FROM unnest(%(event_ids)s::uuid[], %(event_types)s::text[]) WITH ORDINALITY"
    "   AS e(event_id, event_type, n)),"
    " levels AS (SELECT * FROM unnest(%(owners)s::uuid[], %(ids)s::text[], %(names)s::text[], %(available)s::int[],"
    "   %(reserved)s::int[], %(shipped)s::int[], %(versions)s::bigint[])"
    "   AS l(event_id, product_id, name, available, reserved, shipped, version)),"
    " seen AS (SELECT event_id FROM consumed_events WHERE event_id IN (SELECT event_id FROM ev)),"
    " cand AS (SELECT l.event_id, e.n, l.product_id, l.version FROM levels l JOIN ev e USING (event_id)"
    "   WHERE e.event_id NOT IN (SELECT event_id FROM seen)),"
    " fresh AS (INSERT INTO consumed_events (event_id, event_type, effect)"
    "   SELECT e.event_id, e.event_type, CASE WHEN EXISTS (SELECT 1 FROM cand l"
    "     LEFT JOIN catalogue c USING (product_id)"
    "     WHERE l.event_id = e.event_id AND (c.version IS NULL OR c.version < l.version)"
    "      AND NOT EXISTS (SELECT 1 FROM cand p WHERE p.product_id = l.product_id AND p.n < l.n"
    "       AND p.version >= l.version))"
    "     THEN 'applied' ELSE 'no-op' END FROM ev e WHERE e.event_id NOT IN (SELECT event_id FROM seen)"
    "   ON CONFLICT (event_id) DO NOTHING RETURNING event_id, effect),"
    " used AS (SELECT l.* FROM levels l JOIN fresh f ON f.event_id = l.event_id),"
    " newest AS (SELECT DISTINCT ON (u.product_id) u.product_id, u.available, u.reserved, u.shipped, u.version,"
    "   coalesce((SELECT n.name FROM used n WHERE n.product_id = u.product_id AND n.name <> ''"
    "     ORDER BY n.version DESC LIMIT 1), '') AS name"
    "   FROM used u ORDER BY u.product_id, u.version DESC),"
    " moved AS (INSERT INTO catalogue (product_id, name, available, reserved, shipped, version)"
    "   SELECT product_id, name, available, reserved, shipped, version FROM newest ORDER BY product_id"
    "   ON CONFLICT (product_id) DO UPDATE SET available = EXCLUDED.available, reserved = EXCLUDED.reserved,"
    "    shipped = EXCLUDED.shipped, version = EXCLUDED.version, synced_at = now(),"
    "    name = CASE WHEN EXCLUDED.name = '' THEN catalogue.name ELSE EXCLUDED.name END"
    "   WHERE catalogue.version < EXCLUDED.version RETURNING 1)"
    " SELECT e.event_id, f.effect, (SELECT count(*) FROM moved) AS moved FROM ev e LEFT JOIN fresh f USING (event_id)"
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
        """One event: how many rows moved; None for a redelivery (the first delivery's changes stand)."""
        effects, moved = await self._apply_levels([StockChanged(event_id, event_type, levels)])
        return None if effects[0] is None else moved

    async def apply_levels_many(self, events: Sequence[StockChanged]) -> list[bool | None]:
        """Per event (distinct ids): None for a redelivery, else whether it brought a newer figure."""
        return (await self._apply_levels(events))[0]

    async def _apply_levels(self, events: Sequence[StockChanged]) -> tuple[list[bool | None], int]:
        if len({e.event_id for e in events}) != len(events):
            raise ValueError("one statement takes each event once")
        rows = [(e.event_id, lv) for e in events for lv in e.products]
        params = {
            "event_ids": [e.event_id for e in events], "event_types": [e.event_type for e in events],
            "owners": [owner for owner, _ in rows], "ids": [lv.product_id for _, lv in rows],
            "names": [lv.name for _, lv in rows], "available": [lv.available for _, lv in rows],
            "reserved": [lv.reserved for _, lv in rows], "shipped": [lv.shipped for _, lv in rows],
            "versions": [lv.version for _, lv in rows],
        }
        async with connection(self.pool) as conn:
            cur = await conn.execute(_APPLY_LEVELS, params)
            found = {row["event_id"]: row for row in await cur.fetchall()}
        moved = int(next(iter(found.values()))["moved"]) if found else 0
        effects = [None if found[e.event_id]["effect"] is None else found[e.event_id]["effect"] == "applied"
                   for e in events]
        return effects, moved

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


# Decision events' first looks, one statement (one event per order, distinct ids): seen before? the order; and
# when the event cannot move the order (already settled, or not ours), its record as handled. `movable` is each
# event's comma-separated source states.
_FIRST_LOOKS = (
    "WITH input AS (SELECT * FROM unnest(%(event_ids)s::uuid[], %(event_types)s::text[], %(order_ids)s::uuid[],"
    "   %(movable)s::text[]) WITH ORDINALITY AS i(event_id, event_type, order_id, movable, n)),"
    f" o AS (SELECT {ORDER_COLUMNS} FROM orders WHERE order_id IN (SELECT order_id FROM input)),"
    " seen AS (SELECT event_id FROM consumed_events WHERE event_id IN (SELECT event_id FROM input)),"
    " recorded AS (INSERT INTO consumed_events (event_id, event_type, order_id, effect)"
    "   SELECT i.event_id, i.event_type, i.order_id,"
    "    CASE WHEN o.order_id IS NOT NULL THEN 'no-op' ELSE 'unknown-order' END"
    "   FROM input i LEFT JOIN o ON o.order_id = i.order_id"
    "   WHERE i.event_id NOT IN (SELECT event_id FROM seen)"
    "    AND (o.order_id IS NULL OR NOT o.status = ANY(string_to_array(i.movable, ',')))"
    "   ON CONFLICT (event_id) DO NOTHING RETURNING event_id)"
    " SELECT o.*, i.event_id IN (SELECT event_id FROM seen) AS seen,"
    "  i.event_id IN (SELECT event_id FROM recorded) AS recorded"
    " FROM input i LEFT JOIN o ON o.order_id = i.order_id ORDER BY i.n"
)


class ConsumedEventsRepository:
    """The ConsumedEvents port in PostgreSQL."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def first_look(
        self, event_id: UUID, event_type: str, order_id: UUID, movable_from: tuple[OrderStatus, ...]
    ) -> FirstLook:
        return (await self.first_looks([DecisionLook(event_id, event_type, order_id, movable_from)]))[0]

    async def first_looks(self, looks: Sequence[DecisionLook]) -> list[FirstLook]:
        if len({x.event_id for x in looks}) != len(looks) or len({x.order_id for x in looks}) != len(looks):
            raise ValueError("one statement takes each event, and each order, once")
        params = {"event_ids": [x.event_id for x in looks], "event_types": [x.event_type for x in looks],
                  "order_ids": [x.order_id for x in looks],
                  "movable": [",".join(s.value for s in x.movable_from) for x in looks]}
        async with connection(self.pool) as conn:
            cur = await conn.execute(_FIRST_LOOKS, params)
            rows = await cur.fetchall()
        return [FirstLook(seen=bool(r["seen"]), order=order_from_row(r) if r["order_id"] is not None else None,
                          recorded=bool(r["recorded"])) for r in rows]

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
