"""One plain sentence for a person, per order state (the brief's "a clear appropriate message to the user"). No I/O."""

from __future__ import annotations

import re

from order_functions.domain.models import Order, OrderStatus

# The inventory's rejection reads "insufficient stock for <product>: <n> available" (inventory domain rules).
_SHORT = re.compile(r"insufficient stock for (?P<product>[^\s:]+)(?::\s*(?P<available>\d+) available)?")

EXPECTED_WAIT_S = 5  # a pending order settles within the inventory's reply, the event or VerifyOrder: seconds


def order_message(order: Order, expected_wait_s: int = EXPECTED_WAIT_S) -> str:
    if order.status is OrderStatus.CONFIRMED:
        return "Your order is confirmed: the stock is reserved for you."
    if order.status is OrderStatus.PENDING:
        if order.cancel_requested:
            return "We are cancelling your order; this takes a few seconds."
        return (
            "We are still confirming your order with the warehouse; "
            f"expect an answer within about {expected_wait_s} seconds."
        )
    if order.status is OrderStatus.REJECTED:
        return _rejected(order.reason)
    if order.status is OrderStatus.CANCELLED:
        return "Your order is cancelled and its items were put back in stock."
    return "Your order has shipped: it has left the warehouse."


def _rejected(reason: str) -> str:
    match = _SHORT.search(reason)
    if match is None:
        return "Sorry, we could not place your order: part of it is out of stock."
    available = match.group("available")
    left = f" (only {available} left)" if available not in (None, "0") else ""
    return f"Sorry, {match.group('product')} is out of stock{left}, so your order was not placed."
