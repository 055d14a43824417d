"""The reconciler (a timer): gives up on orders pending too long, finishes requested cancellations, re-sends
VerifyOrder for stale pending orders, purges expired idempotency keys and refreshes the gauges."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from order_functions.application.cancel import ReleaseStock
from order_functions.application.ports import InventoryUnavailable, Metrics, OrderStore
from order_functions.application.verify_queue import VerifyQueue
from order_functions.domain.models import SettledVia

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    reenqueued: int = 0
    gave_up: int = 0
    cancelled: int = 0
    keys_purged: int = 0
    errors: list[str] = field(default_factory=list)


class Reconcile:
    def __init__(
        self,
        orders: OrderStore,
        release: ReleaseStock,
        verify_queue: VerifyQueue,
        metrics: Metrics,
        *,
        stale_after_s: float,
        give_up_after_s: float,
    ) -> None:
        self.orders = orders
        self.release = release
        self.verify_queue = verify_queue
        self.metrics = metrics
        self.stale_after_s = stale_after_s
        self.give_up_after_s = give_up_after_s

    async def __call__(self, batch: int = 200) -> ReconcileReport:
        report = ReconcileReport()
        report.gave_up = await self.orders.give_up_expired(self.give_up_after_s, batch)
        await self._finish_cancellations(report, batch)
        for order in await self.orders.stale_pending(self.stale_after_s, self.give_up_after_s, batch):
            try:
                await self.verify_queue.enqueue(order.order_id)
                report.reenqueued += 1
            except Exception as exc:  # one order's failure must not stop the run for the others
                report.errors.append(f"{order.order_id}: {exc!r}"[:300])
                log.exception("reconciler: re-sending VerifyOrder for %s failed; next run retries", order.order_id)
        report.keys_purged = await self.orders.purge_expired_keys(1000)
        if report.reenqueued or report.gave_up or report.cancelled:
            log.info("reconciler: %s", report)
        await self.metrics.refresh_gauges()
        return report

    async def _finish_cancellations(self, report: ReconcileReport, batch: int) -> None:
        for order in await self.orders.cancel_requested(batch):
            try:
                await self.release(order, SettledVia.RECONCILER, "cancellation completed by the reconciler")
                report.cancelled += 1
            except InventoryUnavailable as exc:
                report.errors.append(f"{order.order_id}: {exc}")
                log.warning("reconciler: release of %s failed, next run retries: %s", order.order_id, exc)
            except Exception as exc:  # one order's failure must not stop the run for the others
                report.errors.append(f"{order.order_id}: {exc!r}"[:300])
                log.exception("reconciler: finishing the cancellation of %s failed; next run retries", order.order_id)
