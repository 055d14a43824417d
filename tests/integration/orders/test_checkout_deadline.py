"""One deadline for the checkout answer, against real PostgreSQL: a statement stuck behind another connection's
lock, or a database that is down, still gets an answer (a 503 with Retry-After) and loses nothing; the statement is
cancelled in the server, and a retry with the same Idempotency-Key gives exactly one order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.inventory import InventoryHarness
from tests.support.orders import OrderHarness, new_key, order_app
from valerix_common.embedded_pg import EmbeddedPostgres

BUDGET = "0.5"  # short, so the tests need not wait 2 s per stuck call; the logic is the same


@asynccontextmanager
async def holding(url: str, *statements: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """Another connection that runs `statements` in an open transaction and keeps its locks until the block ends."""
    conn = await psycopg.AsyncConnection.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
        yield conn
    finally:
        await conn.rollback()
        await conn.close()


async def wait_no_lock_waiters(orders: OrderHarness, holder: psycopg.AsyncConnection[Any]) -> None:
    """Until nobody waits for the holder's locks any more: the abandoned statement was cancelled in the server."""
    holder_pid = holder.info.backend_pid
    for _ in range(100):  # bounded: 10 s
        waiting = orders.sql("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                             holder_pid)[0][0]
        if waiting == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"a statement still waits for the lock of backend {holder_pid}")


async def retry_until_answered(orders: OrderHarness, product: str, customer: str, key: str) -> tuple[int, Any]:
    for _ in range(60):  # bounded: a client honouring Retry-After, for up to ~12 s
        status, body, _ = await orders.checkout([(product, 1)], customer=customer, key=key)
        if status in (201, 202):
            return status, body
        assert status in (409, 503), (status, body)  # 409: the first attempt's key still in flight
        await asyncio.sleep(0.2)
    raise AssertionError("the checkout never succeeded after the database was free again")


def orders_of(orders: OrderHarness, customer: str) -> list[tuple[Any, ...]]:
    return orders.sql("SELECT order_id, status FROM orders WHERE customer_id = %s", customer)


async def test_an_order_write_stuck_behind_a_lock_is_answered_and_nothing_is_written(
    inventory: InventoryHarness, orders_db_url: str
) -> None:
    async with order_app(inventory, orders_db_url, INVENTORY_TIMEOUT_SECONDS=BUDGET) as orders:
        product = await inventory.new_product(5)
        customer, key = "c-deadline-write", new_key()
        # a migration, a VACUUM FULL, an operator's transaction: every INSERT into orders waits for it
        async with holding(orders_db_url, "LOCK TABLE orders IN SHARE ROW EXCLUSIVE MODE") as holder:
            status, problem, headers = await orders.checkout([(product, 1)], customer=customer, key=key)
            assert status == 503, problem
            assert int(headers["Retry-After"]) >= 1
            assert problem["type"].endswith("/checkout-timed-out") and problem["status"] == 503
            await wait_no_lock_waiters(orders, holder)  # cancelled in the server, not left waiting
        # rolled back with the statement: neither the order nor its claim of the key exists
        assert orders_of(orders, customer) == []
        assert orders.sql("SELECT count(*) FROM idempotency_keys WHERE customer_id = %s", customer)[0][0] == 0
        assert inventory.available(product) == 5
        status, body = await retry_until_answered(orders, product, customer, key)
        assert status == 201 and body["status"] == "confirmed"
        assert [(str(i), s) for i, s in orders_of(orders, customer)] == [(body["order_id"], "confirmed")]
        assert inventory.available(product) == 4


async def test_a_rate_limit_statement_stuck_behind_a_lock_is_answered_and_nothing_is_written(
    inventory: InventoryHarness, orders_db_url: str
) -> None:
    async with order_app(inventory, orders_db_url, INVENTORY_TIMEOUT_SECONDS=BUDGET) as orders:
        product = await inventory.new_product(5)
        customer, key = "c-deadline-rate", new_key()
        # another instance's checkout of the same customer holds the customer's rate row
        lock_row = (f"INSERT INTO checkout_rate (customer_id, tat) VALUES ('{customer}', now())"
                    " ON CONFLICT (customer_id) DO UPDATE SET tat = excluded.tat")
        async with holding(orders_db_url, lock_row) as holder:
            status, problem, headers = await orders.checkout([(product, 1)], customer=customer, key=key)
            assert status == 503 and int(headers["Retry-After"]) >= 1, problem
            await wait_no_lock_waiters(orders, holder)
        assert orders_of(orders, customer) == [] and inventory.available(product) == 5
        status, body = await retry_until_answered(orders, product, customer, key)
        assert status == 201 and [str(r[0]) for r in orders_of(orders, customer)] == [body["order_id"]]


@pytest.fixture
def private_pg(pg_datadir: Path) -> EmbeddedPostgres:
    return EmbeddedPostgres(pg_datadir).start()


async def test_while_the_orders_database_is_down_the_answer_is_a_503_and_a_retry_succeeds_after(
    inventory: InventoryHarness, private_pg: EmbeddedPostgres
) -> None:
    url = private_pg.create_database("orders_restart", "orders_restart_svc")
    try:
        async with order_app(inventory, url, INVENTORY_TIMEOUT_SECONDS=BUDGET) as orders:
            product = await inventory.new_product(5)
            status, _, _ = await orders.checkout([(product, 1)], customer="c-before")
            assert status == 201  # the pool holds live connections ...
            private_pg.stop()  # ... which the server now cuts
            customer, key = "c-during", new_key()
            for _ in range(3):  # a broken pooled connection, a failing check, an empty pool: each answers
                status, problem, headers = await orders.checkout([(product, 1)], customer=customer, key=key)
                assert status == 503 and int(headers["Retry-After"]) >= 1, problem
            private_pg.start()
            status, body = await retry_until_answered(orders, product, customer, key)
            assert status == 201 and [str(r[0]) for r in orders_of(orders, customer)] == [body["order_id"]]
            assert inventory.available(product) == 3
    finally:
        private_pg.destroy()
