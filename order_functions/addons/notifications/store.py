"""The add-on's tables in PostgreSQL (schema `notifications`, with its own migration history)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from order_functions.addons.notifications.messages import notification_text
from order_functions.contracts.order_events import OrderEvent
from valerix_common.db import Pool
from valerix_common.migrations import apply_migrations

SCHEMA = "notifications"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class Notification:
    event_id: UUID
    order_id: UUID
    customer_id: str
    type: str
    message: str
    occurred_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": str(self.event_id), "order_id": str(self.order_id), "customer_id": self.customer_id,
            "type": self.type, "message": self.message, "occurred_at": self.occurred_at.isoformat(),
        }


async def ensure_schema(pool: Pool) -> list[int]:
    """Creates/upgrades the schema; its versions live in `notifications.schema_migrations`, not the orders'. Safe
    behind PgBouncer: the schema and search_path are set per migration transaction (`apply_migrations(schema=)`)."""
    async with pool.connection() as conn:
        return await apply_migrations(conn, MIGRATIONS, schema=SCHEMA)


# The records of a batch of events and their notifications (for those that have one) in one statement: each event's
# record and notification commit together or not at all, and a redelivery only counts itself.
_APPLY_MANY = (
    "WITH input AS (SELECT * FROM unnest(%(event_ids)s::uuid[], %(order_ids)s::uuid[], %(types)s::text[],"
    "   %(versions)s::int[], %(customers)s::text[], %(messages)s::text[], %(ats)s::timestamptz[])"
    "   AS i(event_id, order_id, type, version, customer_id, message, occurred_at)),"
    " processed AS (INSERT INTO notifications.processed_events (event_id, order_id, type, version)"
    "   SELECT event_id, order_id, type, version FROM input ON CONFLICT (event_id) DO UPDATE"
    "   SET deliveries = notifications.processed_events.deliveries + 1"
    "   RETURNING event_id, deliveries = 1 AS fresh),"
    " noted AS (INSERT INTO notifications.notifications"
    "   (event_id, order_id, customer_id, type, message, occurred_at)"
    "   SELECT i.event_id, i.order_id, i.customer_id, i.type, i.message, i.occurred_at"
    "   FROM input i JOIN processed p ON p.event_id = i.event_id"
    "   WHERE p.fresh AND i.message IS NOT NULL RETURNING 1)"
    " SELECT event_id, fresh, (SELECT count(*) FROM noted) AS noted FROM processed"
)


class NotificationStore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def apply_many(self, events: Sequence[OrderEvent]) -> list[bool]:
        """Applies each event once, the batch in one statement; one flag per event, in order: True the first time,
        False for a redelivery (nothing written again). An event id twice in the batch (two messages of one event)
        is applied once: its later copies are redeliveries."""
        first_copies: dict[UUID, OrderEvent] = {}
        for event in events:
            first_copies.setdefault(event.event_id, event)
        unique = list(first_copies.values())
        if not unique:
            return []
        texts = [notification_text(e) for e in unique]
        params = {"event_ids": [e.event_id for e in unique], "order_ids": [e.order_id for e in unique],
                  "types": [e.type for e in unique], "versions": [e.version for e in unique],
                  "customers": [e.customer_id for e in unique], "messages": texts,
                  "ats": [e.occurred_at for e in unique]}
        async with self.pool.connection() as conn:
            cur = await conn.execute(_APPLY_MANY, params)
            fresh = {row["event_id"]: bool(row["fresh"]) for row in await cur.fetchall()}
        return [fresh.get(e.event_id, False) and first_copies[e.event_id] is e for e in events]

    async def for_order(self, order_id: UUID, *, customer_id: str | None) -> list[Notification]:
        """The order's notifications; with `customer_id`, only if they are that customer's."""
        if customer_id is None:
            return await self._select("order_id = %s ORDER BY occurred_at, event_id", order_id)
        return await self._select(
            "order_id = %s AND customer_id = %s ORDER BY occurred_at, event_id", order_id, customer_id
        )

    async def for_customer(self, customer_id: str, limit: int) -> list[Notification]:
        return await self._select("customer_id = %s ORDER BY occurred_at DESC, event_id LIMIT %s", customer_id, limit)

    async def _select(self, where: str, *params: Any) -> list[Notification]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT event_id, order_id, customer_id, type, message, occurred_at FROM notifications.notifications"
                f" WHERE {where}",
                params,
            )
            return [Notification(**row) for row in await cur.fetchall()]
