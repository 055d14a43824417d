"""Shipping (docs/architecture.md): a confirmed order ships once the inventory has turned its reservation into
SHIPPED; the stock has then left, so the order can no longer be cancelled. Safe to repeat."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

from order_functions.application.errors import InvalidTransition, OrderNotFound
from order_functions.application.ports import Inventory, InventoryRefused, Metrics, OrderStore
from order_functions.application.transitions import OrderTransitions
from order_functions.domain.models import Order, OrderStatus, SettledVia

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShipResult:
    order: Order
    replayed: bool  # it had shipped already


class ShipOrder:
    def __init__(
        self, orders: OrderStore, inventory: Inventory, transitions: OrderTransitions, metrics: Metrics,
        timeout_s: float,
    ) -> None:
        self.orders = orders
        self.inventory = inventory
        self.transitions = transitions
        self.metrics = metrics
        self.timeout_s = timeout_s

    async def __call__(self, order_id: UUID) -> ShipResult:
        """Raises InventoryUnavailable when the inventory's answer is unknown: repeating the call is safe."""
        order = await self.orders.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        if order.status is OrderStatus.SHIPPED:
            return ShipResult(order, True)
        if order.status is not OrderStatus.CONFIRMED:
            raise InvalidTransition(order, f"only a confirmed order ships; this one is {order.status.value}")
        if order.cancel_requested:
            raise InvalidTransition(order, "the customer asked to cancel this order; it will not ship")
        try:
            with self.metrics.inventory_call("ShipReservation"):
                await self.inventory.ship(order_id, self.timeout_s)
        except InventoryRefused as exc:
            log.error("ship of confirmed order %s refused by the inventory: %s", order_id, exc)
            current = await self.orders.get(order_id)
            assert current is not None
            raise InvalidTransition(current, f"the inventory refused to ship it: {exc.detail}"[:300]) from exc
        shipped = await self.transitions.move(order, OrderStatus.SHIPPED, SettledVia.SHIP, "")
        if shipped.status is not OrderStatus.SHIPPED:
            raise InvalidTransition(shipped, f"the order became {shipped.status.value} meanwhile")
        return ShipResult(shipped, False)
