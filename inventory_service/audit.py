"""Consistency checks over the inventory database: conservation with shipping (docs/architecture.md), and the outbox.

Each query returns the violating rows: none when the database is consistent. The chaos checker and operators run
them after the system quiesces (the relay has had time to send everything).
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

# received = available + Σ RESERVED quantities + Σ SHIPPED quantities, the shipped counter agrees, nothing negative.
CONSERVATION = """
SELECT p.product_id, p.received, p.available, p.shipped, t.reserved, t.shipped_rows
FROM products p
CROSS JOIN LATERAL (
    SELECT COALESCE(SUM(ri.quantity) FILTER (WHERE r.status = 'RESERVED'), 0) AS reserved,
           COALESCE(SUM(ri.quantity) FILTER (WHERE r.status = 'SHIPPED'), 0) AS shipped_rows
    FROM reservation_items ri JOIN reservations r ON r.order_id = ri.order_id
    WHERE ri.product_id = p.product_id
) t
WHERE p.available < 0
   OR p.received <> p.available + t.reserved + t.shipped_rows
   OR p.shipped <> t.shipped_rows
ORDER BY p.product_id
"""

# Every decided reservation has exactly the decision events its history implies: RESERVED (reserved),
# REJECTED (rejected), RELEASED after a reservation (reserved + released), a tombstone (released), SHIPPED
# (reserved + shipped). A missing event is a lost decision; a second one is a decision taken twice.
DECISION_EVENTS = """
SELECT r.order_id, r.status, r.was_reserved, e.reserved, e.rejected, e.released, e.shipped
FROM reservations r
CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE o.type = 'reservation.reserved') AS reserved,
           count(*) FILTER (WHERE o.type = 'reservation.rejected') AS rejected,
           count(*) FILTER (WHERE o.type = 'reservation.released') AS released,
           count(*) FILTER (WHERE o.type = 'reservation.shipped') AS shipped
    FROM outbox o WHERE o.order_id = r.order_id
) e
WHERE r.status <> 'PENDING' AND NOT (
        e.reserved = CASE WHEN r.status = 'REJECTED' OR (r.status = 'RELEASED' AND NOT r.was_reserved) THEN 0 ELSE 1 END
    AND e.rejected = CASE WHEN r.status = 'REJECTED' THEN 1 ELSE 0 END
    AND e.released = CASE WHEN r.status = 'RELEASED' THEN 1 ELSE 0 END
    AND e.shipped = CASE WHEN r.status = 'SHIPPED' THEN 1 ELSE 0 END)
ORDER BY r.order_id
"""

# Events about an order the inventory never decided.
ORPHAN_EVENTS = """
SELECT o.event_id, o.type, o.order_id FROM outbox o
WHERE o.order_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM reservations r WHERE r.order_id = o.order_id AND r.status <> 'PENDING')
ORDER BY o.sequence
"""

# Per product: no version reported twice, and the stock.changed with the product's current version reports its
# current stock (so a consumer keeping the highest version ends with the right numbers).
STOCK_EVENTS = """
WITH snapshots AS (
    SELECT s->>'product_id' AS product_id, (s->>'version')::bigint AS version,
           (s->>'available')::int AS available, (s->>'shipped')::int AS shipped
    FROM outbox o, jsonb_array_elements(o.payload->'products') s
    WHERE o.type = 'stock.changed'
),
per_product AS (
    SELECT product_id, count(*) AS events, count(DISTINCT version) AS versions, max(version) AS max_version
    FROM snapshots GROUP BY product_id
)
SELECT p.product_id, p.version, p.available, p.shipped, pp.events, pp.versions, pp.max_version,
       latest.available AS latest_available, latest.shipped AS latest_shipped
FROM products p
LEFT JOIN per_product pp ON pp.product_id = p.product_id
LEFT JOIN snapshots latest ON latest.product_id = p.product_id AND latest.version = p.version
WHERE COALESCE(pp.events, 0) <> COALESCE(pp.versions, 0)
   OR COALESCE(pp.max_version, 0) <> p.version
   OR (p.version > 0 AND (latest.available IS DISTINCT FROM p.available OR latest.shipped IS DISTINCT FROM p.shipped))
ORDER BY p.product_id
"""

# After quiescence the relay has sent everything.
UNSENT_EVENTS = """
SELECT event_id, type, order_id, attempts, last_error, occurred_at FROM outbox WHERE sent_at IS NULL ORDER BY sequence
"""

CHECKS: dict[str, str] = {
    "conservation": CONSERVATION,
    "decision_events": DECISION_EVENTS,
    "orphan_events": ORPHAN_EVENTS,
    "stock_events": STOCK_EVENTS,
    "unsent_events": UNSENT_EVENTS,
}


async def audit(conn: AsyncConnection[Any], *, limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """Runs every check; returns up to `limit` violating rows per check (an empty list: the check holds)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name, sql in CHECKS.items():
        cur = await conn.execute(f"SELECT * FROM ({sql}) v LIMIT %s", (limit,))  # type: ignore[arg-type]
        found[name] = [dict(row) for row in await cur.fetchall()]
    return found
