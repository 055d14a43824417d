"""The reconciler (a timer): gives up on orders pending too long, finishes requested cancellations, re-arms the
verify intent of stale pending orders, runs the outbox relay once (the backstop for what a recycled instance left
unsent), purges expired idempotency keys and idle rate-limit rows, and refreshes the gauges."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from order_functions.application.cancel import ReleaseStock
from order_functions.application.ports import InventoryUnavailable, Metrics, OrderStore, Outbox
from order_functions.domain.models import SettledVia

log = logging.getLogger(__name__)

RATE_PURGE_BATCH = 1000  # rows a run deletes at most: one cheap statement per tick, never a long lock


class IdleRatePurge(Protocol):
    async def purge_idle(self, limit: int) -> int:
        """Forgets up to `limit` customers whose checkout budget is full again."""


@dataclass
class ReconcileReport:
    reenqueued: int = 0
    gave_up: int = 0
    cancelled: int = 0
    keys_purged: int = 0
    rate_rows_purged: int = 0
    relayed: int = 0
    errors: list[str] = field(default_factory=list)


class Reconcile:
    def __init__(
        self,
        orders: OrderStore,
        release: ReleaseStock,
        outbox: Outbox,
        metrics: Metrics,
        *,
        stale_after_s: float,
        give_up_after_s: float,
        relay_timeout_s: float = 4.0,  # within the 5 s tick: runs of one timer never overlap
        rate_rows: IdleRatePurge | None = None,
    ) -> None:
        self.rate_rows = rate_rows
        self.orders = orders
        self.release = release
        self.outbox = outbox
        self.relay_timeout_s = relay_timeout_s
        self.metrics = metrics
        self.stale_after_s = stale_after_s
        self.give_up_after_s = give_up_after_s

    async def __call__(self, batch: int = 200) -> ReconcileReport:
        report = ReconcileReport()
        # the outbox first: the releases below may each wait for a slow inventory, the relay must not wait for them
        await self._relay(report)
        report.gave_up = await self.orders.give_up_expired(self.give_up_after_s, batch)
        await self._finish_cancellations(report, batch)
        for order in await self.orders.stale_pending(self.stale_after_s, self.give_up_after_s, batch):
            try:
                await self.orders.rearm_verify(order.order_id)
                report.reenqueued += 1
            except Exception as exc:  # one order's failure must not stop the run for the others
                report.errors.append(f"{order.order_id}: {exc!r}"[:300])
                log.exception("reconciler: re-arming the verify intent of %s failed; next run retries", order.order_id)
        if report.reenqueued:
            await self._relay(report)  # the intents it just re-armed
        report.keys_purged = await self.orders.purge_expired_keys(1000)
        await self._purge_rate_rows(report)
        if report.reenqueued or report.gave_up or report.cancelled:
            log.info("reconciler: %s", report)
        await self.metrics.refresh_gauges()
        return report

    async def _relay(self, report: ReconcileReport) -> None:
        try:
            relayed = await self.outbox.relay(self.relay_timeout_s)
        except Exception as exc:  # the rows wait in the outbox; the next run (or a kick) sends them
            report.errors.append(f"outbox relay: {exc!r}"[:300])
            log.warning("reconciler: outbox relay failed, next run retries: %r", exc)
            return
        report.relayed += relayed.events + relayed.verifies

    async def _purge_rate_rows(self, report: ReconcileReport) -> None:
        if self.rate_rows is None:
            return
        try:
            report.rate_rows_purged = await self.rate_rows.purge_idle(RATE_PURGE_BATCH)
        except Exception as exc:  # housekeeping: the rows stay harmless until the next run deletes them
            report.errors.append(f"rate-limit purge: {exc!r}"[:300])
            log.warning("reconciler: purging idle rate-limit rows failed, next run retries: %r", exc)

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
