"""The catalogue as the Order Service sees it: its own copy (fed by stock.changed events and a periodic full
refresh), so listing products and checking product ids never wait on a Gremlin-delayed inventory. The inventory is
asked directly only while the copy is empty."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from order_functions.application.ports import CatalogueStore, Inventory, InventoryUnavailable, ProductView

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogueListing:
    products: list[ProductView]
    as_of: datetime | None  # the newest confirmation of any row; None when the answer came from the inventory
    source: str  # "copy" | "inventory"


class Catalogue:
    def __init__(
        self, store: CatalogueStore, inventory: Inventory, refresh_timeout_s: float, ids_ttl_s: float = 2.0,
        min_retry_interval_s: float = 1.0,
    ) -> None:
        self.store = store
        self.inventory = inventory
        self.refresh_timeout_s = refresh_timeout_s
        self.ids_ttl_s = ids_ttl_s  # the checkout's id check re-reads the copy at most this often
        self.min_retry_interval_s = min_retry_interval_s
        self._ids: frozenset[str] = frozenset()
        self._ids_read_at = float("-inf")
        self._ask_failed_at = float("-inf")  # when asking the inventory directly last failed

    async def listing(self, timeout_s: float) -> CatalogueListing:
        """From the copy; only an empty copy asks the inventory (raising InventoryUnavailable if it can't answer)."""
        products = await self.store.snapshot()
        if products:
            as_of = max((p.as_of for p in products if p.as_of is not None), default=None)
            return CatalogueListing(products, as_of, "copy")
        products = await self.inventory.list_products(timeout_s)
        await self.store.apply_listing(products)
        return CatalogueListing(products, None, "inventory")

    async def refresh(self) -> int:
        """The safety net for lost or late events: the full listing, merged by version. Returns rows updated."""
        products = await self.inventory.list_products(self.refresh_timeout_s)
        changed = await self.store.apply_listing(products)
        log.info("catalogue refresh: %d products listed, %d rows changed", len(products), changed)
        return changed

    async def unknown(self, product_ids: Iterable[str], timeout_s: float) -> list[str]:
        """Ids the catalogue does not know. The copy answers for known ids; an id it lacks (bad input, or a product
        added a moment ago whose event is still on its way) is checked with the inventory before it is refused.
        When the inventory can't say, trust the caller: the inventory still refuses unknown products itself, and the
        order is then rejected rather than lost."""
        wanted = set(product_ids)
        if wanted <= self._ids:
            return []
        if time.monotonic() - self._ids_read_at >= self.ids_ttl_s:
            self._remember(await self.store.snapshot())
            if wanted <= self._ids:
                return []
        # after a failed ask, the next one waits an interval: not every checkout pays part of its budget for it
        # while the inventory is slow
        if time.monotonic() - self._ask_failed_at < self.min_retry_interval_s:
            return []
        try:
            products = await self.inventory.list_products(timeout_s)
        except InventoryUnavailable as exc:
            self._ask_failed_at = time.monotonic()
            log.warning("inventory did not answer, not pre-checking product ids %s: %s", sorted(wanted), exc)
            return []
        await self.store.apply_listing(products)
        self._remember(products)
        return sorted(wanted - self._ids)

    def _remember(self, products: list[ProductView]) -> None:
        self._ids = frozenset(p.product_id for p in products)
        self._ids_read_at = time.monotonic()
