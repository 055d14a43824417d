"""Hand a pending order to the `verify-order` queue, whose handler settles it when the inventory answers."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from uuid import UUID

from opentelemetry import propagate, trace

from order_functions.application.ports import MessageSender, OrderStore, OutgoingMessage

log = logging.getLogger(__name__)
tracer = trace.get_tracer("valerix.orders")


def verify_message(order_id: UUID, attempt: int) -> OutgoingMessage:
    """message_id derives from the order id so duplicate detection drops repeats of the same attempt."""
    properties: dict[str, str] = {}
    propagate.inject(properties)  # W3C traceparent: the bus hop stays in the checkout's trace
    message_id = f"verify-{order_id}" if attempt <= 1 else f"verify-{order_id}-r{attempt}"
    body = json.dumps({"order_id": str(order_id), "attempt": attempt}).encode()
    return OutgoingMessage(message_id=message_id, body=body, application_properties=properties)


def parse_verify_body(body: bytes) -> UUID:
    data: Any = json.loads(body)
    return UUID(str(data["order_id"]))


class VerifyQueue:
    def __init__(self, orders: OrderStore, bus: MessageSender, queue_name: str, send_timeout_s: float) -> None:
        self.orders = orders
        self.bus = bus
        self.queue_name = queue_name
        self.send_timeout_s = send_timeout_s

    async def enqueue(self, order_id: UUID) -> None:
        """Never raises for the bus: the order is pending in the database and the reconciler re-sends."""
        attempt = await self.orders.mark_verify_enqueued(order_id)
        with tracer.start_as_current_span("servicebus send verify-order", kind=trace.SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.system", "servicebus")
            span.set_attribute("messaging.operation.type", "send")
            span.set_attribute("messaging.destination.name", self.queue_name)
            span.set_attribute("valerix.order_id", str(order_id))
            span.set_attribute("valerix.verify_attempt", attempt)
            # built inside the producer span: the traceparent it carries is this span's, so the VerifyOrder
            # processing span becomes its child in the same trace
            message = verify_message(order_id, attempt)
            span.set_attribute("messaging.message.id", message.message_id)
            try:
                # bounded: an unreachable bus must not hold the customer's answer (the reconciler re-sends)
                await asyncio.wait_for(self.bus.send(message), timeout=self.send_timeout_s)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(trace.Status(trace.StatusCode.ERROR, f"send failed: {type(exc).__name__}"))
                log.error("order %s: VerifyOrder send failed (reconciler will retry): %r", order_id, exc, exc_info=True)
