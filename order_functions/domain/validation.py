"""Checkout request validation: everything is checked before anything is written. No I/O."""

from __future__ import annotations

import enum
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from order_functions.domain.models import LineItem

MAX_BODY_BYTES = 16 * 1024
MAX_ITEMS = 50
MAX_QUANTITY = 1000
MAX_IDEMPOTENCY_KEY_LENGTH = 255
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,63}$")
PRODUCT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
IDEMPOTENCY_KEY = re.compile(rf"^[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_LENGTH}}}$")


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


def _err(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def parse_checkout(body: bytes) -> CheckoutRequest:
    if len(body) > MAX_BODY_BYTES:
        raise ValidationFailed(
            [_err("body", f"at most {MAX_BODY_BYTES} bytes")], Fault.TOO_LARGE, "Request body too large"
        )
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValidationFailed([_err("body", f"not valid JSON: {exc}")], Fault.MALFORMED, "Malformed JSON") from exc
    if not isinstance(data, dict):
        raise ValidationFailed([_err("body", "must be a JSON object")], Fault.MALFORMED, "Malformed request")
    errors: list[dict[str, str]] = []
    unknown = sorted(set(data) - {"customer_id", "items"})
    if unknown:
        errors.append(_err("body", f"unknown field(s): {', '.join(unknown)[:200]}"))
    customer_id = data.get("customer_id")
    if not isinstance(customer_id, str):
        errors.append(_err("customer_id", "is required and must be a string"))
    elif not CUSTOMER_ID.match(customer_id):
        errors.append(_err("customer_id", "1-64 characters: letters, digits and _ . @ : -"))
    raw_items = data.get("items")
    items: list[LineItem] = []
    if not isinstance(raw_items, list):
        errors.append(_err("items", "is required and must be a list"))
    elif not raw_items:
        errors.append(_err("items", "at least one item is required"))
    elif len(raw_items) > MAX_ITEMS:
        errors.append(_err("items", f"at most {MAX_ITEMS} items per order"))
    else:
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
    if errors:
        raise ValidationFailed(errors)
    assert isinstance(customer_id, str)
    return CheckoutRequest(customer_id, tuple(sorted(items)))


def _parse_item(raw: Any, path: str) -> tuple[LineItem | None, list[dict[str, str]]]:
    if not isinstance(raw, dict):
        return None, [_err(path, "must be an object with product_id and quantity")]
    errors = []
    unknown = sorted(set(raw) - {"product_id", "quantity"})
    if unknown:
        errors.append(_err(path, f"unknown field(s): {', '.join(unknown)[:200]}"))
    product_id = raw.get("product_id")
    quantity = raw.get("quantity")
    if not isinstance(product_id, str) or not PRODUCT_ID.match(product_id):
        errors.append(_err(f"{path}.product_id", "must be a product id (letters, digits, _ . -; up to 64)"))
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
    if len(raw) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise ValidationFailed(
            [_err("Idempotency-Key", f"at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters")], Fault.MALFORMED,
            "Invalid Idempotency-Key",
        )
    if not IDEMPOTENCY_KEY.match(raw):
        raise ValidationFailed(
            [_err("Idempotency-Key", "printable ASCII without spaces")], Fault.MALFORMED, "Invalid Idempotency-Key"
        )
    return raw


def parse_order_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except (ValueError, TypeError) as exc:
        raise ValidationFailed([_err("order_id", "must be a UUID")], Fault.MALFORMED, "Invalid order id") from exc
