"""VerifyOrder: the verify-order queue's handler settles a pending order once the inventory answers."""

from __future__ import annotations

import logging
from uuid import UUID

from order_functions.application.ports import Metrics, OrderStore
from order_functions.application.settle_order import SettleOrder
from order_functions.domain.models import Order, SettledVia

log = logging.getLogger(__name__)


class VerifyOrder:
    def __init__(
        self, orders: OrderStore, settle: SettleOrder, metrics: Metrics, queue_name: str, verify_timeout_s: float
    ) -> None:
        self.orders = orders
        self.settle = settle
        self.metrics = metrics
        self.queue_name = queue_name
        self.timeout_s = verify_timeout_s

    async def __call__(self, order_id: UUID, delivery_count: int) -> Order | None:
        """Safe to run twice, concurrently, or after the HTTP path settled the order. Raises while the
        inventory stays unreachable, so the bus redelivers (and dead-letters after its max delivery count)."""
        if delivery_count > 1:
            self.metrics.verify_redelivered(self.queue_name)
        order = await self.orders.get(order_id)
        if order is None:
            log.error("VerifyOrder for unknown order %s (delivery %d): dropped", order_id, delivery_count)
            return None
        if not order.is_pending:
            log.info("VerifyOrder %s: already %s", order_id, order.status.value)
            return order
        return await self.settle(order, self.timeout_s, SettledVia.VERIFY_ORDER)
