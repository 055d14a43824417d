"""Per-order caps and the per-customer checkout rate limit (GCRA) with an injected clock."""

from __future__ import annotations

import pytest

from order_functions.domain.limits import OrderCaps, check_caps
from order_functions.domain.models import LineItem
from order_functions.domain.rate_limit import InMemoryRateLimiter, RatePolicy, decide
from order_functions.infrastructure.limits_settings import checkout_rate_from_env, order_caps_from_env
from valerix_common.env import SettingError


def items(lines: int, quantity: int) -> list[LineItem]:
    return [LineItem(f"P-{n}", quantity) for n in range(lines)]


def test_a_shop_basket_fits_the_default_caps() -> None:
    assert check_caps(items(20, 10), OrderCaps()) == []


def test_over_the_caps_names_each_problem() -> None:
    problems = check_caps(items(21, 11), OrderCaps())
    assert problems[0] == {"field": "items", "message": "at most 20 different products per order"}
    assert [p["field"] for p in problems[1:]] == [f"items[{n}].quantity" for n in range(21)]


def test_caps_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_MAX_LINES", "5")
    monkeypatch.setenv("ORDER_MAX_UNITS_PER_LINE", "3")
    assert order_caps_from_env() == OrderCaps(5, 3)
    monkeypatch.setenv("ORDER_MAX_LINES", "500")
    with pytest.raises(SettingError):
        order_caps_from_env()


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_sustained_rate() -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(RatePolicy(per_minute=10, burst=5), clock)
    assert [limiter.acquire("alice").allowed for _ in range(5)] == [True] * 5
    refused = limiter.acquire("alice")
    assert not refused.allowed and refused.retry_after_s == 6  # one checkout every 6 s
    assert limiter.acquire("bob").allowed  # per customer
    clock.now += 5.9
    assert not limiter.acquire("alice").allowed
    clock.now += 0.1
    assert limiter.acquire("alice").allowed
    assert not limiter.acquire("alice").allowed


def test_refusals_do_not_extend_the_wait() -> None:
    policy = RatePolicy(per_minute=60, burst=1)
    first = decide(None, 0.0, policy)
    refused = [decide(first.tat, 0.5, policy) for _ in range(100)]
    assert all(not r.allowed and r.tat == first.tat for r in refused)
    assert decide(first.tat, 1.0, policy).allowed


def test_memory_stays_bounded_and_idle_customers_are_forgotten() -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(RatePolicy(per_minute=60, burst=2), clock, max_keys=100)
    for n in range(100):
        limiter.acquire(f"c{n}")
    clock.now += 10  # all buckets full again
    limiter.acquire("newcomer")
    assert len(limiter) == 1
    for n in range(300):
        limiter.acquire(f"busy{n}")
    assert len(limiter) <= 100


def test_forget_idle_is_bounded_and_spares_limited_customers() -> None:
    clock = Clock()
    limiter = InMemoryRateLimiter(RatePolicy(per_minute=60, burst=2), clock)
    for n in range(5):
        limiter.acquire(f"idle{n}")
    clock.now += 10  # their buckets are full again
    limiter.acquire("busy")
    limiter.acquire("busy")
    assert limiter.forget_idle(3) == 3 and len(limiter) == 3
    assert limiter.forget_idle(100) == 2 and len(limiter) == 1
    assert not limiter.acquire("busy").allowed  # still limited: not forgotten


def test_rate_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECKOUT_RATE_PER_MINUTE", "30")
    monkeypatch.setenv("CHECKOUT_RATE_BURST", "3")
    assert checkout_rate_from_env() == RatePolicy(30, 3)
    monkeypatch.setenv("CHECKOUT_RATE_PER_MINUTE", "0")
    with pytest.raises(SettingError):
        checkout_rate_from_env()
