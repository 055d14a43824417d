"""The checkout rate limit in PostgreSQL: every instance shares one budget per customer, and the order write takes
the slot in its own statement (real database)."""

from __future__ import annotations

import asyncio
import uuid

import psycopg

from order_functions import bootstrap
from order_functions.application.ports import Created, CreateResult, KeyMismatch, Limited, Replay
from order_functions.application.transitions import new_event
from order_functions.domain.models import LineItem, OrderStatus
from order_functions.domain.rate_limit import RatePolicy
from order_functions.domain.validation import CheckoutRequest
from order_functions.infrastructure.orders_repository import OrdersRepository
from order_functions.infrastructure.rate_limiter import IdleRateRows
from tests.support.orders import OrderHarness


async def place(
    repository: OrdersRepository, customer: str, policy: RatePolicy, key: str | None = None, quantity: int = 1
) -> CreateResult:
    """One order write as the checkout makes it, with the customer's checkout slot in the same statement."""
    return await repository.create(
        uuid.uuid4(), CheckoutRequest(customer, (LineItem("rate-product", quantity),)), key,
        event=new_event(OrderStatus.PENDING), verify_after_s=3600, rate=policy,
    )


def settle_away(orders: OrderHarness, customer_like: str) -> None:
    """These orders name no real product: take them out of the relay's and the reconciler's way."""
    orders.sql("UPDATE verify_outbox SET sent_at = now() WHERE order_id IN"
               " (SELECT order_id FROM orders WHERE customer_id LIKE %s)", customer_like)
    orders.sql("UPDATE orders SET status = 'rejected' WHERE customer_id LIKE %s", customer_like)


async def test_two_instances_share_one_budget_and_only_written_orders_take_a_slot(orders: OrderHarness) -> None:
    pool = (await orders.resources()).pool
    policy = RatePolicy(per_minute=1, burst=3)
    first, second = OrdersRepository(pool), OrdersRepository(pool)  # two "instances"
    customer = f"rate-{uuid.uuid4().hex[:8]}"
    try:
        results = await asyncio.gather(*(place(r, customer, policy) for r in (first, second) * 4))
        written = [r for r in results if isinstance(r, Created)]
        assert len(written) == 3  # the burst, across both, even when racing
        refused = [r for r in results if not isinstance(r, Created)]
        assert all(isinstance(r, Limited) and 50 <= r.retry_after_s <= 61 for r in refused), refused
        assert len(orders_of(orders, customer)) == 3  # a limited write wrote nothing

        other = f"{customer}-keys"
        made = await place(first, other, policy, key="k-1")
        assert isinstance(made, Created)
        orders.sql("UPDATE idempotency_keys SET completed_at = now() WHERE customer_id = %s", other)
        for _ in range(4):  # replays take no slot
            assert isinstance(await place(second, other, policy, key="k-1"), Replay)
        assert isinstance(await place(first, other, policy, key="k-1", quantity=2), KeyMismatch)  # nor a misuse
        assert isinstance(await place(first, other, policy), Created)
        assert isinstance(await place(second, other, policy, key="k-2"), Created)  # the burst's third
        limited = await place(first, other, policy, key="k-3")
        assert isinstance(limited, Limited)
        assert not orders.sql("SELECT 1 FROM idempotency_keys WHERE customer_id = %s AND idem_key = 'k-3'", other)
        assert isinstance(await place(second, other, policy, key="k-1"), Replay)  # a replay passes when limited
    finally:
        settle_away(orders, f"{customer}%")


def orders_of(orders: OrderHarness, customer: str) -> list[tuple[object, ...]]:
    return orders.sql("SELECT order_id FROM orders WHERE customer_id = %s", customer)


def seed_rates(orders: OrderHarness, prefix: str, count: int, offset_s: float) -> list[str]:
    """`count` rows whose TAT is `offset_s` away from now (negative: passed, the bucket is full again)."""
    customers = [f"{prefix}-{i}" for i in range(count)]
    for customer in customers:
        orders.sql("INSERT INTO checkout_rate (customer_id, tat) VALUES (%s, now() + make_interval(secs => %s))",
                   customer, offset_s)
    return customers


def remaining(orders: OrderHarness, prefix: str) -> set[str]:
    return {row[0] for row in orders.sql("SELECT customer_id FROM checkout_rate WHERE customer_id LIKE %s",
                                         prefix + "-%")}


async def test_purge_deletes_only_passed_rows_in_bounded_batches(orders: OrderHarness) -> None:
    pool = (await orders.resources()).pool
    limiter, repository, policy = IdleRateRows(pool), OrdersRepository(pool), RatePolicy(per_minute=1, burst=2)
    prefix = f"purge-{uuid.uuid4().hex[:8]}"
    idle = seed_rates(orders, prefix + "i", 5, -5.0)
    busy = seed_rates(orders, prefix + "b", 3, 90.0)  # still limited: forgetting them would reset their budget
    assert await limiter.purge_idle(2) == 2  # at least five rows have passed: exactly the batch
    for _ in range(50):  # other tests' rows may go first; bounded
        if not remaining(orders, prefix + "i"):
            break
        await limiter.purge_idle(100)
    assert remaining(orders, prefix + "i") == set()
    assert remaining(orders, prefix + "b") == set(busy)
    # a forgotten customer starts with a full budget, exactly as if the row were there
    try:
        written = [isinstance(await place(repository, idle[0], policy), Created) for _ in range(3)]
        assert written == [True, True, False]
        assert isinstance(await place(repository, busy[0], policy), Limited)  # 90 s ahead, 60 s interval: used up
    finally:
        settle_away(orders, f"{prefix}%")


async def test_purge_skips_a_row_a_checkout_holds(orders: OrderHarness) -> None:
    limiter = IdleRateRows((await orders.resources()).pool)
    (held,) = seed_rates(orders, f"held-{uuid.uuid4().hex[:8]}", 1, -5.0)
    with psycopg.connect(orders.orders_db_url) as conn:  # a checkout in flight holds the row
        conn.execute("SELECT 1 FROM checkout_rate WHERE customer_id = %s FOR UPDATE", (held,))
        for _ in range(50):  # bounded: until no other passed row is left for it to delete
            if await limiter.purge_idle(1000) == 0:
                break
        assert orders.sql("SELECT 1 FROM checkout_rate WHERE customer_id = %s", held)  # skipped, not waited for
    for _ in range(50):
        if not orders.sql("SELECT 1 FROM checkout_rate WHERE customer_id = %s", held):
            break
        await limiter.purge_idle(1000)
    assert not orders.sql("SELECT 1 FROM checkout_rate WHERE customer_id = %s", held)


async def test_the_reconciler_purges_idle_rate_rows(orders: OrderHarness) -> None:
    prefix = f"recon-{uuid.uuid4().hex[:8]}"
    seed_rates(orders, prefix, 3, -5.0)
    busy = seed_rates(orders, prefix + "-busy", 1, 90.0)
    services = await bootstrap.get_services()
    purged = 0
    for _ in range(50):  # the reconciler's batch is bounded; other tests' rows may share it
        purged += (await services.reconcile()).rate_rows_purged
        if remaining(orders, prefix) == set(busy):
            break
    assert remaining(orders, prefix) == set(busy) and purged >= 3
