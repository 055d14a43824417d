"""The one seam through which every order changes state, whichever path (checkout, VerifyOrder, cancel, reconciler)
gets there first. The store's conditional update decides races; the loser reads the winner's result.

Every transition appends its order event here, in the statement that makes the transition (the order outbox), and
asks the relay to publish it; the relay runs off the caller's path, so no transition waits for the bus."""

from __future__ import annotations

import logging
import uuid

from opentelemetry import propagate

from order_functions.application.ports import (
    Metrics,
    NewOrderEvent,
    OrderStore,
    Outbox,
    ReservationOutcome,
    ReservationStatus,
)
from order_functions.contracts.order_events import event_type_for
from order_functions.domain.models import Order, OrderStatus, SettledVia

log = logging.getLogger(__name__)


def new_event(target: OrderStatus) -> NewOrderEvent:
    """A fresh event for the move to `target`, carrying the W3C trace context of the code that decided it."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return NewOrderEvent(
        event_id=uuid.uuid4(),
        event_type=event_type_for(target.value),
        traceparent=carrier.get("traceparent", ""),
        tracestate=carrier.get("tracestate", ""),
    )


def _target(outcome: ReservationOutcome) -> tuple[OrderStatus, str]:
    """The order state (and reason) that records what the inventory decided."""
    if outcome.status is ReservationStatus.RESERVED:
        return OrderStatus.CONFIRMED, ""
    if outcome.status is ReservationStatus.REJECTED:
        return OrderStatus.REJECTED, outcome.reason or "insufficient stock"
    # RELEASED: a cancellation fenced the reservation before it happened
    return OrderStatus.CANCELLED, "cancelled before stock was reserved"


class OrderTransitions:
    def __init__(self, orders: OrderStore, metrics: Metrics, outbox: Outbox) -> None:
        self.orders = orders
        self.metrics = metrics
        self.outbox = outbox

    async def move(self, order: Order, target: OrderStatus, via: SettledVia, reason: str) -> Order:
        """The one place an order changes state, and the one place its events are made."""
        updated = await self.orders.transition(order.order_id, target, via, reason, event=new_event(target))
        if updated is not None:
            log.info("order %s -> %s via %s", order.order_id, target.value, via.value)
            self.metrics.record_outcome(target.value, via.value)
            self.outbox.kick()
            return updated
        current = await self.orders.get(order.order_id)  # someone else settled it first; theirs stands
        assert current is not None
        return current

    async def settle(self, order: Order, outcome: ReservationOutcome, via: SettledVia) -> Order:
        target, reason = _target(outcome)
        return await self.move(order, target, via, reason)
