"""The catalogue as the Order Service sees it: its own copy (fed by stock.changed events and a periodic full
refresh), so listing products and checking product ids never wait on a Gremlin-delayed inventory. Only an empty
copy makes a listing wait for the inventory; a copy that has not yet taken a full listing (stock events bring only the
products they touch) answers at once, says it is incomplete, and starts a full refresh in the background."""

from __future__ import annotations

import asyncio
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
    complete: bool = True  # False: the copy has not yet taken a full listing and may lack products


class Catalogue:
    def __init__(
        self, store: CatalogueStore, inventory: Inventory, refresh_timeout_s: float, min_retry_interval_s: float = 1.0,
    ) -> None:
        self.store = store
        self.inventory = inventory
        self.refresh_timeout_s = refresh_timeout_s
        self.min_retry_interval_s = min_retry_interval_s
        self._ids: frozenset[str] = frozenset()
        self._ask_failed_at = float("-inf")  # when asking the inventory directly last failed
        self._is_listed = False
        self._background: asyncio.Task[None] | None = None  # a full refresh started by a listing

    async def listing(self, timeout_s: float) -> CatalogueListing:
        """From the copy, at once. Only an empty copy asks the inventory (raising InventoryUnavailable if it can't
        answer); a copy not yet fully listed is answered as `complete=False` while a full refresh runs."""
        # the flag before the rows: a full listing that lands in between makes this answer say "incomplete" (true
        # of the rows read), never "complete" about rows read before the listing arrived
        complete = await self._listed()
        products = await self.store.snapshot()
        if products:
            if not complete:
                self._refresh_in_background()
            return CatalogueListing(products, _newest(products), "copy", complete)
        listed, _ = await self._take_full_listing(timeout_s)
        return CatalogueListing(listed, None, "inventory")

    def _refresh_in_background(self) -> None:
        if self._background is None or self._background.done():
            self._background = asyncio.get_running_loop().create_task(self._refresh_quietly(),
                                                                      name="catalogue-first-listing")

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh()
        except Exception as exc:  # the next listing, or the refresh timer, tries again
            log.warning("catalogue: first full listing failed (%r); the copy stays incomplete for now", exc)

    async def _listed(self) -> bool:
        # once listed, always listed (the table is never emptied): ask the database until then only
        if not self._is_listed:
            self._is_listed = await self.store.listed()
        return self._is_listed

    async def refresh(self) -> int:
        """The safety net for lost or late events: the full listing, merged by version. Returns rows updated."""
        products, changed = await self._take_full_listing(self.refresh_timeout_s)
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
        # a miss re-reads the copy (one cheap query) before anything asks the slow inventory: the id may be a
        # product whose stock event arrived after this process last read the copy
        self._remember(await self.store.snapshot())
        if wanted <= self._ids:
            return []
        # after a failed ask, the next one waits an interval: not every checkout pays part of its budget for it
        # while the inventory is slow
        if time.monotonic() - self._ask_failed_at < self.min_retry_interval_s:
            return []
        try:
            products, _ = await self._take_full_listing(timeout_s)
        except InventoryUnavailable as exc:
            self._ask_failed_at = time.monotonic()
            log.warning("inventory did not answer, not pre-checking product ids %s: %s", sorted(wanted), exc)
            return []
        self._remember(products)
        return sorted(wanted - self._ids)

    async def _take_full_listing(self, timeout_s: float) -> tuple[list[ProductView], int]:
        """The inventory's whole listing into the copy, which from then on counts as listed; (products, rows)."""
        products = await self.inventory.list_products(timeout_s)
        applied = await self.store.apply_listing(products)
        self._is_listed = True
        return products, applied

    def _remember(self, products: list[ProductView]) -> None:
        self._ids = frozenset(p.product_id for p in products)


def _newest(products: list[ProductView]) -> datetime | None:
    return max((p.as_of for p in products if p.as_of is not None), default=None)
