"""Orders, idempotency keys and the order outbox in PostgreSQL. Every state change is a conditional update that
writes its order event in the same statement."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import PoolTimeout

from order_functions.application.ports import (
    Created,
    CreateResult,
    InFlight,
    KeyMismatch,
    Limited,
    NewOrderEvent,
    Replay,
    StoreUnavailable,
)
from order_functions.domain.models import LineItem, Order, OrderStatus, SettledVia, sources_for
from order_functions.domain.rate_limit import RatePolicy
from order_functions.domain.validation import CheckoutRequest
from order_functions.infrastructure.rate_limiter import SLOT, retry_after_s, slot_params
from valerix_common.db import Pool

MIGRATIONS = Path(__file__).parent / "migrations"

_ORDER_COLUMNS = (
    "order_id, customer_id, status, reason, items, created_at, updated_at, settled_via, settled_at,"
    " verify_attempts, cancel_requested_at"
)
ORDER_COLUMNS = _ORDER_COLUMNS  # for the other repositories of the orders database that read an order
# The order, its order.placed event and its verify intent: one statement, so all three commit or none does. With a
# rate policy the customer's checkout slot is a CTE of the same statement, and no slot means no order.
def _insert_order(in_slot: bool) -> str:
    source = "SELECT %(id)s::uuid, %(customer)s, 'pending', %(items)s::jsonb"
    return (
        f"WITH {SLOT + ',' if in_slot else ''}"
        " o AS (INSERT INTO orders (order_id, customer_id, status, items)"
        f"  {source}{' WHERE EXISTS (SELECT 1 FROM slot)' if in_slot else ''} RETURNING {_ORDER_COLUMNS}),"
        " e AS (INSERT INTO order_events (order_id, to_status, via, event_uuid, customer_id, type, version,"
        "   traceparent, tracestate)"
        "  SELECT order_id, 'pending', 'checkout', %(event_id)s, customer_id, %(event_type)s, 1, %(tp)s, %(ts)s"
        "  FROM o),"
        " v AS (INSERT INTO verify_outbox (order_id, due_at, traceparent, tracestate)"
        "  SELECT order_id, created_at + make_interval(secs => %(verify_after)s), %(tp)s, %(ts)s FROM o)"
        " SELECT * FROM o"
    )


_INSERT_ORDER = _insert_order(in_slot=False)
_INSERT_ORDER_IN_SLOT = _insert_order(in_slot=True)
# Conditional on the source states; the event takes the version bumped under the row lock.
_TRANSITION = (
    "WITH before AS (SELECT status FROM orders WHERE order_id = %(id)s),"
    " o AS (UPDATE orders SET status = %(to)s, updated_at = now(), event_version = event_version + 1,"
    "   reason = CASE WHEN %(reason)s = '' THEN reason ELSE %(reason)s END,"
    "   settled_via = COALESCE(settled_via, %(via)s), settled_at = COALESCE(settled_at, now())"
    "   WHERE order_id = %(id)s AND status = ANY(%(sources)s)"
    f"  RETURNING {_ORDER_COLUMNS}, event_version),"
    " e AS (INSERT INTO order_events (order_id, from_status, to_status, via, reason, event_uuid, customer_id, type,"
    "   version, traceparent, tracestate)"
    "   SELECT o.order_id, (SELECT status FROM before), o.status, %(via)s, %(reason)s, %(event_id)s, o.customer_id,"
    "   %(event_type)s, o.event_version, %(tp)s, %(ts)s FROM o)"
    " SELECT * FROM o"
)


def _event_params(event: NewOrderEvent) -> dict[str, Any]:
    return {"event_id": event.event_id, "event_type": event.event_type, "tp": event.traceparent,
            "ts": event.tracestate}

def order_from_row(row: dict[str, Any]) -> Order:
    items = row["items"] if not isinstance(row["items"], str) else json.loads(row["items"])
    return Order(
        order_id=row["order_id"],
        customer_id=row["customer_id"],
        status=OrderStatus(row["status"]),
        items=tuple(LineItem(p, q) for p, q in items),
        reason=row["reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        settled_via=SettledVia(row["settled_via"]) if row["settled_via"] else None,
        settled_at=row["settled_at"],
        verify_attempts=row["verify_attempts"],
        cancel_requested=row["cancel_requested_at"] is not None,
    )


@asynccontextmanager
async def connection(pool: Pool, wait_s: float | None = None) -> AsyncIterator[AsyncConnection[dict[str, Any]]]:
    """A pooled connection; a database that cannot be reached becomes the port's StoreUnavailable."""
    try:
        async with pool.connection(timeout=wait_s) as conn:
            yield conn
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise StoreUnavailable(f"orders database unavailable: {type(exc).__name__}: {exc}"[:500]) from exc


class OrdersRepository:
    """The OrderStore port in PostgreSQL."""

    def __init__(self, pool: Pool, in_flight_s: float = 30.0) -> None:
        self.pool = pool
        self.in_flight_s = in_flight_s

    async def create(
        self,
        order_id: UUID,
        request: CheckoutRequest,
        idempotency_key: str | None,
        *,
        event: NewOrderEvent,
        verify_after_s: float,
        wait_s: float | None = None,
        rate: RatePolicy | None = None,
    ) -> CreateResult:
        """Claims the key (if any) and inserts the pending order, its event and its verify intent in one
        transaction; with `rate`, only if the customer has a checkout slot, taken by the same statement. The
        caller bounds the whole write (and cancels it, which psycopg forwards to the server); `wait_s` bounds the
        wait for a pooled connection, so an empty pool (a restarting server) answers in time."""
        params = {
            "id": order_id, "customer": request.customer_id, "verify_after": verify_after_s,
            "items": Jsonb([[i.product_id, i.quantity] for i in request.items]), **_event_params(event),
            **(slot_params(rate) if rate else {}),
        }
        if idempotency_key is None:
            # Without a key the order, its event, its verify intent and its slot are one statement, atomic on its
            # own: no BEGIN/COMMIT round trips (two of the checkout's round trips to the orders database).
            async with connection(self.pool, wait_s) as conn:
                order = await self._insert(conn, params, rate)
                return Created(order) if order else Limited(await self._retry_after(conn, request, rate))
        async with connection(self.pool, wait_s) as conn:
            async with conn.transaction() as tx:
                existing = await self._claim_key(conn, order_id, request, idempotency_key)
                if existing is not None:
                    return existing
                order = await self._insert(conn, params, rate)
                if order is not None:
                    return Created(order)
                limited = Limited(await self._retry_after(conn, request, rate))
                raise psycopg.Rollback(tx)  # the key's claim goes too: a limited request leaves nothing behind
            return limited

    @staticmethod
    async def _insert(
        conn: AsyncConnection[dict[str, Any]], params: dict[str, Any], rate: RatePolicy | None
    ) -> Order | None:
        cur = await conn.execute(_INSERT_ORDER_IN_SLOT if rate else _INSERT_ORDER, params)
        row = await cur.fetchone()
        return order_from_row(row) if row else None

    @staticmethod
    async def _retry_after(conn: AsyncConnection[dict[str, Any]], request: CheckoutRequest,
                           rate: RatePolicy | None) -> int:
        assert rate is not None  # only a statement with a slot inserts nothing
        return await retry_after_s(conn, request.customer_id, rate)

    async def _claim_key(
        self, conn: AsyncConnection[dict[str, Any]], order_id: UUID, request: CheckoutRequest, key: str
    ) -> CreateResult | None:
        for _ in range(2):  # a second pass only after deleting an expired key
            cur = await conn.execute(
                "INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, order_id, expires_at)"
                " VALUES (%s, %s, %s, %s, now() + interval '24 hours') ON CONFLICT DO NOTHING",
                (request.customer_id, key, request.fingerprint(), order_id),
            )
            if cur.rowcount == 1:
                return None
            cur = await conn.execute(
                "SELECT k.fingerprint, k.order_id, k.expires_at < now() AS expired,"
                "  k.completed_at IS NULL AND k.created_at > now() - make_interval(secs => %s) AS in_flight"
                " FROM idempotency_keys k WHERE customer_id = %s AND idem_key = %s FOR UPDATE",
                (self.in_flight_s, request.customer_id, key),
            )
            row = await cur.fetchone()
            if row is None:
                continue  # deleted between our insert and select: try again
            if row["expired"]:
                await conn.execute(
                    "DELETE FROM idempotency_keys WHERE customer_id = %s AND idem_key = %s", (request.customer_id, key)
                )
                continue
            if row["fingerprint"] != request.fingerprint():
                return KeyMismatch(row["order_id"])
            if row["in_flight"]:
                return InFlight(row["order_id"])
            order = await self._get(conn, row["order_id"])
            assert order is not None
            return Replay(order)
        raise RuntimeError("idempotency key could not be claimed")

    async def complete_key(self, customer_id: str, key: str) -> None:
        async with connection(self.pool) as conn:
            await conn.execute(
                "UPDATE idempotency_keys SET completed_at = now()"
                " WHERE customer_id = %s AND idem_key = %s AND completed_at IS NULL",
                (customer_id, key),
            )

    async def get(self, order_id: UUID) -> Order | None:
        async with connection(self.pool) as conn:
            return await self._get(conn, order_id)

    async def _get(self, conn: AsyncConnection[dict[str, Any]], order_id: UUID) -> Order | None:
        cur = await conn.execute(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = %s", (order_id,))
        row = await cur.fetchone()
        return order_from_row(row) if row else None

    async def transition(
        self, order_id: UUID, to: OrderStatus, via: SettledVia, reason: str = "", *, event: NewOrderEvent
    ) -> Order | None:
        """Moves the order to `to` if its current state allows it, with its event; None when it does not."""
        async with connection(self.pool) as conn:
            cur = await conn.execute(
                _TRANSITION,
                {
                    "id": order_id,
                    "to": to.value,
                    "via": via.value,
                    "reason": reason,
                    "sources": [s.value for s in sources_for(to)],
                    **_event_params(event),
                },
            )
            row = await cur.fetchone()
            return order_from_row(row) if row else None

    async def rearm_verify(self, order_id: UUID) -> None:
        """Due now; an intent already waiting keeps the earlier of the two times."""
        async with connection(self.pool) as conn:
            await conn.execute(
                "INSERT INTO verify_outbox (order_id, due_at) VALUES (%s, now())"
                " ON CONFLICT (order_id) DO UPDATE SET sent_at = NULL, outcome = '',"
                "   due_at = CASE WHEN verify_outbox.sent_at IS NULL THEN LEAST(verify_outbox.due_at, now())"
                "   ELSE now() END",
                (order_id,),
            )

    async def request_cancel(self, order_id: UUID) -> Order | None:
        """Records the intent first, so a crash between the release and the state change is finished later."""
        async with connection(self.pool) as conn:
            cur = await conn.execute(
                "UPDATE orders SET cancel_requested_at = COALESCE(cancel_requested_at, now())"
                f" WHERE order_id = %s AND status IN ('pending', 'confirmed') RETURNING {_ORDER_COLUMNS}",
                (order_id,),
            )
            row = await cur.fetchone()
            return order_from_row(row) if row else None

    async def stale_pending(self, stale_after_s: float, give_up_after_s: float, limit: int) -> list[Order]:
        async with connection(self.pool) as conn:
            cur = await conn.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE status = 'pending' AND cancel_requested_at IS NULL"
                " AND created_at < now() - make_interval(secs => %(stale)s)"
                " AND created_at >= now() - make_interval(secs => %(give_up)s)"
                " AND (verify_enqueued_at IS NULL OR verify_enqueued_at < now() - make_interval(secs => %(stale)s))"
                " ORDER BY created_at LIMIT %(limit)s",
                {"stale": stale_after_s, "give_up": give_up_after_s, "limit": limit},
            )
            return [order_from_row(r) for r in await cur.fetchall()]

    async def give_up_expired(self, give_up_after_s: float, limit: int) -> int:
        async with connection(self.pool) as conn:
            cur = await conn.execute(
                "UPDATE orders SET cancel_requested_at = now() WHERE order_id IN ("
                " SELECT order_id FROM orders WHERE status = 'pending' AND cancel_requested_at IS NULL"
                " AND created_at < now() - make_interval(secs => %s) ORDER BY created_at LIMIT %s)",
                (give_up_after_s, limit),
            )
            return cur.rowcount

    async def cancel_requested(self, limit: int) -> list[Order]:
        async with connection(self.pool) as conn:
            cur = await conn.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders WHERE cancel_requested_at IS NOT NULL"
                " AND status IN ('pending', 'confirmed') ORDER BY cancel_requested_at LIMIT %s",
                (limit,),
            )
            return [order_from_row(r) for r in await cur.fetchall()]

    async def purge_expired_keys(self, limit: int) -> int:
        async with connection(self.pool) as conn:
            cur = await conn.execute(
                "DELETE FROM idempotency_keys WHERE ctid IN ("
                " SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT %s)",
                (limit,),
            )
            return cur.rowcount

    async def recent(
        self, *, status: OrderStatus | None, customer_id: str | None, limit: int, before: tuple[datetime, UUID] | None
    ) -> list[Order]:
        clauses: list[str] = []
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            clauses.append("status = %(status)s")
            params["status"] = status.value
        if customer_id is not None:
            clauses.append("customer_id = %(customer)s")
            params["customer"] = customer_id
        if before is not None:
            clauses.append("(created_at, order_id) < (%(before_at)s, %(before_id)s)")
            params["before_at"], params["before_id"] = before
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        async with connection(self.pool) as conn:
            cur = await conn.execute(
                f"SELECT {_ORDER_COLUMNS} FROM orders {where} ORDER BY created_at DESC, order_id DESC"
                " LIMIT %(limit)s",
                params,
            )
            return [order_from_row(r) for r in await cur.fetchall()]

    async def ping(self) -> None:
        async with connection(self.pool, wait_s=2.0) as conn:
            await conn.execute("SELECT 1 FROM orders LIMIT 1")
