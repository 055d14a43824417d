"""What the use cases need from the outside world. Adapters in infrastructure/ implement these."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from order_functions.domain.models import LineItem


class ReservationStatus(enum.StrEnum):
    RESERVED = "RESERVED"
    REJECTED = "REJECTED"
    RELEASED = "RELEASED"


@dataclass(frozen=True)
class ReservationOutcome:
    status: ReservationStatus
    reason: str = ""
    replayed: bool = False


@dataclass(frozen=True)
class ReleaseOutcome:
    status: ReservationStatus
    restored: bool
    tombstone: bool


@dataclass(frozen=True)
class ProductView:
    product_id: str
    name: str
    price_cents: int
    available: int
    reserved: int


class InventoryUnavailable(Exception):
    """No answer within the deadline, or the service could not be reached: the outcome is unknown."""

    def __init__(self, code: str, detail: str = "") -> None:
        self.code = code
        super().__init__(f"inventory {code}: {detail}"[:500])


class InventoryRefused(Exception):
    """Inventory answered that the request itself is wrong (unknown product, invalid, reused order id)."""

    def __init__(self, code: str, detail: str) -> None:
        self.code = code
        self.detail = detail
        super().__init__(f"inventory {code}: {detail}"[:500])


class Inventory(Protocol):
    async def reserve(self, order_id: UUID, items: tuple[LineItem, ...], timeout_s: float) -> ReservationOutcome: ...

    async def release(self, order_id: UUID, reason: str, timeout_s: float) -> ReleaseOutcome: ...

    async def list_products(self, timeout_s: float) -> list[ProductView]: ...

    async def check(self, timeout_s: float) -> None:
        """Raises InventoryUnavailable unless the inventory's health service says SERVING."""
