"""Checkout: validate against the catalogue, write the pending order (claiming the Idempotency-Key), ask the
inventory within the budget; without an answer in time, hand the order to the verify-order queue."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass

from opentelemetry import trace

from order_functions.application.catalogue import Catalogue
from order_functions.application.errors import IdempotencyInFlight, IdempotencyKeyReused, UnknownProduct
from order_functions.application.ports import Created, InFlight, InventoryUnavailable, KeyMismatch, OrderStore, Replay
from order_functions.application.settle_order import SettleOrder
from order_functions.application.verify_queue import VerifyQueue
from order_functions.domain.models import Order, SettledVia
from order_functions.domain.validation import CheckoutRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckoutResult:
    order: Order
    replayed: bool = False


class Checkout:
    def __init__(
        self,
        orders: OrderStore,
        catalogue: Catalogue,
        settle: SettleOrder,
        verify_queue: VerifyQueue,
        inventory_timeout_s: float,
    ) -> None:
        self.orders = orders
        self.catalogue = catalogue
        self.settle = settle
        self.verify_queue = verify_queue
        self.budget_s = inventory_timeout_s

    async def __call__(self, request: CheckoutRequest, idempotency_key: str | None) -> CheckoutResult:
        # One budget for the whole inventory conversation: a cold catalogue must not double the wait.
        deadline = time.monotonic() + self.budget_s
        unknown = await self.catalogue.unknown((i.product_id for i in request.items), self.budget_s * 0.25)
        if unknown:
            raise UnknownProduct(unknown)
        match await self.orders.create(uuid.uuid4(), request, idempotency_key):
            case Replay(order):
                return CheckoutResult(order, replayed=True)
            case InFlight(order_id):
                raise IdempotencyInFlight(order_id)
            case KeyMismatch(order_id):
                raise IdempotencyKeyReused(order_id)
            case Created(order):
                pass
        trace.get_current_span().set_attribute("valerix.order_id", str(order.order_id))
        try:
            settled = await self._settle_in_time(order, deadline)
        finally:
            if idempotency_key is not None:
                await self.orders.complete_key(request.customer_id, idempotency_key)
        trace.get_current_span().set_attribute("valerix.order_status", settled.status.value)
        return CheckoutResult(settled)

    async def _settle_in_time(self, order: Order, deadline: float) -> Order:
        try:
            remaining = max(deadline - time.monotonic(), self.budget_s * 0.5)
            return await self.settle(order, remaining, SettledVia.INVENTORY_REPLY)
        except InventoryUnavailable as exc:
            log.info("order %s: no inventory answer in %.1fs (%s); handing to VerifyOrder",
                     order.order_id, self.budget_s, exc.code)
            await self.verify_queue.enqueue(order.order_id)
            return order
