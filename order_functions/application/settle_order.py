"""Ask the inventory to reserve an order's stock and record its answer (the checkout's fast path and VerifyOrder)."""

from __future__ import annotations

import logging

from order_functions.application.ports import (
    Inventory,
    InventoryRefused,
    Metrics,
    ReservationOutcome,
    ReservationStatus,
)
from order_functions.application.transitions import OrderTransitions
from order_functions.domain.models import Order, SettledVia

log = logging.getLogger(__name__)


class SettleOrder:
    def __init__(self, inventory: Inventory, transitions: OrderTransitions, metrics: Metrics) -> None:
        self.inventory = inventory
        self.transitions = transitions
        self.metrics = metrics

    async def __call__(self, order: Order, timeout_s: float, via: SettledVia) -> Order:
        """Raises InventoryUnavailable when the outcome is unknown (the order stays pending)."""
        try:
            with self.metrics.inventory_call("ReserveStock"):
                outcome = await self.inventory.reserve(order.order_id, order.items, timeout_s)
        except InventoryRefused as exc:
            # A product vanished between the catalogue check and the call, or the id was reused: final answer.
            log.warning("order %s refused by inventory: %s", order.order_id, exc)
            outcome = ReservationOutcome(ReservationStatus.REJECTED, f"refused by inventory: {exc.detail}")
        return await self.transitions.settle(order, outcome, via)
