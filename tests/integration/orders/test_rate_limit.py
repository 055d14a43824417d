"""The checkout rate limit in PostgreSQL: every instance shares one budget per customer (real database)."""

from __future__ import annotations

import asyncio
import uuid

import psycopg

from order_functions import bootstrap
from order_functions.domain.rate_limit import RatePolicy
from order_functions.infrastructure.rate_limiter import PostgresRateLimiter
from tests.support.orders import OrderHarness


async def test_two_instances_share_one_budget_and_refunds_give_slots_back(orders: OrderHarness) -> None:
    pool = (await orders.resources()).pool
    policy = RatePolicy(per_minute=1, burst=3)
    first, second = PostgresRateLimiter(pool, policy), PostgresRateLimiter(pool, policy)  # two "instances"
    customer = f"rate-{uuid.uuid4().hex[:8]}"
    decisions = await asyncio.gather(*(limiter.acquire(customer) for limiter in (first, second) * 4))
    assert sum(d.allowed for d in decisions) == 3  # the burst, across both, even when racing
    refused = [d for d in decisions if not d.allowed]
    assert all(50 <= d.retry_after_s <= 61 for d in refused), refused  # the next slot is about a minute away
    await first.refund(customer)
    assert (await second.acquire(customer)).allowed
    assert not (await first.acquire(customer)).allowed
    assert (await first.acquire(f"{customer}-other")).allowed  # per customer


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
    limiter = PostgresRateLimiter((await orders.resources()).pool, RatePolicy(per_minute=1, burst=2))
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
    assert [(await limiter.acquire(idle[0])).allowed for _ in range(3)] == [True, True, False]
    assert not (await limiter.acquire(busy[0])).allowed  # 90 s ahead with a 60 s interval: burst used


async def test_purge_skips_a_row_a_checkout_holds(orders: OrderHarness) -> None:
    limiter = PostgresRateLimiter((await orders.resources()).pool, RatePolicy(per_minute=1, burst=2))
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
