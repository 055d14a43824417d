"""The order outbox relay: sends what the orders database says must still reach the bus, and marks it sent.

Two kinds of rows, both written in the statement that made the decision (orders_repository.py):
* `order_events` rows go to topic `order-events` with `message_id` = `event_id` (duplicate detection drops a resend;
  consumers de-duplicate by event id as well);
* `verify_outbox` rows fall due when the checkout's budget ends; a due row whose order is still pending becomes a
  VerifyOrder message (`verify-{order_id}`, `-r{n}` for later attempts), one whose order has settled is skipped.

A batch is claimed with `FOR UPDATE SKIP LOCKED` (processes share the work) and marked in the same transaction, so a
crash before the mark resends (at-least-once). Events go out as one batch per pass (`send_batch`: in order, one
round trip and, on the local bus, one commit); a failed batch is recorded on each of its rows and sent whole again
next pass. A failed VerifyOrder send is recorded on its row and ends the batch; the rows after it wait for the next
pass. Every send is bounded by BUS_SEND_TIMEOUT_SECONDS. Each event's producer span is opened while its message is
built (the message carries that span's context); the batch's send follows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from opentelemetry import propagate, trace

from order_functions.application.ports import BatchSender, MessageSender, OutgoingMessage, RelayReport
from order_functions.contracts.order_events import OrderEvent
from valerix_common.db import Pool

log = logging.getLogger(__name__)
tracer = trace.get_tracer("valerix.orders.relay")

_CLAIM_EVENTS = (
    "SELECT event_id, event_uuid, order_id, customer_id, type, version, from_status, to_status, via, reason, at,"
    " traceparent, tracestate FROM order_events WHERE sent_at IS NULL ORDER BY event_id LIMIT %s"
    " FOR UPDATE SKIP LOCKED"
)
_CLAIM_VERIFIES = (
    "SELECT v.order_id, v.traceparent, v.tracestate, o.status, o.verify_attempts"
    " FROM verify_outbox v JOIN orders o USING (order_id) WHERE v.sent_at IS NULL AND v.due_at <= now()"
    " ORDER BY v.due_at LIMIT %s FOR UPDATE OF v SKIP LOCKED"
)
_NEXT_DUE = (
    "SELECT extract(epoch FROM min(due_at) - now())::float8 AS due_in FROM verify_outbox WHERE sent_at IS NULL"
)

VerifyMessage = Callable[[UUID, int], OutgoingMessage]


class RelayError(Exception):
    """A send failed; its row and the ones after it stay unsent and are retried."""


@dataclass(frozen=True)
class Destinations:
    events: BatchSender  # topic order-events
    events_name: str
    verify: MessageSender  # queue verify-order
    verify_name: str


class OrderOutboxRelay:
    def __init__(
        self, pool: Pool, destinations: Destinations, verify_message: VerifyMessage, *,
        send_timeout_s: float, batch_size: int = 100,
    ) -> None:
        self.pool = pool
        self.to = destinations
        self.verify_message = verify_message
        self.send_timeout_s = send_timeout_s
        self.batch_size = batch_size

    async def relay_once(self) -> RelayReport:
        """One pass over both kinds; raises RelayError (after marking what was sent) when a send failed."""
        failures: list[str] = []
        # verify intents first: a pending order's settlement waits on them; events only inform add-ons
        verifies, skipped = await self._verifies(failures)
        events = await self._events(failures)
        if failures:
            raise RelayError("; ".join(failures)[:500])
        return RelayReport(events=events, verifies=verifies, skipped=skipped)

    async def next_due_in(self) -> float | None:
        """Seconds until the next verify intent falls due (negative: overdue); None when none waits."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(_NEXT_DUE)
            row = await cur.fetchone()
        return None if row is None or row["due_in"] is None else float(row["due_in"])

    async def backlog(self) -> dict[str, int]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM order_events WHERE sent_at IS NULL) AS events,"
                " (SELECT count(*) FROM verify_outbox WHERE sent_at IS NULL) AS verifies"
            )
            row = await cur.fetchone()
        return {"events": int(row["events"]), "verifies": int(row["verifies"])} if row else {}

    async def _events(self, failures: list[str]) -> int:
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(_CLAIM_EVENTS, (self.batch_size,))
            rows = await cur.fetchall()
            if not rows:
                return 0
            # one batch in event-id order (each order's events in version order): one round trip and, on the local
            # bus, one commit for the lot instead of one per event
            try:
                await asyncio.wait_for(self.to.events.send_batch([self._event_message(r) for r in rows]),
                                       self.send_timeout_s)
            except Exception as exc:
                # all of them again next pass (some may have gone: duplicate detection and consumers drop repeats)
                await conn.execute(
                    "UPDATE order_events SET attempts = attempts + 1, last_error = %s WHERE event_id = ANY(%s)",
                    (f"{type(exc).__name__}: {exc}"[:500], [r["event_id"] for r in rows]),
                )
                failures.append(f"{len(rows)} events from {rows[0]['event_uuid']} to {self.to.events_name}: {exc!r}")
                return 0
            await conn.execute(
                "UPDATE order_events SET sent_at = now(), attempts = attempts + 1 WHERE event_id = ANY(%s)",
                ([r["event_id"] for r in rows],),
            )
        return len(rows)

    async def _verifies(self, failures: list[str]) -> tuple[int, int]:
        sent = 0
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(_CLAIM_VERIFIES, (self.batch_size,))
            rows = await cur.fetchall()
            settled = [r["order_id"] for r in rows if r["status"] != "pending"]
            if settled:  # one statement for every intent whose order settled meanwhile (the common case)
                await conn.execute(
                    "UPDATE verify_outbox SET sent_at = now(), outcome = 'skipped', attempts = attempts + 1"
                    " WHERE order_id = ANY(%s)", (settled,),
                )
            for row in (r for r in rows if r["status"] == "pending"):
                attempt = int(row["verify_attempts"]) + 1
                try:
                    await self._send_verify(row, attempt)
                except Exception as exc:
                    failures.append(f"verify {row['order_id']} to {self.to.verify_name}: {exc!r}")
                    await conn.execute(
                        "UPDATE verify_outbox SET attempts = attempts + 1, last_error = %s WHERE order_id = %s",
                        (f"{type(exc).__name__}: {exc}"[:500], row["order_id"]),
                    )
                    break
                await conn.execute(
                    "UPDATE orders SET verify_attempts = %s, verify_enqueued_at = now() WHERE order_id = %s",
                    (attempt, row["order_id"]),
                )
                await self._mark_verify(conn, row["order_id"], "sent")
                sent += 1
        if sent or settled:
            log.info("order outbox: %d VerifyOrder sent, %d skipped (already settled)", sent, len(settled))
        return sent, len(settled)

    @staticmethod
    async def _mark_verify(conn: Any, order_id: UUID, outcome: str) -> None:
        await conn.execute(
            "UPDATE verify_outbox SET sent_at = now(), outcome = %s, attempts = attempts + 1 WHERE order_id = %s",
            (outcome, order_id),
        )

    def _event_message(self, row: dict[str, Any]) -> OutgoingMessage:
        event = OrderEvent(
            event_id=row["event_uuid"], type=row["type"], order_id=row["order_id"], customer_id=row["customer_id"],
            version=row["version"], occurred_at=row["at"], status=row["to_status"], from_status=row["from_status"],
            reason=row["reason"], via=row["via"], traceparent=row["traceparent"], tracestate=row["tracestate"],
        )
        with self._producer_span(self.to.events_name, row, str(event.event_id)):
            properties = {"type": event.type, "source": "valerix-orders", "order_id": str(event.order_id)}
            propagate.inject(properties)  # the publish span when tracing is on ...
            properties.setdefault("traceparent", event.traceparent)  # ... else the transition's own context
            return OutgoingMessage(
                message_id=str(event.event_id), body=event.to_body(),
                application_properties={k: v for k, v in properties.items() if v},
            )

    async def _send_verify(self, row: dict[str, Any], attempt: int) -> None:
        with self._producer_span(self.to.verify_name, row, "") as span:
            span.set_attribute("valerix.order_id", str(row["order_id"]))
            span.set_attribute("valerix.verify_attempt", attempt)
            # built inside the producer span: the VerifyOrder processing span becomes its child, in the checkout's
            # trace (the span's parent is the context stored with the order)
            message = self.verify_message(row["order_id"], attempt)
            span.set_attribute("messaging.message.id", message.message_id)
            await asyncio.wait_for(self.to.verify.send(message), self.send_timeout_s)

    def _producer_span(self, destination: str, row: dict[str, Any], message_id: str) -> Any:
        parent = propagate.extract({"traceparent": row["traceparent"], "tracestate": row["tracestate"]})
        attributes = {"messaging.system": "servicebus", "messaging.operation.type": "send",
                      "messaging.destination.name": destination}
        if message_id:
            attributes["messaging.message.id"] = message_id
        return tracer.start_as_current_span(f"servicebus send {destination}", context=parent,
                                            kind=trace.SpanKind.PRODUCER, attributes=attributes)
