"""The read side: orders, products and health. No state changes here."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from datetime import datetime
from typing import Any
from uuid import UUID

from order_functions.application.catalogue import Catalogue, CatalogueListing
from order_functions.application.errors import OrderNotFound
from order_functions.application.ports import Inventory, MessageSender, OrderReader
from order_functions.domain.models import Order, OrderStatus

log = logging.getLogger(__name__)

HEALTH_PROBE_TIMEOUT_S = 3.0
INVENTORY_HEALTH_DEADLINE_S = 2.0


class OrderQueries:
    def __init__(self, orders: OrderReader) -> None:
        self.orders = orders

    async def get(self, order_id: UUID) -> Order:
        order = await self.orders.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        return order

    async def recent(
        self, *, status: OrderStatus | None, customer_id: str | None, limit: int, before: tuple[datetime, UUID] | None
    ) -> list[Order]:
        return await self.orders.recent(status=status, customer_id=customer_id, limit=limit, before=before)


class ProductQueries:
    def __init__(self, catalogue: Catalogue, timeout_s: float) -> None:
        self.catalogue = catalogue
        self.timeout_s = timeout_s

    async def list(self) -> CatalogueListing:
        """The catalogue copy; the inventory is asked only while the copy is empty."""
        return await self.catalogue.listing(self.timeout_s)


class HealthCheck:
    def __init__(self, orders: OrderReader, inventory: Inventory, bus: MessageSender, bus_kind: str) -> None:
        self.orders = orders
        self.inventory = inventory
        self.bus = bus
        self.bus_kind = bus_kind

    async def __call__(self) -> dict[str, Any]:
        """Every dependency probed concurrently, each bounded; `status` is "ok" only when all are."""
        checks: dict[str, dict[str, Any]] = {}
        await asyncio.gather(
            _probe(checks, "orders_database", self.orders.ping()),
            _probe(checks, "inventory", self.inventory.check(INVENTORY_HEALTH_DEADLINE_S)),
            _probe(checks, "bus", self.bus.check()),
        )
        checks["bus"]["kind"] = self.bus_kind
        ok = all(c["status"] == "ok" for c in checks.values())
        return {"status": "ok" if ok else "unavailable", "checks": checks}


def public_health(report: dict[str, Any]) -> dict[str, Any]:
    """What an anonymous caller may see: ok / failed per dependency (no errors, hosts, latencies or kinds)."""
    checks = report.get("checks", {})
    return {
        "status": report.get("status", "unavailable"),
        "checks": {name: {"status": "ok" if c.get("status") == "ok" else "failed"} for name, c in checks.items()},
    }


def failed_check(exc: BaseException) -> dict[str, Any]:
    return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:300]}


async def _probe(checks: dict[str, dict[str, Any]], name: str, check: Awaitable[None]) -> None:
    started = time.monotonic()
    try:
        await asyncio.wait_for(check, timeout=HEALTH_PROBE_TIMEOUT_S)
        checks[name] = {"status": "ok"}
    except Exception as exc:
        log.warning("health: %s failed: %r", name, exc)
        checks[name] = failed_check(exc)
    checks[name]["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
