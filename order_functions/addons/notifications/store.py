"""The add-on's tables in PostgreSQL (schema `notifications`, with its own migration history)."""

from __future__ import annotations

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
_SCHEMA_LOCK_KEY = 0x4E4F5449  # "NOTI": serialises concurrent first start-ups


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
    """Creates/upgrades the schema; its versions live in `notifications.schema_migrations`, not the orders'."""
    async with pool.connection() as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK_KEY,))
        try:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            await conn.execute(f"SET search_path TO {SCHEMA}")
            try:
                return await apply_migrations(conn, MIGRATIONS)
            finally:
                await conn.execute("RESET search_path")
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK_KEY,))


# The record of the event and its notification (if it has one) in one statement: both commit or neither does, and
# a redelivery only counts itself.
_APPLY = (
    "WITH processed AS (INSERT INTO notifications.processed_events (event_id, order_id, type, version)"
    "   VALUES (%(event_id)s, %(order_id)s, %(type)s, %(version)s) ON CONFLICT (event_id) DO UPDATE"
    "   SET deliveries = notifications.processed_events.deliveries + 1"
    "   RETURNING deliveries = 1 AS fresh),"
    " noted AS (INSERT INTO notifications.notifications"
    "   (event_id, order_id, customer_id, type, message, occurred_at)"
    "   SELECT %(event_id)s, %(order_id)s, %(customer_id)s, %(type)s, %(message)s::text, %(occurred_at)s"
    "   FROM processed WHERE processed.fresh AND %(message)s::text IS NOT NULL RETURNING 1)"
    " SELECT fresh, (SELECT count(*) FROM noted) AS noted FROM processed"
)


class NotificationStore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def apply(self, event: OrderEvent) -> bool:
        """Applies the event once: True the first time, False for a redelivery (nothing written again)."""
        text = notification_text(event)
        params = {"event_id": event.event_id, "order_id": event.order_id, "type": event.type,
                  "version": event.version, "customer_id": event.customer_id, "message": text,
                  "occurred_at": event.occurred_at}
        async with self.pool.connection() as conn:
            cur = await conn.execute(_APPLY, params)
            row = await cur.fetchone()
        return bool(row and row["fresh"])

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
