"""Whose notifications a caller reads: the add-on's ownership rules (the same as the orders')."""

from __future__ import annotations

import pytest

from order_functions.addons.notifications.access import listed_customer, order_reader
from order_functions.application.identity import Forbidden, Principal


def principal(subject: str, *roles: str) -> Principal:
    return Principal(subject, frozenset(roles), issuer="https://issuer.test")


def test_a_customer_reads_an_orders_notifications_only_as_their_own() -> None:
    assert order_reader(principal("alice")) == "alice"
    assert order_reader(principal("olga", "ops")) is None  # an operator reads anybody's


def test_a_customer_lists_their_own_notifications_by_default_or_by_name() -> None:
    assert listed_customer(principal("alice"), None) == "alice"
    assert listed_customer(principal("alice"), "alice") == "alice"


def test_listing_another_customers_notifications_needs_the_ops_role() -> None:
    with pytest.raises(Forbidden):
        listed_customer(principal("alice"), "bob")
    assert listed_customer(principal("olga", "ops"), "bob") == "bob"
