"""Per-customer checkout rate limit: GCRA (a token bucket kept as one timestamp per key). Pure; clock injected.

GCRA keeps a single number per customer, the "theoretical arrival time" (TAT), so the state fits anywhere:
a dict in one process (`InMemoryRateLimiter`, fine for one local host), or one row per customer in a shared
store. In Azure the Functions app scales out, so a per-process limit multiplies by the instance count and
resets on every restart: the TAT is kept in the orders PostgreSQL database, moved on by the statement that writes
the order (`INSERT ... ON CONFLICT (customer_id) DO UPDATE SET tat = GREATEST(tat, t) + interval
WHERE GREATEST(tat, t) + interval - t <= burst * interval RETURNING tat` as a CTE, t the statement's start; no row
= limited, and no order; infrastructure/rate_limiter.py). Azure Cache for Redis, or API Management's
`rate-limit-by-key` on the token's `sub` at the edge, would do as well. Count only checkouts that create an order:
an idempotent replay must not consume.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_CHECKOUTS_PER_MINUTE = 10
DEFAULT_BURST = 5


@dataclass(frozen=True)
class RatePolicy:
    per_minute: float = DEFAULT_CHECKOUTS_PER_MINUTE
    burst: int = DEFAULT_BURST  # checkouts allowed back to back after a quiet spell

    def __post_init__(self) -> None:
        if not (0 < self.per_minute <= 10_000 and 1 <= self.burst <= 1_000):
            raise ValueError("rate policy: 0 < per_minute <= 10000 and 1 <= burst <= 1000")

    @property
    def interval_s(self) -> float:
        return 60.0 / self.per_minute


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    tat: float  # the state to store (unchanged when refused)
    retry_after_s: int  # whole seconds for `Retry-After`; 0 when allowed


def decide(tat: float | None, now: float, policy: RatePolicy) -> RateDecision:
    """One checkout at `now` given the stored TAT (None for a customer never seen)."""
    interval = policy.interval_s
    current = now if tat is None else max(tat, now)
    candidate = current + interval
    excess = candidate - now - policy.burst * interval
    if excess > 1e-9:
        return RateDecision(False, current, max(1, math.ceil(excess)))
    return RateDecision(True, candidate, 0)


class InMemoryRateLimiter:
    """One process's limiter; forgets customers whose bucket is full again, so memory stays bounded."""

    def __init__(self, policy: RatePolicy, clock: Callable[[], float], max_keys: int = 100_000) -> None:
        self.policy = policy
        self.clock = clock
        self.max_keys = max_keys
        self._tat: dict[str, float] = {}

    def acquire(self, key: str) -> RateDecision:
        now = self.clock()
        decision = decide(self._tat.get(key), now, self.policy)
        if decision.allowed:
            self._tat[key] = decision.tat
            if len(self._tat) > self.max_keys:
                self._forget_idle(now)
        return decision

    def _forget_idle(self, now: float) -> None:
        idle = [key for key, tat in self._tat.items() if tat <= now]
        for key in idle:
            del self._tat[key]
        while len(self._tat) > self.max_keys:  # all busy: drop the oldest entries (insertion order)
            del self._tat[next(iter(self._tat))]

    def forget_idle(self, limit: int) -> int:
        """Forgets up to `limit` customers whose bucket is full again (as if never seen); how many."""
        now = self.clock()
        idle = [key for key, tat in self._tat.items() if tat <= now][:limit]
        for key in idle:
            del self._tat[key]
        return len(idle)

    def __len__(self) -> int:
        return len(self._tat)
