from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID


class Status(enum.StrEnum):
    RESERVED = "RESERVED"
    REJECTED = "REJECTED"
    RELEASED = "RELEASED"
    SHIPPED = "SHIPPED"


@dataclass(frozen=True, order=True)
class LineItem:
    product_id: str
    quantity: int


def canonical_items(items: Iterable[LineItem]) -> tuple[LineItem, ...]:
    """Items in the fixed lock order (product id); also the form replays are compared in."""
    return tuple(sorted(items))


@dataclass(frozen=True)
class Reservation:
    order_id: UUID
    status: Status
    items: tuple[LineItem, ...]
    short_product_id: str = ""
    reason: str = ""
    replayed: bool = False
    decided_at: datetime | None = None


@dataclass(frozen=True)
class Release:
    order_id: UUID
    status: Status
    restored: bool
    tombstone: bool


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    price_cents: int
    available: int
    reserved: int
    shipped: int = 0
    version: int = 0


@dataclass(frozen=True)
class Decision:
    status: Status
    short_product_id: str = ""
    reason: str = ""
    shortfalls: dict[str, int] = field(default_factory=dict)
