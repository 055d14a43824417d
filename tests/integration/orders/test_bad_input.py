"""Bad input: a 4xx problem+json with a clear message, and nothing written anywhere."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.orders import OrderHarness, call, http_request

GOOD_ITEM = {"product_id": "VLX-KB-001", "quantity": 1}

CASES: list[tuple[str, bytes, dict[str, str], int]] = [
    ("malformed json", b'{"customer_id": "c", "items": [', {}, 400),
    ("not an object", b"[1, 2]", {}, 400),
    ("missing items", json.dumps({"customer_id": "c"}).encode(), {}, 422),
    ("customer wrong type", json.dumps({"customer_id": 7, "items": [GOOD_ITEM]}).encode(), {}, 422),
    ("items wrong type", json.dumps({"customer_id": "c", "items": "all"}).encode(), {}, 422),
    ("empty items", json.dumps({"customer_id": "c", "items": []}).encode(), {}, 422),
    ("too many items", json.dumps({"customer_id": "c", "items": [
        {"product_id": f"P{n}", "quantity": 1} for n in range(51)]}).encode(), {}, 422),
    ("zero quantity", json.dumps({"customer_id": "c", "items": [{**GOOD_ITEM, "quantity": 0}]}).encode(), {}, 422),
    ("negative quantity", json.dumps({"customer_id": "c", "items": [{**GOOD_ITEM, "quantity": -1}]}).encode(),
     {}, 422),
    ("huge quantity", json.dumps({"customer_id": "c", "items": [{**GOOD_ITEM, "quantity": 10**12}]}).encode(),
     {}, 422),
    ("fractional quantity", json.dumps({"customer_id": "c", "items": [{**GOOD_ITEM, "quantity": 1.5}]}).encode(),
     {}, 422),
    ("boolean quantity", json.dumps({"customer_id": "c", "items": [{**GOOD_ITEM, "quantity": True}]}).encode(),
     {}, 422),
    ("duplicate product", json.dumps({"customer_id": "c", "items": [GOOD_ITEM, GOOD_ITEM]}).encode(), {}, 422),
    ("unknown field", json.dumps({"customer_id": "c", "items": [GOOD_ITEM], "coupon": "x"}).encode(), {}, 422),
    ("oversized body", json.dumps({"customer_id": "c", "items": [GOOD_ITEM], "pad": "x" * 20000}).encode(), {}, 413),
    ("over-long key", json.dumps({"customer_id": "c", "items": [GOOD_ITEM]}).encode(), {"Idempotency-Key": "k" * 256},
     400),
    ("key with spaces", json.dumps({"customer_id": "c", "items": [GOOD_ITEM]}).encode(), {"Idempotency-Key": "a b"},
     400),
    ("unknown product", json.dumps({"customer_id": "c", "items": [{"product_id": "NOPE-404", "quantity": 1}]}).encode(),
     {}, 422),
]


def _written(orders: OrderHarness) -> tuple[int, int, int]:
    return orders.count("orders"), orders.count("idempotency_keys"), orders.inventory.reservation_rows()


@pytest.mark.parametrize(("name", "raw", "headers", "expected"), CASES, ids=[c[0] for c in CASES])
async def test_bad_checkout_is_a_problem_and_writes_nothing(
    orders: OrderHarness, name: str, raw: bytes, headers: dict[str, str], expected: int
) -> None:
    before = _written(orders)
    resp = await _raw_call(raw, headers)
    status, body, content_type = resp
    assert status == expected, body
    assert content_type == "application/problem+json"
    assert body["status"] == expected and body["title"] and body["detail"] and body["type"]
    assert _written(orders) == before


async def _raw_call(raw: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    from tests.support.orders import FUNCTIONS

    # signed in as "c", the customer every case names (naming another one is a 403, tested with ownership)
    resp = await FUNCTIONS["create_order"](http_request("POST", "orders", raw=raw, headers=headers, customer="c"))
    return resp.status_code, json.loads(resp.get_body()), resp.mimetype


@pytest.mark.parametrize("function", ["get_order", "cancel_order"])
async def test_malformed_order_id_is_400(orders: OrderHarness, function: str) -> None:
    before = _written(orders)
    status, body, _ = await call(function, http_request("GET", "x", route_params={"order_id": "not-a-uuid"}))
    assert status == 400 and body["errors"][0]["field"] == "order_id"
    assert _written(orders) == before
