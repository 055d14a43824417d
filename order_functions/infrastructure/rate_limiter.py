"""The checkout rate limit in PostgreSQL: every instance shares it, and the order write takes the slot.

GCRA as a CTE of the order's own statement (`SLOT`): the customer's theoretical arrival time moves one interval on,
unless that would put it more than `burst` intervals ahead of now; no row from `slot` means "limited", and then the
order is not inserted either. So a slot is taken exactly when an order is written: a replay, a key in use, a
refused product or a write that rolls back (timed out, cancelled) take none, and no second round trip is spent on
the limit (the benchmark measured the separate statement at ~7 % of the product's CPU per order). The arithmetic
is the domain's (`order_functions/domain/rate_limit.py`), done by the database clock so instances need not agree
on time: the statement's own start (`statement_timestamp()`), not its transaction's (`now()`: with an
Idempotency-Key the transaction began before the key's claim). `retry_after_s` reads how far ahead the TAT is, only
for a limited checkout.

A row whose TAT has passed says nothing a missing row would not (`GREATEST(tat, now())` is `now()` either way),
so the reconciler's timer deletes such rows in bounded batches (`purge_idle`): the table holds the customers
who ordered in the last `burst` intervals, not everybody who ever ordered.
"""

from __future__ import annotations

import math
from typing import Any

from psycopg import AsyncConnection

from order_functions.domain.rate_limit import RatePolicy
from valerix_common.db import Pool

# A CTE named `slot`; the statement's parameters: customer (the customer id), rate_interval, rate_window (seconds).
SLOT = (
    "slot AS (INSERT INTO checkout_rate AS r (customer_id, tat)"
    "  VALUES (%(customer)s, statement_timestamp() + make_interval(secs => %(rate_interval)s))"
    "  ON CONFLICT (customer_id) DO UPDATE"
    "   SET tat = GREATEST(r.tat, statement_timestamp()) + make_interval(secs => %(rate_interval)s)"
    "   WHERE GREATEST(r.tat, statement_timestamp()) + make_interval(secs => %(rate_interval)s) - statement_timestamp()"
    "    <= make_interval(secs => %(rate_window)s)"
    "  RETURNING tat)"
)
_AHEAD = (
    "SELECT EXTRACT(EPOCH FROM (tat - statement_timestamp()))::float8 AS ahead FROM checkout_rate"
    " WHERE customer_id = %s"
)
# rows locked by a checkout in flight are skipped (that checkout moves their TAT on); the outer `tat < now()`
# is re-checked on the row as it is when deleted
_PURGE = (
    "DELETE FROM checkout_rate WHERE customer_id IN (SELECT customer_id FROM checkout_rate WHERE tat < now()"
    " LIMIT %(n)s FOR UPDATE SKIP LOCKED) AND tat < now()"
)


def slot_params(policy: RatePolicy) -> dict[str, float]:
    return {"rate_interval": policy.interval_s, "rate_window": policy.burst * policy.interval_s}


async def retry_after_s(conn: AsyncConnection[Any], customer_id: str, policy: RatePolicy) -> int:
    """Whole seconds until the limited customer's next slot (at least 1)."""
    cur = await conn.execute(_AHEAD, (customer_id,))
    row = await cur.fetchone()
    ahead = float(row["ahead"]) if row else 0.0
    return max(1, math.ceil(ahead + policy.interval_s - policy.burst * policy.interval_s))


class IdleRateRows:
    """The reconciler's housekeeping of the rate table."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def purge_idle(self, limit: int) -> int:
        """Deletes up to `limit` rows whose TAT has passed; how many it deleted."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(_PURGE, {"n": limit})
            return cur.rowcount
