"""Ownership, caps and the checkout rate limit on fakes (application/ownership.py)."""

from __future__ import annotations

import uuid

import pytest

from order_functions.application.errors import CheckoutRateLimited, IdempotencyKeyReused, OrderNotFound, UnknownProduct
from order_functions.application.identity import Forbidden, Principal
from order_functions.domain.limits import OrderCaps
from order_functions.domain.models import LineItem, OrderStatus
from order_functions.domain.rate_limit import RatePolicy
from order_functions.domain.validation import CheckoutBody, ValidationFailed
from tests.unit.conftest import World, build_world
from tests.unit.fakes import config, request


def who(subject: str, *roles: str) -> Principal:
    return Principal(subject, frozenset(roles), "https://issuer.test")


def body(customer: str | None = None, *items: tuple[str, int]) -> CheckoutBody:
    return CheckoutBody(customer, tuple(sorted(LineItem(p, q) for p, q in (items or (("P-1", 1),)))))


def limited(per_minute: float = 1, burst: int = 2) -> World:
    return build_world(config(checkout_rate=RatePolicy(per_minute=per_minute, burst=burst)))


async def test_the_order_is_placed_in_the_callers_name(world: World) -> None:
    result = await world.services.customer_checkout(who("alice"), body(), None)
    assert result.order.customer_id == "alice"
    same = await world.services.customer_checkout(who("alice"), body("alice"), None)
    assert same.order.customer_id == "alice"
    with pytest.raises(Forbidden):
        await world.services.customer_checkout(who("mallory", "ops"), body("alice"), None)
    assert {o.customer_id for o in world.store.orders.values()} == {"alice"}


async def test_caps_are_422_before_anything_is_written() -> None:
    world = build_world(config(order_caps=OrderCaps(max_lines=2, max_units_per_line=3)))
    with pytest.raises(ValidationFailed) as refused:
        await world.services.customer_checkout(who("alice"), body(None, ("P-1", 4)), None)
    assert refused.value.errors[0]["field"] == "items[0].quantity"
    with pytest.raises(ValidationFailed):
        await world.services.customer_checkout(who("alice"), body(None, ("P-1", 1), ("P-2", 1), ("P-3", 1)), None)
    assert world.store.orders == {}


async def test_the_rate_limit_counts_new_orders_only() -> None:
    world = limited(burst=2)
    alice = who("alice")
    first = await world.services.customer_checkout(alice, body(), "k-1")
    for _ in range(5):  # replays give their slot back
        assert (await world.services.customer_checkout(alice, body(), "k-1")).replayed
    with pytest.raises(UnknownProduct):  # refused before writing: not counted either
        await world.services.customer_checkout(alice, body(None, ("NOPE", 1)), None)
    with pytest.raises(IdempotencyKeyReused):
        await world.services.customer_checkout(alice, body(None, ("P-1", 2)), "k-1")
    await world.services.customer_checkout(alice, body(), None)  # the second slot
    with pytest.raises(CheckoutRateLimited) as limit:
        await world.services.customer_checkout(alice, body(), None)
    assert limit.value.retry_after_s >= 1 and len(world.store.orders) == 2
    again = await world.services.customer_checkout(alice, body(), "k-1")  # a replay passes even when limited
    assert again.replayed and again.order.order_id == first.order.order_id
    await world.services.customer_checkout(who("bob"), body(), None)  # per customer


async def test_a_customer_reads_lists_and_cancels_only_their_own(world: World) -> None:
    mine = world.store.add(uuid.uuid4(), request("alice"))
    theirs = world.store.add(uuid.uuid4(), request("bob"))
    orders = world.services.customer_orders
    assert (await orders.get(who("alice"), mine.order_id)).order_id == mine.order_id
    with pytest.raises(OrderNotFound):
        await orders.get(who("alice"), theirs.order_id)
    assert (await orders.get(who("opsy", "ops"), theirs.order_id)).customer_id == "bob"
    listed = await orders.recent(who("alice"), status=None, customer_id=None, limit=10, before=None)
    assert [o.customer_id for o in listed] == ["alice"]
    with pytest.raises(Forbidden):
        await orders.recent(who("alice"), status=None, customer_id="bob", limit=10, before=None)
    everybody = await orders.recent(who("opsy", "ops"), status=None, customer_id=None, limit=10, before=None)
    assert {o.customer_id for o in everybody} == {"alice", "bob"}
    for caller in (who("alice"), who("opsy", "ops")):
        with pytest.raises(OrderNotFound):
            await orders.cancel(caller, theirs.order_id)
    assert world.store.orders[theirs.order_id].status is OrderStatus.PENDING
    assert (await orders.cancel(who("alice"), mine.order_id)).order.status is OrderStatus.CANCELLED
