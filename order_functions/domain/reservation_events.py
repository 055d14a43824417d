"""The inventory's reservation events as this service reads them (docs/reservation-events.md). No I/O.

Anything that cannot be read is a `PoisonEvent`: retrying cannot help, so the bus dead-letters it after its
delivery attempts, where an operator can look at it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

SETTLING_TYPES = {
    "reservation.reserved": "RESERVED",
    "reservation.rejected": "REJECTED",
    "reservation.released": "RELEASED",
    "reservation.shipped": "SHIPPED",
}
STOCK_CHANGED = "stock.changed"


class PoisonEvent(ValueError):
    """The message is not a reservation event this service can read."""


@dataclass(frozen=True)
class ReservationDecision:
    event_id: UUID
    event_type: str
    order_id: UUID
    status: str  # RESERVED | REJECTED | RELEASED | SHIPPED
    reason: str
    short_product_id: str


@dataclass(frozen=True)
class StockLevel:
    product_id: str
    name: str
    available: int
    reserved: int
    shipped: int
    version: int


@dataclass(frozen=True)
class StockChanged:
    event_id: UUID
    event_type: str
    products: tuple[StockLevel, ...]


@dataclass(frozen=True)
class OtherEvent:
    """A type this version does not know (a newer inventory): recorded and skipped, never a poison."""

    event_id: UUID
    event_type: str


ReservationEvent = ReservationDecision | StockChanged | OtherEvent


def parse_reservation_event(body: bytes) -> ReservationEvent:
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise PoisonEvent("the body is not a JSON object")
        event_id = UUID(_text(data, "event_id"))
        event_type = _text(data, "type")
        if event_type in SETTLING_TYPES:
            return _decision(data, event_id, event_type)
        if event_type == STOCK_CHANGED:
            products = data.get("products")
            if not isinstance(products, list):
                raise PoisonEvent("stock.changed without a products list")
            return StockChanged(event_id, event_type, tuple(_level(p) for p in products))
        return OtherEvent(event_id, event_type)
    except PoisonEvent:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # json, UUID and shape errors alike
        raise PoisonEvent(f"unreadable reservation event: {type(exc).__name__}: {exc}"[:300]) from exc


def _decision(data: dict[str, Any], event_id: UUID, event_type: str) -> ReservationDecision:
    reservation = data.get("reservation")
    if not isinstance(reservation, dict):
        raise PoisonEvent(f"{event_type} without a reservation")
    return ReservationDecision(
        event_id=event_id,
        event_type=event_type,
        order_id=UUID(_text(data, "order_id")),
        status=SETTLING_TYPES[event_type],
        reason=str(reservation.get("reason") or ""),
        short_product_id=str(reservation.get("short_product_id") or ""),
    )


def _level(raw: Any) -> StockLevel:
    if not isinstance(raw, dict):
        raise PoisonEvent("a product entry is not an object")
    numbers = {k: raw[k] for k in ("available", "reserved", "shipped", "version")}
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in numbers.values()):
        raise PoisonEvent(f"product {raw.get('product_id')!r}: stock figures must be non-negative integers")
    return StockLevel(product_id=_text(raw, "product_id"), name=str(raw.get("name") or ""), **numbers)


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise PoisonEvent(f"{key!r} must be a non-empty string")
    return value
