"""The deploy workflow's smoke test script, run against the real order front, inventory and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import function_app
from devstack.functions_host import FunctionsHost
from order_functions.interface.app import build_app
from tests.support.identity import token
from tests.support.inventory import InventoryHarness
from tests.support.orders import OrderHarness, order_app

SCRIPT = Path(__file__).resolve().parents[2] / ".github" / "scripts" / "smoke_test.py"


@pytest.fixture
async def api(inventory: InventoryHarness, orders_db_url: str) -> AsyncIterator[tuple[str, OrderHarness]]:
    async with order_app(inventory, orders_db_url) as orders:
        host = FunctionsHost(build_app(), app_module=function_app, port=0, poll_interval_s=0.05)
        port = await host.start()
        try:
            yield f"http://127.0.0.1:{port}/api", orders
        finally:
            await host.stop()


async def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, str(SCRIPT), *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, env={**os.environ, **(env or {})})
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_smoke_script_checks_out_one_order_and_returns_the_stock(api: tuple[str, OrderHarness]) -> None:
    base, orders = api
    await orders.inventory.new_product(3)
    before = orders.inventory.sql("SELECT sum(available)::int FROM products")[0][0]
    code, out = await _run(base, env={"SMOKE_BEARER_TOKEN": token("smoke-customer")})  # as the workflow does
    assert code == 0, out
    assert "health: 200" in out and "confirmed" in out and "cancelled" in out
    assert orders.inventory.sql("SELECT sum(available)::int FROM products")[0][0] == before


async def test_smoke_script_fails_loudly_when_the_api_is_not_there() -> None:
    code, out = await _run("http://127.0.0.1:9/api")
    assert code == 1 and "smoke test FAILED" in out
