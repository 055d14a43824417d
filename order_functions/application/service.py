"""The order use cases: checkout, VerifyOrder settlement, cancellation and reconciliation (DESIGN.md §2).

State changes all go through `_settle` / the repository's conditional transitions, so the HTTP path, the
VerifyOrder handler and the reconciler can race freely and still agree.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from opentelemetry import propagate, trace

from order_functions.application.catalogue import Catalogue
from order_functions.application.ports import (
    Inventory,
    InventoryRefused,
    InventoryUnavailable,
    ReservationOutcome,
    ReservationStatus,
)
from order_functions.config import OrderConfig
from order_functions.domain.models import Order, OrderStatus, SettledVia
from order_functions.domain.problems import Problem
from order_functions.domain.validation import CheckoutRequest
from order_functions.infrastructure import metrics
from order_functions.infrastructure.messaging import MessageSender, OutgoingMessage
from order_functions.infrastructure.orders_repository import (
    Created,
    InFlight,
    KeyMismatch,
    OrdersRepository,
    Replay,
)

log = logging.getLogger(__name__)
tracer = trace.get_tracer("valerix.orders")


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    replayed: bool = False


@dataclass
class ReconcileReport:
    reenqueued: int = 0
    gave_up: int = 0
    cancelled: int = 0
    keys_purged: int = 0
    errors: list[str] = field(default_factory=list)


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


class OrderService:
    def __init__(
        self,
        config: OrderConfig,
        orders: OrdersRepository,
        inventory: Inventory,
        bus: MessageSender,
        catalogue: Catalogue | None = None,
    ) -> None:
        self.config = config
        self.orders = orders
        self.inventory = inventory
        self.bus = bus
        self.catalogue = catalogue or Catalogue(inventory)

    # --- checkout ---------------------------------------------------------------------------------------------
    async def checkout(self, request: CheckoutRequest, idempotency_key: str | None) -> CheckoutResult:
        # One budget for the whole inventory conversation: a cold catalogue must not double the wait.
        budget = self.config.inventory_timeout_s
        deadline = time.monotonic() + budget
        unknown = await self.catalogue.unknown((i.product_id for i in request.items), budget * 0.25)
        if unknown:
            raise Problem(
                422, "Unknown product", f"no such product: {', '.join(unknown)}", "unknown-product",
                errors=[{"field": "items", "message": f"unknown product {p}"} for p in unknown],
            )
        created = await self.orders.create(uuid.uuid4(), request, idempotency_key)
        match created:
            case Replay(order):
                return CheckoutResult(order, replayed=True)
            case InFlight(order_id):
                raise Problem(
                    409, "Request in flight",
                    f"a request with this Idempotency-Key is still being processed (order {order_id}); retry shortly",
                    "idempotency-in-flight", extra={"order_id": str(order_id)},
                )
            case KeyMismatch(order_id):
                raise Problem(
                    422, "Idempotency-Key reused",
                    "this Idempotency-Key was already used with a different request body",
                    "idempotency-key-reused", extra={"order_id": str(order_id)},
                )
            case Created(order):
                pass
        trace.get_current_span().set_attribute("valerix.order_id", str(order.order_id))
        try:
            remaining = max(deadline - time.monotonic(), budget * 0.5)
            settled = await self._reserve_and_settle(order, remaining, SettledVia.INVENTORY_REPLY)
        except InventoryUnavailable as exc:
            log.info("order %s: no inventory answer in %.1fs (%s); handing to VerifyOrder",
                     order.order_id, self.config.inventory_timeout_s, exc.code)
            await self.enqueue_verify(order.order_id)
            settled = order
        finally:
            if idempotency_key is not None:
                await self.orders.complete_key(request.customer_id, idempotency_key)
        trace.get_current_span().set_attribute("valerix.order_status", settled.status.value)
        return CheckoutResult(settled)

    async def _reserve_and_settle(self, order: Order, timeout_s: float, via: SettledVia) -> Order:
        try:
            with metrics.inventory_call("ReserveStock"):
                outcome = await self.inventory.reserve(order.order_id, order.items, timeout_s)
        except InventoryRefused as exc:
            # A product vanished between the catalogue check and the call, or the id was reused: final answer.
            log.warning("order %s refused by inventory: %s", order.order_id, exc)
            outcome = ReservationOutcome(ReservationStatus.REJECTED, f"refused by inventory: {exc.detail}")
        return await self._settle(order, outcome, via)

    async def _settle(self, order: Order, outcome: ReservationOutcome, via: SettledVia) -> Order:
        target, reason = {
            ReservationStatus.RESERVED: (OrderStatus.CONFIRMED, ""),
            ReservationStatus.REJECTED: (OrderStatus.REJECTED, outcome.reason or "insufficient stock"),
            ReservationStatus.RELEASED: (OrderStatus.CANCELLED, "cancelled before stock was reserved"),
        }[outcome.status]
        return await self._move(order, target, via, reason)

    async def _move(self, order: Order, target: OrderStatus, via: SettledVia, reason: str) -> Order:
        """The one place an order changes state (the seam for per-transition events)."""
        updated = await self.orders.transition(order.order_id, target, via, reason)
        if updated is not None:
            log.info("order %s -> %s via %s", order.order_id, target.value, via.value)
            metrics.record_outcome(target.value, via.value)
            return updated
        current = await self.orders.get(order.order_id)  # someone else settled it first; theirs stands
        assert current is not None
        return current

    async def enqueue_verify(self, order_id: UUID) -> None:
        attempt = await self.orders.mark_verify_enqueued(order_id)
        with tracer.start_as_current_span("servicebus send verify-order", kind=trace.SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.system", "servicebus")
            span.set_attribute("messaging.operation.type", "send")
            span.set_attribute("messaging.destination.name", self.config.verify_queue)
            span.set_attribute("valerix.order_id", str(order_id))
            span.set_attribute("valerix.verify_attempt", attempt)
            # built inside the producer span: the traceparent it carries is this span's, so the VerifyOrder
            # processing span becomes its child in the same trace
            message = verify_message(order_id, attempt)
            span.set_attribute("messaging.message.id", message.message_id)
            try:
                # bounded: an unreachable bus must not hold the customer's answer (the reconciler re-sends)
                await asyncio.wait_for(self.bus.send(message), timeout=self.config.bus_send_timeout_s)
            except Exception as exc:
                # The order is safe: it is pending in the database and the reconciler re-enqueues it.
                span.record_exception(exc)
                span.set_status(trace.Status(trace.StatusCode.ERROR, f"send failed: {type(exc).__name__}"))
                log.error("order %s: VerifyOrder send failed (reconciler will retry): %r", order_id, exc, exc_info=True)

    # --- VerifyOrder --------------------------------------------------------------------------------------------
    async def verify(self, order_id: UUID, delivery_count: int) -> Order | None:
        """Safe to run twice, concurrently, or after the HTTP path settled the order. Raises while the
        inventory stays unreachable, so the bus redelivers (and dead-letters after its max delivery count)."""
        order = await self.orders.get(order_id)
        if order is None:
            log.error("VerifyOrder for unknown order %s (delivery %d): dropped", order_id, delivery_count)
            return None
        if not order.is_pending:
            log.info("VerifyOrder %s: already %s", order_id, order.status.value)
            return order
        return await self._reserve_and_settle(order, self.config.verify_timeout_s, SettledVia.VERIFY_ORDER)

    # --- cancellation -------------------------------------------------------------------------------------------
    async def cancel(self, order_id: UUID) -> tuple[Order, bool]:
        """Returns the order and whether the cancellation is complete (False: accepted, finishing later)."""
        order = await self.orders.get(order_id)
        if order is None:
            raise Problem(404, "Order not found", f"no order {order_id}", "order-not-found")
        if order.status is OrderStatus.REJECTED:
            raise Problem(409, "Order was rejected", "a rejected order holds no stock to cancel", "order-rejected",
                          extra={"order": order.to_json()})
        if order.status is OrderStatus.CANCELLED:
            return order, True
        await self.orders.request_cancel(order_id)
        try:
            finished = await self._finish_cancel(order, SettledVia.CANCEL, "cancelled by customer")
        except InventoryUnavailable as exc:
            log.warning("cancel of %s accepted, release pending (%s); the reconciler finishes it", order_id, exc)
            current = await self.orders.get(order_id)
            assert current is not None
            return current, False
        if finished.status is OrderStatus.REJECTED:
            raise Problem(409, "Order was rejected", "the inventory had rejected this order; nothing to cancel",
                          "order-rejected", extra={"order": finished.to_json()})
        return finished, True

    async def _finish_cancel(self, order: Order, via: SettledVia, reason: str) -> Order:
        with metrics.inventory_call("ReleaseReservation"):
            release = await self.inventory.release(order.order_id, reason, self.config.inventory_timeout_s)
        if release.status is ReservationStatus.REJECTED:
            # Inventory had already decided REJECTED (its reply was lost): the order never held stock. Its true
            # outcome is 'rejected', not 'cancelled' - record what the inventory decided.
            outcome = ReservationOutcome(ReservationStatus.REJECTED, "insufficient stock (decided before the cancel)")
            return await self._settle(order, outcome, via)
        return await self._move(order, OrderStatus.CANCELLED, via, reason)

    # --- reconciler ---------------------------------------------------------------------------------------------
    async def reconcile(self, batch: int = 200) -> ReconcileReport:
        report = ReconcileReport()
        report.gave_up = await self.orders.give_up_expired(self.config.give_up_after_s, batch)
        for order in await self.orders.cancel_requested(batch):
            try:
                await self._finish_cancel(order, SettledVia.RECONCILER, "cancellation completed by the reconciler")
                report.cancelled += 1
            except InventoryUnavailable as exc:
                report.errors.append(f"{order.order_id}: {exc}")
                log.warning("reconciler: release of %s failed, next run retries: %s", order.order_id, exc)
        stale = await self.orders.stale_pending(self.config.stale_after_s, self.config.give_up_after_s, batch)
        for order in stale:
            await self.enqueue_verify(order.order_id)
            report.reenqueued += 1
        report.keys_purged = await self.orders.purge_expired_keys(1000)
        if report.reenqueued or report.gave_up or report.cancelled:
            log.info("reconciler: %s", report)
        return report
