"""Order caps and the checkout rate limit from app settings (documented in README "Configuration").

`ORDER_MAX_LINES` (20), `ORDER_MAX_UNITS_PER_LINE` (10), `CHECKOUT_RATE_PER_MINUTE` (10 per customer),
`CHECKOUT_RATE_BURST` (5).
"""

from __future__ import annotations

from order_functions.domain.limits import DEFAULT_MAX_LINES, DEFAULT_MAX_UNITS_PER_LINE, OrderCaps
from order_functions.domain.rate_limit import DEFAULT_BURST, DEFAULT_CHECKOUTS_PER_MINUTE, RatePolicy
from valerix_common.env import env_float, env_int


def order_caps_from_env() -> OrderCaps:
    return OrderCaps(
        max_lines=env_int("ORDER_MAX_LINES", DEFAULT_MAX_LINES, minimum=1, maximum=50),
        max_units_per_line=env_int("ORDER_MAX_UNITS_PER_LINE", DEFAULT_MAX_UNITS_PER_LINE, minimum=1, maximum=1000),
    )


def checkout_rate_from_env() -> RatePolicy:
    return RatePolicy(
        per_minute=env_float("CHECKOUT_RATE_PER_MINUTE", DEFAULT_CHECKOUTS_PER_MINUTE, minimum=0.1, maximum=10_000),
        burst=env_int("CHECKOUT_RATE_BURST", DEFAULT_BURST, minimum=1, maximum=1000),
    )
