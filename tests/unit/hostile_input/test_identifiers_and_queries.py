"""Identifiers are matched whole; query parameters accept ASCII digits and our own cursors only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from order_functions.domain.identifiers import (
    check_customer_id,
    check_idempotency_key,
    check_order_id,
    check_product_id,
    is_customer_id,
)
from order_functions.domain.query_params import Cursor, encode_cursor, parse_cursor, parse_limit


@pytest.mark.parametrize("value", ["alice\n", "alice\r\n", "\nalice", "ali ce", "alice\x00", "alice\x7f", "a" * 65,
                                   "", "-alice", "ålice", "аlice", None, 5, ["alice"]])
def test_bad_customer_ids(value: object) -> None:
    problems = check_customer_id(value)
    assert len(problems) == 1 and problems[0]["field"] == "customer_id"


@pytest.mark.parametrize("value", ["alice", "a", "user@example.com", "tenant:42", "A.b_c-d", "x" * 64,
                                   "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ"])  # an Entra pairwise `sub`
def test_good_customer_ids(value: str) -> None:
    assert check_customer_id(value) == [] and is_customer_id(value)


@pytest.mark.parametrize("value", ["P-1\n", "P 1", "P@1", "p" * 65, ""])
def test_bad_product_ids(value: str) -> None:
    assert check_product_id(value, "items[0].product_id")[0]["field"] == "items[0].product_id"


@pytest.mark.parametrize("value", ["key\n", "key with space", "k\x00", "é", "k" * 256, ""])
def test_bad_idempotency_keys(value: str) -> None:
    assert check_idempotency_key(value)


def test_good_idempotency_key() -> None:
    assert check_idempotency_key("order-2026-12-01T20:00:00Z#1") == []


@pytest.mark.parametrize("value", [f"{{{uuid.uuid4()}}}", f"urn:uuid:{uuid.uuid4()}", uuid.uuid4().hex,
                                   f"{uuid.uuid4()}\n", "not-a-uuid"])
def test_only_canonical_order_ids(value: str) -> None:
    assert check_order_id(value)


def test_canonical_order_id() -> None:
    assert check_order_id(str(uuid.uuid4())) == [] and check_order_id(str(uuid.uuid4()).upper()) == []


@pytest.mark.parametrize("raw", ["²", "١٢", "0", "201", "9" * 5000, "-1", "+5", " 5", "5 ", "5\n", "1e2", "", "0x10"])
def test_bad_limits(raw: str) -> None:
    value, problems = parse_limit(raw)
    assert problems == [{"field": "limit", "message": "a whole number between 1 and 200"}] and value == 50


@pytest.mark.parametrize("raw, expected", [(None, 50), ("1", 1), ("200", 200), ("007", 7)])
def test_good_limits(raw: str | None, expected: int) -> None:
    assert parse_limit(raw) == (expected, [])


def test_a_cursor_round_trips() -> None:
    cursor = Cursor(datetime(2026, 12, 1, 20, 0, tzinfo=UTC), uuid.uuid4())
    assert parse_cursor(encode_cursor(cursor)) == (cursor, [])
    assert parse_cursor(None) == (None, []) and parse_cursor("") == (None, [])


@pytest.mark.parametrize("raw", [
    "!!!", "a" * 129, encode_cursor(Cursor(datetime(2026, 1, 1, tzinfo=UTC), uuid.uuid4())) + "\n",
    "MjAyNi0wMS0wMVQwMDowMDowMA==",  # a timestamp without an order id
    "MjAyNi0wMS0wMVQwMDowMDowMHx4",  # "...|x"
    "MjAyNi0wMS0wMVQwMDowMDowMHwxMjM0NTY3OC0xMjM0LTEyMzQtMTIzNC0xMjM0NTY3ODkwMTI=",  # no time zone
])
def test_foreign_cursors_are_refused(raw: str) -> None:
    assert parse_cursor(raw) == (None, [{"field": "cursor", "message": "not a cursor this API returned"}])
