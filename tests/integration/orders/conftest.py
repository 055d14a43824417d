from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.inventory import InventoryHarness
from tests.support.orders import OrderHarness, order_app


@pytest.fixture
async def orders(inventory: InventoryHarness, orders_db_url: str) -> AsyncIterator[OrderHarness]:
    async with order_app(inventory, orders_db_url) as harness:
        yield harness
