"""A short-lived cache of known product ids, so an unknown product is refused before anything is written."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from order_functions.application.ports import Inventory, InventoryUnavailable, ProductView

log = logging.getLogger(__name__)


class Catalogue:
    def __init__(self, inventory: Inventory, ttl_s: float = 30.0, min_refresh_interval_s: float = 1.0) -> None:
        self.inventory = inventory
        self.ttl_s = ttl_s
        self.min_refresh_interval_s = min_refresh_interval_s
        self._ids: frozenset[str] = frozenset()
        self._loaded_at = float("-inf")
        self._failed_at = float("-inf")  # when the last refresh attempt failed

    def remember(self, products: Iterable[ProductView]) -> None:
        self._ids = frozenset(p.product_id for p in products)
        self._loaded_at = time.monotonic()

    async def unknown(self, product_ids: Iterable[str], timeout_s: float) -> list[str]:
        """Ids the inventory does not know. When the inventory can't be asked, trust the caller: the inventory
        still refuses unknown products itself, and the order is then rejected rather than lost."""
        wanted = set(product_ids)
        if wanted <= self._ids and time.monotonic() - self._loaded_at < self.ttl_s:
            return []
        # after a failed refresh, the next try waits an interval: not every checkout pays for it while the
        # inventory is slow (each try costs a checkout part of its budget)
        if time.monotonic() - max(self._loaded_at, self._failed_at) >= self.min_refresh_interval_s:
            try:
                self.remember(await self.inventory.list_products(timeout_s))
            except InventoryUnavailable as exc:
                self._failed_at = time.monotonic()
                log.warning("catalogue refresh failed, not pre-checking product ids: %s", exc)
                return []
        elif self._failed_at > self._loaded_at:
            return []  # the last refresh failed a moment ago: trust the caller, as above
        return sorted(wanted - self._ids) if self._ids else []
