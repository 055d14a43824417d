"""What the use cases need from the outside world. Adapters in infrastructure/ implement these Protocols; the use
cases import nothing else from outside application/ and domain/."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from order_functions.domain.models import LineItem, Order, OrderStatus, SettledVia
from order_functions.domain.rate_limit import RatePolicy
from order_functions.domain.reservation_events import StockChanged
from order_functions.domain.validation import CheckoutRequest

# the bus message is shared with the inventory's relay (transport-free: no Azure, no PostgreSQL)
from valerix_common.bus.messages import OutgoingMessage as OutgoingMessage  # re-exported for the use cases

# --- inventory ---------------------------------------------------------------------------------------------------


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
    price_cents: int | None  # None: a product the copy knows from a stock event only, until the next refresh
    available: int
    reserved: int
    shipped: int = 0
    version: int = 0  # the inventory's per-product change counter: the catalogue copy keeps the highest
    as_of: datetime | None = None  # the copy's row: when an event or a refresh last confirmed it


@dataclass(frozen=True)
class ChaosSwitches:
    """The inventory's fault-injection settings (Gremlin delays, Schrödinger crashes) as the admin API sees them."""

    gremlin_enabled: bool
    min_delay_s: float
    max_delay_s: float
    pattern: str
    crash_rate: float


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

    async def ship(self, order_id: UUID, timeout_s: float) -> bool:
        """Turns the reservation into SHIPPED (idempotent; True when it had shipped already). Raises
        InventoryRefused when there is nothing to ship (no reservation, rejected, released)."""

    async def check(self, timeout_s: float) -> None:
        """Raises InventoryUnavailable unless the inventory's health service says SERVING."""


class ChaosControls(Protocol):
    """The inventory's admin RPCs (GetChaos / SetChaos); refusals raise InventoryRefused."""

    async def get_chaos(self, timeout_s: float) -> ChaosSwitches: ...

    async def set_chaos(self, switches: ChaosSwitches, timeout_s: float) -> ChaosSwitches: ...


# --- order store -------------------------------------------------------------------------------------------------


class StoreUnavailable(Exception):
    """The orders database cannot be reached (or its pool is exhausted): nothing was decided, retry later."""


@dataclass(frozen=True)
class Created:
    order: Order


@dataclass(frozen=True)
class Replay:
    order: Order


@dataclass(frozen=True)
class InFlight:
    order_id: UUID


@dataclass(frozen=True)
class KeyMismatch:
    order_id: UUID


@dataclass(frozen=True)
class Limited:
    """The customer has no checkout slot left: nothing was written (the key, if any, not claimed either)."""

    retry_after_s: int


CreateResult = Created | Replay | InFlight | KeyMismatch | Limited


@dataclass(frozen=True)
class NewOrderEvent:
    """An order event as the transition seam makes it; the store adds `version` and `occurred_at` in the statement
    that makes the transition, so the event commits if and only if the transition does."""

    event_id: UUID
    event_type: str
    traceparent: str = ""
    tracestate: str = ""


class OrderReader(Protocol):
    """The read side: what order queries and health need."""

    async def get(self, order_id: UUID) -> Order | None: ...

    async def recent(
        self, *, status: OrderStatus | None, customer_id: str | None, limit: int, before: tuple[datetime, UUID] | None
    ) -> list[Order]: ...

    async def ping(self) -> None: ...


class OrderStore(OrderReader, Protocol):
    """Orders and idempotency keys. Every state change is conditional, so concurrent writers agree."""

    async def create(
        self,
        order_id: UUID,
        request: CheckoutRequest,
        idempotency_key: str | None,
        *,
        event: NewOrderEvent,
        verify_after_s: float,
        wait_s: float | None = None,
        rate: RatePolicy | None = None,
    ) -> CreateResult:
        """Claims the key (if any) and inserts the pending order atomically, with its `order.placed` event and the
        intent to verify it (due `verify_after_s` after creation, sent only if it is still pending then).
        With `rate` the order is written only if its customer has a checkout slot under that policy, and the
        slot is taken in the same transaction (shared by every instance): a replay, a key in use or a write that
        does not commit takes none, and a customer without one gets `Limited` with nothing written.
        `wait_s` bounds the wait for a database connection (StoreUnavailable past it)."""

    async def complete_key(self, customer_id: str, key: str) -> None: ...

    async def transition(
        self, order_id: UUID, to: OrderStatus, via: SettledVia, reason: str = "", *, event: NewOrderEvent
    ) -> Order | None:
        """Moves the order to `to` if its current state allows it, appending `event` in the same statement; None
        when it does not (someone else won, and no event is written)."""

    async def rearm_verify(self, order_id: UUID) -> None:
        """Makes the order's verify intent due now (the relay sends it if the order is still pending)."""

    async def request_cancel(self, order_id: UUID) -> Order | None: ...

    async def stale_pending(self, stale_after_s: float, give_up_after_s: float, limit: int) -> list[Order]: ...

    async def give_up_expired(self, give_up_after_s: float, limit: int) -> int: ...

    async def cancel_requested(self, limit: int) -> list[Order]: ...

    async def purge_expired_keys(self, limit: int) -> int: ...


# --- the catalogue copy and consumed events ---------------------------------------------------------------------


class CatalogueStore(Protocol):
    """The Order Service's copy of the catalogue. Stock figures only ever move to a higher per-product version."""

    async def apply_levels_many(self, events: Sequence[StockChanged]) -> list[bool | None]:
        """Upserts the stock levels of several events (each id once) and records each event as consumed, in one
        transaction; per event, None when it had been consumed already (nothing changed for it), else whether it
        brought a figure newer than the copy held (as applying the events one by one would)."""

    async def apply_listing(self, products: list[ProductView]) -> int:
        """A full refresh: names and prices always, stock where the listing is not older than the copy."""

    async def snapshot(self) -> list[ProductView]:
        """Every product of the copy (empty when the copy was never filled)."""

    async def listed(self) -> bool:
        """True once a full listing was applied; before that the copy holds only what stock events brought."""


@dataclass(frozen=True)
class FirstLook:
    """What one look at a decision event found: seen before, the order (None: not ours), recorded here as handled."""

    seen: bool
    order: Order | None
    recorded: bool


@dataclass(frozen=True)
class DecisionLook:
    """One decision event to look at: the states its target can be reached from."""

    event_id: UUID
    event_type: str
    order_id: UUID
    movable_from: tuple[OrderStatus, ...]


class ConsumedEvents(Protocol):
    """Which reservation events this service has already handled (at-least-once delivery)."""

    async def seen(self, event_id: UUID) -> bool: ...

    async def first_looks(self, looks: Sequence[DecisionLook]) -> list[FirstLook]:
        """In one step, for each event in order (each event, and each order, at most once): whether it was handled
        before, the order, and, when neither is true and the order is missing or not in `movable_from` (the event
        cannot move it), the event recorded as handled (`no-op` or `unknown-order`). `recorded` is False when it was
        seen, when the order can still move, or when a concurrent delivery recorded it first."""

    async def record(self, event_id: UUID, event_type: str, order_id: UUID | None, effect: str) -> bool:
        """False when another delivery recorded it first."""


# --- message bus -------------------------------------------------------------------------------------------------


class MessageSender(Protocol):
    async def send(self, message: OutgoingMessage) -> None:
        """Durably enqueues; raises when the bus cannot be reached (the caller logs and relies on the reconciler)."""

    async def check(self) -> None:
        """Health: raises when the bus cannot be reached."""

    async def close(self) -> None: ...


class BatchSender(MessageSender, Protocol):
    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        """Sends the messages in order in as few round trips (and, locally, commits) as the transport allows; if it
        raises, some may have been sent: the caller resends them all (duplicate detection drops repeats)."""


@dataclass(frozen=True)
class RelayReport:
    events: int = 0  # order events published to order-events
    verifies: int = 0  # VerifyOrder messages sent
    skipped: int = 0  # verify intents whose order had settled in the meantime


class Outbox(Protocol):
    """The relay of the order outbox (order events and verify intents): the only code that talks to the bus for
    the write side, always off the customer's request path."""

    def kick(self, delay_s: float = 0.0) -> None:
        """Asks for a relay pass `delay_s` from now, without waiting for it; never raises."""

    async def relay(self, timeout_s: float) -> RelayReport:
        """One bounded pass now (the reconciler's backstop); raises when the bus or the database fails."""


class QueueStats(Protocol):
    """Counts of a queue the process can inspect itself (the local queue; Azure reports its own in metrics)."""

    async def stats(self) -> dict[str, int]: ...


# --- metrics -----------------------------------------------------------------------------------------------------


class Metrics(Protocol):
    def record_outcome(self, status: str, settled_via: str) -> None:
        """One order transition (out of pending, or a cancellation)."""

    def inventory_call(self, method: str) -> AbstractContextManager[None]:
        """Times one inventory call and records its outcome code."""

    def verify_redelivered(self, queue: str) -> None:
        """A VerifyOrder delivery after the first."""

    async def refresh_gauges(self) -> None:
        """Recomputes the values observable gauges publish (they cannot await themselves)."""
