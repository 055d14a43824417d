"""Cancellation: record the intent, release the stock, then move the order; the reconciler finishes a cancel
whose release could not be confirmed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

from order_functions.application.errors import InvalidTransition, OrderNotFound, OrderRejected
from order_functions.application.ports import (
    Inventory,
    InventoryRefused,
    InventoryUnavailable,
    Metrics,
    OrderStore,
    ReservationOutcome,
    ReservationStatus,
)
from order_functions.application.transitions import OrderTransitions
from order_functions.domain.models import Order, OrderStatus, SettledVia

log = logging.getLogger(__name__)


class ReleaseStock:
    """Releases an order's reservation and records the result; shared by the customer's cancel and the reconciler."""

    def __init__(self, inventory: Inventory, transitions: OrderTransitions, metrics: Metrics, timeout_s: float) -> None:
        self.inventory = inventory
        self.transitions = transitions
        self.metrics = metrics
        self.timeout_s = timeout_s

    async def __call__(self, order: Order, via: SettledVia, reason: str) -> Order:
        with self.metrics.inventory_call("ReleaseReservation"):
            release = await self.inventory.release(order.order_id, reason, self.timeout_s)
        if release.status is ReservationStatus.REJECTED:
            # Inventory had already decided REJECTED (its reply was lost): the order never held stock. Its true
            # outcome is 'rejected', not 'cancelled' - record what the inventory decided.
            outcome = ReservationOutcome(ReservationStatus.REJECTED, "insufficient stock (decided before the cancel)")
            return await self.transitions.settle(order, outcome, via)
        return await self.transitions.move(order, OrderStatus.CANCELLED, via, reason)


@dataclass(frozen=True)
class CancelResult:
    order: Order
    complete: bool  # False: accepted, the release finishes later


class CancelOrder:
    def __init__(self, orders: OrderStore, release: ReleaseStock) -> None:
        self.orders = orders
        self.release = release

    async def __call__(self, order_id: UUID) -> CancelResult:
        order = await self.orders.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        if order.status is OrderStatus.REJECTED:
            raise OrderRejected(order, "a rejected order holds no stock to cancel")
        if order.status is OrderStatus.CANCELLED:
            return CancelResult(order, True)
        if order.status is OrderStatus.SHIPPED:
            raise InvalidTransition(order, "a shipped order has left the warehouse and cannot be cancelled")
        if await self.orders.request_cancel(order_id) is None:
            return await self(order_id)  # it settled meanwhile (shipped, rejected, cancelled): answer for that state
        try:
            finished = await self.release(order, SettledVia.CANCEL, "cancelled by customer")
        except InventoryRefused as exc:
            # the inventory refuses to release what has shipped: the ship won the race
            log.warning("cancel of %s refused by the inventory: %s", order_id, exc)
            current = await self.orders.get(order_id)
            assert current is not None
            raise InvalidTransition(current, f"the inventory refused the release: {exc.detail}"[:300]) from exc
        except InventoryUnavailable as exc:
            log.warning("cancel of %s accepted, release pending (%s); the reconciler finishes it", order_id, exc)
            current = await self.orders.get(order_id)
            assert current is not None
            return CancelResult(current, False)
        if finished.status is OrderStatus.REJECTED:
            raise OrderRejected(finished, "the inventory had rejected this order; nothing to cancel")
        return CancelResult(finished, True)
