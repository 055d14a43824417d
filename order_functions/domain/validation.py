"""Checkout request validation: everything is checked before anything is written. No I/O."""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from order_functions.domain.identifiers import (
    check_customer_id,
    check_idempotency_key,
    check_order_id,
    check_product_id,
)
from order_functions.domain.models import LineItem

MAX_BODY_BYTES = 16 * 1024
# the parser's hard limits; the shop's own caps (domain/limits.py, configurable) are checked by the checkout
MAX_ITEMS = 50
MAX_QUANTITY = 1000


class Fault(enum.StrEnum):
    """What is wrong with the input, so each transport can answer in its own terms."""

    MALFORMED = "malformed"  # not readable at all (not JSON, not an object, not a UUID ...)
    TOO_LARGE = "too-large"
    INVALID = "invalid"  # readable, but fields break the rules


class ValidationFailed(Exception):
    """Field-level problems, with an `errors` list of {field, message}."""

    def __init__(
        self, errors: list[dict[str, str]], fault: Fault = Fault.INVALID, title: str = "Invalid order"
    ) -> None:
        self.errors = errors
        self.fault = fault
        self.title = title
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


@dataclass(frozen=True)
class CheckoutRequest:
    customer_id: str
    items: tuple[LineItem, ...]  # product-id order: the canonical form for fingerprints and lock order

    def fingerprint(self) -> str:
        """Identifies 'the same body' for Idempotency-Key replays, whatever the JSON spelling or item order."""
        canonical = json.dumps(
            {"customer_id": self.customer_id, "items": [[i.product_id, i.quantity] for i in self.items]},
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CheckoutBody:
    """The checkout as the client sent it; `customer_id` may be left out (the signed-in customer is meant)."""

    customer_id: str | None
    items: tuple[LineItem, ...]  # product-id order


def _err(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def parse_checkout(body: bytes) -> CheckoutBody:
    """Strict JSON (depth, number size, duplicate keys: 400) and whole-value field rules (422)."""
    from order_functions.domain.strict_json import loads_object  # it builds on this module's errors

    data = loads_object(body)
    errors: list[dict[str, str]] = []
    unknown = sorted(set(data) - {"customer_id", "items"})
    if unknown:
        errors.append(_err("body", f"unknown field(s): {', '.join(unknown)[:200]}"))
    customer_id = data.get("customer_id")
    if customer_id is not None:
        errors += check_customer_id(customer_id)
    items, problems = _parse_items(data.get("items"))
    errors += problems
    if errors:
        raise ValidationFailed(errors)
    return CheckoutBody(customer_id, tuple(sorted(items)))


def _parse_items(raw_items: Any) -> tuple[list[LineItem], list[dict[str, str]]]:
    if not isinstance(raw_items, list):
        return [], [_err("items", "is required and must be a list")]
    if not raw_items:
        return [], [_err("items", "at least one item is required")]
    if len(raw_items) > MAX_ITEMS:
        return [], [_err("items", f"at most {MAX_ITEMS} items per order")]
    errors: list[dict[str, str]] = []
    items: list[LineItem] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_items):
        item, problems = _parse_item(raw, f"items[{index}]")
        errors += problems
        if item is None:
            continue
        if item.product_id in seen:
            errors.append(_err(f"items[{index}].product_id", f"{item.product_id} appears more than once"))
        seen.add(item.product_id)
        items.append(item)
    return items, errors


def _parse_item(raw: Any, path: str) -> tuple[LineItem | None, list[dict[str, str]]]:
    if not isinstance(raw, dict):
        return None, [_err(path, "must be an object with product_id and quantity")]
    errors = []
    unknown = sorted(set(raw) - {"product_id", "quantity"})
    if unknown:
        errors.append(_err(path, f"unknown field(s): {', '.join(unknown)[:200]}"))
    product_id = raw.get("product_id")
    quantity = raw.get("quantity")
    errors += check_product_id(product_id, f"{path}.product_id")
    # bool is an int in Python; JSON true is not a quantity
    if not isinstance(quantity, int) or isinstance(quantity, bool):
        errors.append(_err(f"{path}.quantity", "must be a whole number"))
    elif not 1 <= quantity <= MAX_QUANTITY:
        errors.append(_err(f"{path}.quantity", f"must be between 1 and {MAX_QUANTITY}"))
    if errors:
        return None, errors
    assert isinstance(product_id, str) and isinstance(quantity, int)
    return LineItem(product_id, quantity), []


def parse_idempotency_key(raw: str | None) -> str | None:
    if raw is None or raw == "":
        return None
    if problems := check_idempotency_key(raw):
        raise ValidationFailed(problems, Fault.MALFORMED, "Invalid Idempotency-Key")
    return raw


def parse_order_id(raw: str) -> uuid.UUID:
    if check_order_id(raw):
        raise ValidationFailed([_err("order_id", "must be a UUID")], Fault.MALFORMED, "Invalid order id")
    return uuid.UUID(raw)
