"""The checkout's one deadline on fakes: it starts at the request's arrival, and every awaited step before the
answer (catalogue check, order write with its rate-limit slot, reservation) gets only what is left of it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from order_functions.application.checkout import MIN_CALL_S, record_reserve_s
from order_functions.application.deadline import Deadline
from order_functions.application.errors import CheckoutRateLimited, CheckoutTimedOut
from order_functions.application.identity import Principal
from order_functions.domain.models import LineItem, OrderStatus
from order_functions.domain.rate_limit import RatePolicy
from order_functions.domain.validation import CheckoutBody
from order_functions.interface.problems import problem_for
from tests.unit.conftest import World, build_world
from tests.unit.fakes import config, request

ALICE = Principal("alice", frozenset(), "https://issuer.test")
BODY = CheckoutBody(None, (LineItem("P-1", 1),))


def arrived(seconds_ago: float, budget_s: float = 2.0) -> Deadline:
    return Deadline.after(budget_s, started_at=time.monotonic() - seconds_ago)


async def test_time_spent_before_the_checkout_is_taken_from_the_inventory_call(world: World) -> None:
    await world.services.products.list()  # warm catalogue
    world.inventory.reserve_delay_s = 5.0
    result = await world.services.checkout(request(), None, arrived(1.2))
    assert result.order.status is OrderStatus.PENDING
    [given] = world.inventory.reserve_timeouts
    assert given <= 2.0 - 1.2 - record_reserve_s(2.0)  # what is left of the arrival's budget, not a fresh 2 s


async def test_a_request_that_arrives_with_its_budget_spent_still_gets_its_order_recorded(world: World) -> None:
    await world.services.products.list()
    result = await world.services.checkout(request(), "k-late", arrived(2.5))
    order = result.order
    assert order.status is OrderStatus.PENDING and world.inventory.reserve_timeouts == []  # not asked: no time
    assert order.order_id in world.store.verify_due  # the relay asks for it
    assert world.store.keys[("c-1", "k-late")].completed  # released for replays


async def test_the_order_write_gets_the_connection_wait_from_what_is_left(world: World) -> None:
    seen: list[float | None] = []
    original = world.store.create

    async def create(*args: Any, wait_s: float | None = None, **kwargs: Any) -> Any:
        seen.append(wait_s)
        return await original(*args, wait_s=wait_s, **kwargs)

    world.store.create = create  # type: ignore[method-assign]
    await world.services.checkout(request(), None, arrived(1.5))
    [wait_s] = seen
    # what is left of the arrival's budget, less the reserve that lets even a 503 leave within the budget
    assert wait_s is not None and MIN_CALL_S <= wait_s <= 0.5 - record_reserve_s(2.0)


async def test_a_write_that_cannot_finish_in_time_is_a_503_and_takes_no_checkout_slot() -> None:
    """The slot is taken by the order's own statement: a write cut off by the deadline leaves the budget whole."""
    world = build_world(config(inventory_timeout_s=0.2, checkout_rate=RatePolicy(per_minute=1, burst=1)))
    world.store.write_delay_s = 5.0  # the orders database is stuck (a lock, a saturated server)
    with pytest.raises(CheckoutTimedOut) as timed_out:
        await world.services.customer_checkout(ALICE, BODY, "k-1", arrived(0.0, budget_s=0.2))
    assert world.store.orders == {} and world.store.keys == {} and world.inventory.reserved == []
    problem = problem_for(timed_out.value)
    assert problem is not None and problem.status == 503 and problem.headers["Retry-After"]
    world.store.write_delay_s = 0.0
    retried = await world.services.customer_checkout(ALICE, BODY, "k-1", arrived(0.0, budget_s=0.2))
    assert retried.order.customer_id == "alice"  # the one slot of the burst was still there
    with pytest.raises(CheckoutRateLimited):
        await world.services.customer_checkout(ALICE, BODY, None, arrived(0.0, budget_s=0.2))


async def test_a_slow_catalogue_read_lets_the_order_through_to_the_inventory(world: World) -> None:
    original = world.catalogue.snapshot

    async def slow_snapshot() -> Any:
        await asyncio.sleep(5.0)  # the orders database is slow to read the catalogue copy
        return await original()

    world.catalogue.snapshot = slow_snapshot  # type: ignore[method-assign]
    result = await world.services.checkout(request(), None)
    # not refused, not stuck: the inventory decided (it checks product ids itself)
    assert result.order.status is OrderStatus.CONFIRMED and world.inventory.reserved == [result.order.order_id]
