"""Parsing the `GET /orders` query (interface/order_listing.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from order_functions.domain.models import Order, OrderStatus
from order_functions.domain.validation import Fault, ValidationFailed
from order_functions.interface.order_listing import encode_cursor, parse_order_listing


def test_defaults_and_filters() -> None:
    assert parse_order_listing({}).limit == 50
    listing = parse_order_listing({"status": "pending", "customer_id": "alice", "limit": "10"})
    assert (listing.status, listing.customer_id, listing.limit, listing.before) == (
        OrderStatus.PENDING, "alice", 10, None
    )


def test_cursor_round_trip() -> None:
    now = datetime.now(UTC)
    order = Order(uuid.uuid4(), "c", OrderStatus.PENDING, (), "", now, now)
    assert parse_order_listing({"cursor": encode_cursor(order)}).before == (now, order.order_id)


def test_every_bad_parameter_is_reported_at_once() -> None:
    with pytest.raises(ValidationFailed) as failed:
        parse_order_listing({"status": "lost", "customer_id": "bad id!", "limit": "500", "cursor": "%%%"})
    assert failed.value.fault is Fault.MALFORMED
    assert [e["field"] for e in failed.value.errors] == ["status", "customer_id", "limit", "cursor"]
