"""SQL for stock and reservations. Every decision is one transaction; products are locked in product-id order."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection

from inventory_service.domain.errors import InvalidTransition, ReservationNotFound, UnknownProducts
from inventory_service.domain.events import EventType, StockCause, reservation_payload
from inventory_service.domain.models import LineItem, Product, Release, Reservation, Status
from inventory_service.domain.rules import check_replay
from inventory_service.outbox import (
    DECISION_ROW,
    SNAPSHOT_COLUMNS,
    event_params,
    insert_events,
    stock_row,
    trace_context,
)
from valerix_common.db import Pool

log = logging.getLogger(__name__)

Conn = AsyncConnection[dict[str, Any]]

MIGRATIONS = Path(__file__).parent / "migrations"
SEED_CATALOGUE = Path(__file__).parent / "seed_catalogue.json"


# The whole ReserveStock decision in one call: migrations/003_reserve_in_one_call.sql. The int[] cast keeps the
# call exact for pgbench too, whose recorded arrays are typed int8[].
_RESERVE = "SELECT * FROM reserve_stock(%s, %s::text[], %s::int[], %s, %s)"
UNKNOWN_PRODUCTS_SQLSTATE = "VX404"
_RESTORE_AND_RELEASE = (
    "WITH restored AS (UPDATE products p SET available = p.available + r.quantity, version = p.version + 1,"
    "  updated_at = now() FROM reservation_items r WHERE r.order_id = %(order_id)s AND p.product_id = r.product_id"
    f"  RETURNING {SNAPSHOT_COLUMNS}),"
    " outcome AS (UPDATE reservations SET status = 'RELEASED', released_at = now(),"
    "  reason = CASE WHEN %(reason)s = '' THEN reason ELSE %(reason)s END WHERE order_id = %(order_id)s RETURNING 1),"
    f" events AS ({insert_events(DECISION_ROW, stock_row(StockCause.RELEASE, 'restored'))})"
    " SELECT (SELECT count(*) FROM restored) AS restored, (SELECT count(*) FROM outcome) AS released,"
    " (SELECT count(*) FROM events) AS events"
)
# Shipping: the reserved units leave (shipped grows, available stays); the reservation becomes SHIPPED.
_SHIP = (
    "WITH moved AS (UPDATE products p SET shipped = p.shipped + r.quantity, version = p.version + 1,"
    "  updated_at = now() FROM reservation_items r WHERE r.order_id = %(order_id)s AND p.product_id = r.product_id"
    f"  RETURNING {SNAPSHOT_COLUMNS}),"
    " outcome AS (UPDATE reservations SET status = 'SHIPPED', shipped_at = now() WHERE order_id = %(order_id)s"
    "  RETURNING decided_at),"
    f" events AS ({insert_events(DECISION_ROW, stock_row(StockCause.SHIP, 'moved'))})"
    " SELECT (SELECT decided_at FROM outcome) AS decided_at, (SELECT count(*) FROM moved) AS moved,"
    " (SELECT count(*) FROM events) AS events"
)
_PRODUCT_COLUMNS = (
    "product_id, name, price_cents, available, received - available - shipped AS reserved, shipped, version"
)


class StockRepository:
    def __init__(self, pool: Pool, on_events: Callable[[], None] | None = None) -> None:
        self.pool = pool
        # called after a commit that wrote outbox events: wakes the relay in this process at once
        self.on_events: Callable[[], None] = on_events or (lambda: None)

    async def reserve(self, order_id: UUID, items: tuple[LineItem, ...]) -> Reservation:
        """Claim, lock, decide, decrement, record and write the events: one statement, so one transaction."""
        traceparent, tracestate = trace_context()
        params = (order_id, [i.product_id for i in items], [i.quantity for i in items], traceparent, tracestate)
        async with self.pool.connection() as conn:
            try:
                cur = await conn.execute(_RESERVE, params)
            except psycopg.Error as exc:
                if exc.sqlstate == UNKNOWN_PRODUCTS_SQLSTATE:  # rolled back: bad input writes nothing
                    raise UnknownProducts((exc.diag.message_detail or "").split(",")) from None
                raise
            row = await cur.fetchone()
        assert row is not None
        status = row["out_status"]
        if status == "PENDING":
            raise ReservationNotFound(str(order_id))  # never seen: a claim commits only with its decision
        if row["out_replayed"]:
            recorded_items = tuple(map(LineItem, row["out_item_ids"], row["out_item_quantities"]))
            recorded = Reservation(
                order_id, Status(status), recorded_items, row["out_short_product_id"], row["out_reason"],
                replayed=True, decided_at=row["out_decided_at"],
            )
            check_replay(recorded, items)
            return recorded
        self.on_events()
        return Reservation(
            order_id, Status(status), items, row["out_short_product_id"], row["out_reason"],
            decided_at=row["out_decided_at"],
        )

    async def get(self, order_id: UUID) -> Reservation:
        async with self.pool.connection() as conn:
            return await self._load(conn, order_id)

    async def release(self, order_id: UUID, reason: str) -> Release:
        async with self.pool.connection() as conn, conn.transaction():
            tomb_reason = reason or "released before any reservation"
            tomb = await conn.execute(
                "INSERT INTO reservations (order_id, status, reason, decided_at, released_at)"
                " VALUES (%s, 'RELEASED', %s, now(), now()) ON CONFLICT DO NOTHING",
                (order_id, tomb_reason),
            )
            if tomb.rowcount == 1:
                payload = reservation_payload(Status.RELEASED, (), reason=tomb_reason, tombstone=True)
                await conn.execute(insert_events(DECISION_ROW), event_params(order_id, EventType.RELEASED, payload))
                released = Release(order_id, Status.RELEASED, restored=False, tombstone=True)
            else:
                released = await self._release_recorded(conn, order_id, reason)
        if released.restored or released.tombstone:
            self.on_events()
        return released

    async def _release_recorded(self, conn: Conn, order_id: UUID, reason: str) -> Release:
        cur = await conn.execute("SELECT status, reason FROM reservations WHERE order_id = %s FOR UPDATE", (order_id,))
        row = await cur.fetchone()
        assert row is not None
        status = Status(row["status"])
        if status is Status.SHIPPED:
            raise InvalidTransition(str(order_id), status.value, "released: its stock has shipped")
        if status is not Status.RESERVED:
            return Release(order_id, status, restored=False, tombstone=False)
        items = await self._items(conn, order_id)
        await self._lock_products(conn, [item.product_id for item in items])
        payload = reservation_payload(Status.RELEASED, items, reason=reason or row["reason"])
        cur = await conn.execute(
            _RESTORE_AND_RELEASE, {**event_params(order_id, EventType.RELEASED, payload), "reason": reason}
        )
        counts = await cur.fetchone()
        assert counts is not None and counts["released"] == 1
        return Release(order_id, Status.RELEASED, restored=True, tombstone=False)

    async def ship(self, order_id: UUID) -> Reservation:
        """RESERVED → SHIPPED, once; a replay returns the shipped reservation marked `replayed`."""
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT status FROM reservations WHERE order_id = %s FOR UPDATE", (order_id,))
            row = await cur.fetchone()
            if row is None or row["status"] == "PENDING":
                raise ReservationNotFound(str(order_id))
            status = Status(row["status"])
            if status is Status.SHIPPED:
                return replace(await self._load(conn, order_id), replayed=True)
            if status is not Status.RESERVED:
                raise InvalidTransition(str(order_id), status.value, "shipped: only a RESERVED order ships")
            items = await self._items(conn, order_id)
            await self._lock_products(conn, [item.product_id for item in items])
            payload = reservation_payload(Status.SHIPPED, items)
            cur = await conn.execute(_SHIP, event_params(order_id, EventType.SHIPPED, payload))
            shipped = await cur.fetchone()
            assert shipped is not None
            if shipped["moved"] != len(items):
                raise RuntimeError(f"shipping moved {shipped['moved']} of {len(items)} product rows")
        self.on_events()
        return Reservation(order_id, Status.SHIPPED, items, decided_at=shipped["decided_at"])

    async def list_products(self, product_ids: list[str]) -> list[Product]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_PRODUCT_COLUMNS}"
                " FROM products WHERE cardinality(%s::text[]) = 0 OR product_id = ANY(%s::text[])"
                " ORDER BY product_id",
                (product_ids, product_ids),
            )
            return [Product(**row) for row in await cur.fetchall()]

    async def restock(self, product_id: str, quantity: int, name: str, price_cents: int) -> Product:
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "UPDATE products SET available = available + %s, received = received + %s, version = version + 1,"
                f" updated_at = now() WHERE product_id = %s RETURNING {_PRODUCT_COLUMNS}",
                (quantity, quantity, product_id),
            )
            row = await cur.fetchone()
            if row is None:
                if not name:
                    raise UnknownProducts([product_id])
                cur = await conn.execute(
                    "INSERT INTO products (product_id, name, price_cents, available, received, version)"
                    " VALUES (%s, %s, %s, %s, %s, 1) ON CONFLICT (product_id) DO UPDATE"
                    " SET available = products.available + excluded.available,"
                    "     received = products.received + excluded.received, version = products.version + 1,"
                    f"     updated_at = now() RETURNING {_PRODUCT_COLUMNS}",
                    (product_id, name, price_cents, quantity, quantity),
                )
                row = await cur.fetchone()
                assert row is not None
            product = Product(**row)
            payload = {"cause": StockCause.RESTOCK.value, "products": [stock_snapshot(product)]}
            await conn.execute(insert_events(DECISION_ROW), event_params(None, EventType.STOCK_CHANGED, payload))
        self.on_events()
        return product

    async def ping(self) -> None:
        """The health check: the database answers a query on our own tables."""
        async with self.pool.connection(timeout=2.0) as conn:
            await conn.execute("SELECT 1 FROM products LIMIT 1")

    async def seed_if_empty(self, catalogue: Path = SEED_CATALOGUE) -> int:
        entries = json.loads(await asyncio.to_thread(catalogue.read_text))
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute("SELECT count(*) AS n FROM products")
            row = await cur.fetchone()
            if row is not None and row["n"] > 0:
                return 0
            for entry in entries:
                await conn.execute(
                    "INSERT INTO products (product_id, name, price_cents, available, received)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (entry["product_id"], entry["name"], entry["price_cents"], entry["stock"], entry["stock"]),
                )
        log.info("seeded %d products", len(entries))
        return len(entries)

    # --- helpers ---------------------------------------------------------------------------------------------
    async def _lock_products(self, conn: Conn, product_ids: list[str]) -> dict[str, int]:
        cur = await conn.execute(
            "SELECT product_id, available FROM products WHERE product_id = ANY(%s::text[])"
            " ORDER BY product_id FOR UPDATE",
            (sorted(product_ids),),
        )
        return {row["product_id"]: row["available"] for row in await cur.fetchall()}

    async def _items(self, conn: Conn, order_id: UUID) -> tuple[LineItem, ...]:
        cur = await conn.execute(
            "SELECT product_id, quantity FROM reservation_items WHERE order_id = %s ORDER BY product_id",
            (order_id,),
        )
        return tuple(LineItem(row["product_id"], row["quantity"]) for row in await cur.fetchall())

    async def _load(self, conn: Conn, order_id: UUID) -> Reservation:
        cur = await conn.execute(
            "SELECT status, short_product_id, reason, decided_at FROM reservations WHERE order_id = %s",
            (order_id,),
        )
        row = await cur.fetchone()
        if row is None or row["status"] == "PENDING":
            raise ReservationNotFound(str(order_id))
        items = await self._items(conn, order_id)
        return Reservation(
            order_id, Status(row["status"]), items, row["short_product_id"], row["reason"],
            decided_at=row["decided_at"],
        )


def stock_snapshot(product: Product) -> dict[str, Any]:
    """The same keys as SNAPSHOT_COLUMNS, for events built from a Product."""
    return {
        "product_id": product.product_id,
        "name": product.name,
        "available": product.available,
        "reserved": product.reserved,
        "shipped": product.shipped,
        "version": product.version,
    }
