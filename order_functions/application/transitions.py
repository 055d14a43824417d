"""The one seam through which every order changes state, whichever path (checkout, VerifyOrder, cancel, reconciler)
gets there first. The store's conditional update decides races; the loser reads the winner's result."""

from __future__ import annotations

import logging

from order_functions.application.ports import Metrics, OrderStore, ReservationOutcome, ReservationStatus
from order_functions.domain.models import Order, OrderStatus, SettledVia

log = logging.getLogger(__name__)


def _target(outcome: ReservationOutcome) -> tuple[OrderStatus, str]:
    """The order state (and reason) that records what the inventory decided."""
    if outcome.status is ReservationStatus.RESERVED:
        return OrderStatus.CONFIRMED, ""
    if outcome.status is ReservationStatus.REJECTED:
        return OrderStatus.REJECTED, outcome.reason or "insufficient stock"
    # RELEASED: a cancellation fenced the reservation before it happened
    return OrderStatus.CANCELLED, "cancelled before stock was reserved"


class OrderTransitions:
    def __init__(self, orders: OrderStore, metrics: Metrics) -> None:
        self.orders = orders
        self.metrics = metrics

    async def move(self, order: Order, target: OrderStatus, via: SettledVia, reason: str) -> Order:
        """The one place an order changes state (the seam for per-transition events)."""
        updated = await self.orders.transition(order.order_id, target, via, reason)
        if updated is not None:
            log.info("order %s -> %s via %s", order.order_id, target.value, via.value)
            self.metrics.record_outcome(target.value, via.value)
            return updated
        current = await self.orders.get(order.order_id)  # someone else settled it first; theirs stands
        assert current is not None
        return current

    async def settle(self, order: Order, outcome: ReservationOutcome, via: SettledVia) -> Order:
        target, reason = _target(outcome)
        return await self.move(order, target, via, reason)
