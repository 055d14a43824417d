"""The sentence for people, per state: pure, so checked on plain orders."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

from order_functions.domain.models import LineItem, Order, OrderStatus
from order_functions.domain.order_messages import order_message


def order(status: OrderStatus, reason: str = "", **changes: object) -> Order:
    now = datetime.now(UTC)
    base = Order(uuid.uuid4(), "c-1", status, (LineItem("VLX-KB-001", 1),), reason, now, now)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_each_state_has_its_sentence() -> None:
    assert "confirmed" in order_message(order(OrderStatus.CONFIRMED))
    assert "within about 5 seconds" in order_message(order(OrderStatus.PENDING))
    assert "within about 9 seconds" in order_message(order(OrderStatus.PENDING), expected_wait_s=9)
    assert "cancelling" in order_message(order(OrderStatus.PENDING, cancel_requested=True))
    assert "cancelled" in order_message(order(OrderStatus.CANCELLED))
    assert "shipped" in order_message(order(OrderStatus.SHIPPED))


def test_out_of_stock_names_the_product() -> None:
    message = order_message(order(OrderStatus.REJECTED, "insufficient stock for VLX-KB-001: 2 available"))
    assert message == "Sorry, VLX-KB-001 is out of stock (only 2 left), so your order was not placed."
    assert "out of stock" in order_message(order(OrderStatus.REJECTED, "refused by inventory: gone"))


def test_every_message_is_one_sentence() -> None:
    for status in OrderStatus:
        text = order_message(order(status))
        assert text.endswith(".") and text.count(". ") == 0, text
