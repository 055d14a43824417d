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


class NotificationStore:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def apply(self, event: OrderEvent) -> bool:
        """Applies the event once: True the first time, False for a redelivery (nothing written again)."""
        text = notification_text(event)
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(
                "INSERT INTO notifications.processed_events (event_id, order_id, type, version)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (event_id) DO UPDATE"
                " SET deliveries = notifications.processed_events.deliveries + 1"
                " RETURNING deliveries = 1 AS fresh",
                (event.event_id, event.order_id, event.type, event.version),
            )
            row = await cur.fetchone()
            fresh = bool(row and row["fresh"])
            if fresh and text is not None:
                await conn.execute(
                    "INSERT INTO notifications.notifications"
                    " (event_id, order_id, customer_id, type, message, occurred_at) VALUES (%s, %s, %s, %s, %s, %s)",
                    (event.event_id, event.order_id, event.customer_id, event.type, text, event.occurred_at),
                )
        return fresh

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
