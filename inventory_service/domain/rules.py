"""Validation and the reservation decision (docs/architecture.md)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping

from inventory_service.domain.errors import ItemsMismatch, ValidationError
from inventory_service.domain.models import Decision, LineItem, Reservation, Status, canonical_items

MAX_ITEMS_PER_ORDER = 50
MAX_QUANTITY_PER_ITEM = 1000
MAX_RESTOCK_QUANTITY = 1_000_000
PRODUCT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def parse_order_id(raw: str, field: str = "order_id") -> uuid.UUID:
    if not raw:
        raise ValidationError([(field, "is required")])
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise ValidationError([(field, f"{raw[:64]!r} is not a UUID")]) from exc


def validate_product_id(product_id: str, field: str) -> list[tuple[str, str]]:
    if not PRODUCT_ID_PATTERN.match(product_id):
        return [(field, f"{product_id[:64]!r} is not a valid product id")]
    return []


def validate_items(items: Iterable[LineItem]) -> tuple[LineItem, ...]:
    items = tuple(items)
    errors: list[tuple[str, str]] = []
    if not items:
        errors.append(("items", "at least one item is required"))
    if len(items) > MAX_ITEMS_PER_ORDER:
        errors.append(("items", f"at most {MAX_ITEMS_PER_ORDER} items per order"))
    seen: set[str] = set()
    for index, item in enumerate(items[:MAX_ITEMS_PER_ORDER]):
        errors += validate_product_id(item.product_id, f"items[{index}].product_id")
        if not 1 <= item.quantity <= MAX_QUANTITY_PER_ITEM:
            errors.append((f"items[{index}].quantity", f"must be between 1 and {MAX_QUANTITY_PER_ITEM}"))
        if item.product_id in seen:
            errors.append((f"items[{index}].product_id", f"{item.product_id} appears more than once"))
        seen.add(item.product_id)
    if errors:
        raise ValidationError(errors)
    return canonical_items(items)


def decide(items: tuple[LineItem, ...], available: Mapping[str, int]) -> Decision:
    """All or nothing: reserve only when every item is covered; name the first short product otherwise."""
    shortfalls = {
        item.product_id: item.quantity - available[item.product_id]
        for item in items
        if available[item.product_id] < item.quantity
    }
    if not shortfalls:
        return Decision(Status.RESERVED)
    short = min(shortfalls)
    return Decision(
        Status.REJECTED,
        short_product_id=short,
        reason=f"insufficient stock for {short}: {available[short]} available",
        shortfalls=shortfalls,
    )


def check_replay(recorded: Reservation, requested: tuple[LineItem, ...]) -> None:
    """A replay must carry the recorded items; a tombstone (released before any decision) fences any items."""
    if recorded.status is Status.RELEASED and not recorded.items:
        return
    if canonical_items(recorded.items) != canonical_items(requested):
        raise ItemsMismatch(str(recorded.order_id))


def validate_restock(product_id: str, quantity: int, name: str, price_cents: int) -> None:
    errors = validate_product_id(product_id, "product_id")
    if not 1 <= quantity <= MAX_RESTOCK_QUANTITY:
        errors.append(("quantity", f"must be between 1 and {MAX_RESTOCK_QUANTITY}"))
    if len(name) > 200:
        errors.append(("name", "at most 200 characters"))
    if price_cents < 0:
        errors.append(("price_cents", "must not be negative"))
    if errors:
        raise ValidationError(errors)
