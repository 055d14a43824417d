"""The checkout rate limiter port, in PostgreSQL (every instance shares it) or in one process (unit tests).

GCRA in one conditional statement: the customer's theoretical arrival time moves one interval on, unless that
would put it more than `burst` intervals ahead of now; no row back means "limited". The arithmetic is the
domain's (`order_functions/domain/rate_limit.py`), done by the database clock so instances need not agree on time.

A row whose TAT has passed says nothing a missing row would not (`GREATEST(tat, now())` is `now()` either way),
so the reconciler's timer deletes such rows in bounded batches (`purge_idle`): the table holds the customers
who ordered in the last `burst` intervals, not everybody who ever ordered.
"""

from __future__ import annotations

import math
import time

from order_functions.domain.rate_limit import InMemoryRateLimiter, RateDecision, RatePolicy
from order_functions.infrastructure.orders_repository import connection
from valerix_common.db import Pool

_ACQUIRE = (
    "INSERT INTO checkout_rate AS r (customer_id, tat) VALUES (%(c)s, now() + make_interval(secs => %(i)s))"
    " ON CONFLICT (customer_id) DO UPDATE SET tat = GREATEST(r.tat, now()) + make_interval(secs => %(i)s)"
    "  WHERE GREATEST(r.tat, now()) + make_interval(secs => %(i)s) - now() <= make_interval(secs => %(window)s)"
    " RETURNING tat"
)
_AHEAD = "SELECT EXTRACT(EPOCH FROM (tat - now()))::float8 AS ahead FROM checkout_rate WHERE customer_id = %(c)s"
# rows locked by a checkout in flight are skipped (that checkout moves their TAT on); the outer `tat < now()`
# is re-checked on the row as it is when deleted
_PURGE = (
    "DELETE FROM checkout_rate WHERE customer_id IN (SELECT customer_id FROM checkout_rate WHERE tat < now()"
    " LIMIT %(n)s FOR UPDATE SKIP LOCKED) AND tat < now()"
)
_REFUND = (
    "UPDATE checkout_rate SET tat = GREATEST(now(), tat - make_interval(secs => %(i)s)) WHERE customer_id = %(c)s"
)


class PostgresRateLimiter:
    def __init__(self, pool: Pool, policy: RatePolicy) -> None:
        self.pool = pool
        self.policy = policy

    async def acquire(self, key: str, wait_s: float | None = None) -> RateDecision:
        interval = self.policy.interval_s
        params = {"c": key, "i": interval, "window": self.policy.burst * interval}
        async with connection(self.pool, wait_s) as conn:
            cur = await conn.execute(_ACQUIRE, params)
            if await cur.fetchone() is not None:
                return RateDecision(True, 0.0, 0)
            cur = await conn.execute(_AHEAD, params)
            row = await cur.fetchone()
        ahead = float(row["ahead"]) if row else 0.0
        excess = ahead + interval - self.policy.burst * interval
        return RateDecision(False, 0.0, max(1, math.ceil(excess)))

    async def refund(self, key: str) -> None:
        async with connection(self.pool) as conn:
            await conn.execute(_REFUND, {"c": key, "i": self.policy.interval_s})

    async def purge_idle(self, limit: int) -> int:
        """Deletes up to `limit` rows whose TAT has passed; how many it deleted."""
        async with connection(self.pool) as conn:
            cur = await conn.execute(_PURGE, {"n": limit})
            return cur.rowcount


class ProcessRateLimiter:
    """The same port over one process's memory (unit tests on fakes; a single local host)."""

    def __init__(self, policy: RatePolicy) -> None:
        self.limiter = InMemoryRateLimiter(policy, time.monotonic)

    async def acquire(self, key: str, wait_s: float | None = None) -> RateDecision:
        return self.limiter.acquire(key)

    async def refund(self, key: str) -> None:
        self.limiter.refund(key)

    async def purge_idle(self, limit: int) -> int:
        return self.limiter.forget_idle(limit)
