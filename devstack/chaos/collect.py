"""Reads the end state: both databases directly, and the same facts through the public API."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import psycopg
from psycopg.rows import dict_row

from devstack.chaos.invariants import (
    ConsumerRow,
    IdempotencyRow,
    Items,
    OrderEventRow,
    OrderRow,
    ProductRow,
    ReservationRow,
    Snapshot,
)


def parse_items(raw: Any) -> Items:
    """Orders store items as [[product_id, qty], …]; the API as [{product_id, quantity}, …]."""
    data = json.loads(raw) if isinstance(raw, str) else raw
    items: Items = {}
    for entry in data or []:
        if isinstance(entry, dict):
            product, qty = str(entry["product_id"]), int(entry["quantity"])
        else:
            product, qty = str(entry[0]), int(entry[1])
        items[product] = items.get(product, 0) + qty
    return items


@dataclass
class OrderTimes:
    created_at: datetime
    settled_at: datetime | None
    settled_via: str | None


async def read_inventory(url: str) -> tuple[list[ProductRow], list[ReservationRow]]:
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        cur = await conn.execute("SELECT product_id, available, received FROM products ORDER BY product_id")
        products = [ProductRow(r["product_id"], int(r["available"]), int(r["received"])) for r in await cur.fetchall()]
        cur = await conn.execute(
            "SELECT r.order_id::text AS order_id, r.status,"
            " coalesce(json_agg(json_build_array(i.product_id, i.quantity)) FILTER (WHERE i.product_id IS NOT NULL),"
            " '[]'::json) AS items"
            " FROM reservations r LEFT JOIN reservation_items i USING (order_id) GROUP BY r.order_id, r.status"
        )
        reservations = [ReservationRow(r["order_id"], r["status"], parse_items(r["items"]))
                        for r in await cur.fetchall()]
    return products, reservations


async def read_orders(url: str) -> tuple[list[OrderRow], list[IdempotencyRow], dict[str, OrderTimes]]:
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        cur = await conn.execute(
            "SELECT order_id::text AS order_id, status, items, customer_id, settled_via, settled_at, created_at"
            " FROM orders"
        )
        rows = await cur.fetchall()
        orders = [
            OrderRow(
                r["order_id"], r["status"], parse_items(r["items"]), r["customer_id"], r["settled_via"],
                round((r["settled_at"] - r["created_at"]).total_seconds() * 1000) if r["settled_at"] else None,
            )
            for r in rows
        ]
        times = {r["order_id"]: OrderTimes(r["created_at"], r["settled_at"], r["settled_via"]) for r in rows}
        cur = await conn.execute("SELECT customer_id, idem_key, order_id::text AS order_id FROM idempotency_keys")
        idem = [IdempotencyRow(r["customer_id"], r["idem_key"], r["order_id"]) for r in await cur.fetchall()]
    return orders, idem, times


async def read_outbox(url: str) -> tuple[list[OrderEventRow], int, list[ConsumerRow] | None]:
    """The order outbox and, when its schema exists, what the notifications add-on applied."""
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        cur = await conn.execute(
            "SELECT event_uuid::text AS event_id, order_id::text AS order_id, type, version,"
            " sent_at IS NOT NULL AS sent FROM order_events"
        )
        events = [OrderEventRow(r["event_id"], r["order_id"], r["type"], int(r["version"]), bool(r["sent"]))
                  for r in await cur.fetchall()]
        cur = await conn.execute("SELECT count(*) AS n FROM verify_outbox WHERE sent_at IS NULL")
        row = await cur.fetchone()
        verify_unsent = int(row["n"]) if row else 0
        cur = await conn.execute("SELECT to_regclass('notifications.processed_events') IS NOT NULL AS present")
        row = await cur.fetchone()
        if not (row and row["present"]):
            return events, verify_unsent, None
        cur = await conn.execute(
            "SELECT p.event_id::text AS event_id, p.type, count(n.event_id) AS notifications"
            " FROM notifications.processed_events p LEFT JOIN notifications.notifications n USING (event_id)"
            " GROUP BY p.event_id, p.type"
        )
        consumer = [ConsumerRow(r["event_id"], r["type"], int(r["notifications"])) for r in await cur.fetchall()]
    return events, verify_unsent, consumer


async def outbox_backlog(url: str) -> int:
    """Outbox rows not yet sent plus sent order events the notifications add-on has not applied yet."""
    async with await psycopg.AsyncConnection.connect(url, connect_timeout=3) as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM order_events WHERE sent_at IS NULL)"
            " + (SELECT count(*) FROM verify_outbox WHERE sent_at IS NULL),"
            " to_regclass('notifications.processed_events') IS NOT NULL"
        )
        row = await cur.fetchone()
        backlog, consumer_present = (int(row[0]), bool(row[1])) if row else (0, False)
        if consumer_present:  # a separate statement: the table may not exist before the add-on's first event
            cur = await conn.execute(
                "SELECT count(*) FROM order_events e WHERE e.sent_at IS NOT NULL AND NOT EXISTS"
                " (SELECT 1 FROM notifications.processed_events p WHERE p.event_id = e.event_uuid)"
            )
            row = await cur.fetchone()
            backlog += int(row[0]) if row else 0
    return backlog


async def read_api(base: str, order_ids: list[str], concurrency: int = 16,
                   token: str | None = None) -> tuple[dict[str, str | None], dict[str, int]]:
    statuses: dict[str, str | None] = {}
    sem = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30), headers=headers) as http:

        async def one(oid: str) -> None:
            async with sem:
                for _ in range(5):  # bounded retries on 5xx
                    async with http.get(f"{base}/orders/{oid}") as resp:
                        if resp.status == 404:
                            statuses[oid] = None
                            return
                        if resp.status == 200:
                            statuses[oid] = str((await resp.json(content_type=None))["status"])
                            return
                    await asyncio.sleep(0.5)

        await asyncio.gather(*(one(o) for o in order_ids))
        available: dict[str, int] = {}
        for _ in range(5):
            async with http.get(f"{base}/products") as resp:
                if resp.status == 200:
                    body = await resp.json(content_type=None)
                    available = {str(p["product_id"]): int(p["available"]) for p in body["products"]}
                    break
            await asyncio.sleep(0.5)
    return statuses, available


async def read_events(env: dict[str, str], snap: Snapshot) -> None:
    """Issue 13: the catalogue copy, the events the relay sent, those consumed and the transitions they made."""
    async with await psycopg.AsyncConnection.connect(env["INVENTORY_DATABASE_URL"]) as conn:
        cur = await conn.execute("SELECT event_id::text FROM outbox WHERE sent_at IS NOT NULL")
        snap.sent_reservation_events = {str(r[0]) for r in await cur.fetchall()}
    async with await psycopg.AsyncConnection.connect(env["ORDERS_DATABASE_URL"]) as conn:
        cur = await conn.execute("SELECT product_id, available FROM catalogue")
        snap.catalogue_copy = {str(p): int(a) for p, a in await cur.fetchall()}
        cur = await conn.execute("SELECT event_id::text, effect FROM consumed_events")
        snap.consumed_events = {str(e): str(x) for e, x in await cur.fetchall()}
        cur = await conn.execute("SELECT order_id::text, to_status FROM order_events WHERE via = 'reservation-event'")
        snap.event_transitions = [(str(o), str(t)) for o, t in await cur.fetchall()]


async def events_backlog(env: dict[str, str]) -> int:
    """Reservation events not yet through: unsent in the inventory's outbox, or waiting in the subscription."""
    async with await psycopg.AsyncConnection.connect(env["INVENTORY_DATABASE_URL"], connect_timeout=3) as conn:
        cur = await conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        unsent = int((await cur.fetchone() or (0,))[0])
    async with await psycopg.AsyncConnection.connect(env["LOCAL_BUS_DATABASE_URL"], connect_timeout=3) as conn:
        cur = await conn.execute("SELECT count(*) FROM localbus.messages WHERE queue_name = %s",
                                 ("reservation-events/subscriptions/order-service",))
        waiting = int((await cur.fetchone() or (0,))[0])
    return unsent + waiting


async def snapshot(env: dict[str, str], base: str, client_keys: dict[tuple[str, str], list[str]],
                   seen: set[str], token: str | None = None) -> tuple[Snapshot, dict[str, OrderTimes]]:
    products, reservations = await read_inventory(env["INVENTORY_DATABASE_URL"])
    orders, idem, times = await read_orders(env["ORDERS_DATABASE_URL"])
    api_orders, api_products = await read_api(base, [o.order_id for o in orders], token=token)
    snap = Snapshot(products, reservations, orders, idem, client_keys, set(seen), api_orders, api_products)
    snap.order_events, snap.verify_unsent, snap.consumer = await read_outbox(env["ORDERS_DATABASE_URL"])
    await read_events(env, snap)
    return snap, times


async def order_counts(url: str) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(url, connect_timeout=3) as conn:
        cur = await conn.execute(
            "SELECT status, count(*) FROM orders GROUP BY status UNION ALL "
            "SELECT 'cancel_outstanding', count(*) FROM orders"
            " WHERE cancel_requested_at IS NOT NULL AND status IN ('pending', 'confirmed')"
        )
        return {str(s): int(n) for s, n in await cur.fetchall()}
