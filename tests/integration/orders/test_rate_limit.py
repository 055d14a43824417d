"""The checkout rate limit in PostgreSQL: every instance shares one budget per customer (real database)."""

from __future__ import annotations

import asyncio
import uuid

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
