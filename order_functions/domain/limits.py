"""Per-order caps that fit a shop: a basket, not a warehouse clearance. No I/O; `from_env` is in infrastructure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from order_functions.domain.identifiers import Problems, problem
from order_functions.domain.models import LineItem

DEFAULT_MAX_LINES = 20
DEFAULT_MAX_UNITS_PER_LINE = 10


@dataclass(frozen=True)
class OrderCaps:
    max_lines: int = DEFAULT_MAX_LINES
    max_units_per_line: int = DEFAULT_MAX_UNITS_PER_LINE

    def __post_init__(self) -> None:
        if not (1 <= self.max_lines <= 50 and 1 <= self.max_units_per_line <= 1000):
            raise ValueError("order caps: 1..50 lines, 1..1000 units per line (the parser's hard limits)")


def check_caps(items: Sequence[LineItem], caps: OrderCaps) -> Problems:
    """422 problems for an order over the caps (checked after parsing, before anything is written)."""
    problems: Problems = []
    if len(items) > caps.max_lines:
        problems.append(problem("items", f"at most {caps.max_lines} different products per order"))
    for index, item in enumerate(items):
        if item.quantity > caps.max_units_per_line:
            problems.append(
                problem(f"items[{index}].quantity", f"at most {caps.max_units_per_line} units of a product per order")
            )
    return problems
