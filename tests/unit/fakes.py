"""In-memory fakes of the application's ports, for use-case unit tests (no servers, no I/O).

They keep the contracts the real adapters keep: conditional transitions (only from allowed source states), one
order per (customer, Idempotency-Key) with the body's fingerprint, and the in-flight window of a claimed key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from order_functions.application.ports import (
    ChaosSwitches,
    Created,
    CreateResult,
    DecisionLook,
    FirstLook,
    InFlight,
    InventoryRefused,
    InventoryUnavailable,
    KeyMismatch,
    Limited,
    NewOrderEvent,
    OutgoingMessage,
    ProductView,
    RelayReport,
    ReleaseOutcome,
    Replay,
    ReservationOutcome,
    ReservationStatus,
)
from order_functions.application.verify_queue import verify_message
from order_functions.config import OrderConfig
from order_functions.contracts.order_events import event_type_for
from order_functions.domain.models import LineItem, Order, OrderStatus, SettledVia, sources_for
from order_functions.domain.rate_limit import InMemoryRateLimiter, RatePolicy
from order_functions.domain.reservation_events import StockChanged, StockLevel
from order_functions.domain.validation import CheckoutRequest


def config(**overrides: object) -> OrderConfig:
    values: dict[str, object] = {
        "orders_database_url": "postgresql://unused", "inventory_target": "unused:0", "inventory_tls": False,
        "inventory_timeout_s": 2.0, "verify_timeout_s": 15.0, "verify_queue": "verify-order",
        "order_events_topic": "order-events", "bus_send_timeout_s": 1.0, "servicebus_namespace": "",
        "servicebus_connection": "",
        "local_bus_database_url": "", "stale_after_s": 30.0, "give_up_after_s": 600.0,
        "idempotency_in_flight_s": 30.0, "admin_api_enabled": True, "inventory_admin_token": "", "db_pool_size": 1,
    }
    values.update(overrides)
    return OrderConfig(**values)  # type: ignore[arg-type]


def request(customer: str = "c-1", *items: tuple[str, int]) -> CheckoutRequest:
    return CheckoutRequest(customer, tuple(sorted(LineItem(p, q) for p, q in (items or (("P-1", 1),)))))


@dataclasses.dataclass
class _Key:
    fingerprint: str
    order_id: UUID
    completed: bool = False


class FakeStore:
    def __init__(self) -> None:
        self.orders: dict[UUID, Order] = {}
        self.keys: dict[tuple[str, str], _Key] = {}
        self.events: list[tuple[UUID, OrderStatus, SettledVia]] = []
        self.verify_enqueued_at: dict[UUID, datetime] = {}
        self.expired_keys = 0
        self.cut_in: dict[UUID, OrderStatus] = {}  # a concurrent writer that wins the next transition of an order
        # the outbox: (order id, event, version) in commit order, and verify intents by order id (due time)
        self.outbox_events: list[tuple[UUID, NewOrderEvent, int]] = []
        self.verify_due: dict[UUID, datetime] = {}
        self.write_delay_s = 0.0  # a slow orders database: every write takes this long
        self.rates: dict[RatePolicy, InMemoryRateLimiter] = {}  # the checkout slots, per policy

    def add(self, order_id: UUID, req: CheckoutRequest, *, age_s: float = 0.0,
            status: OrderStatus = OrderStatus.PENDING) -> Order:
        created = datetime.now(UTC) - timedelta(seconds=age_s)
        order = Order(order_id, req.customer_id, status, req.items, "", created, created)
        self.orders[order_id] = order
        return order

    async def create(
        self, order_id: UUID, request: CheckoutRequest, idempotency_key: str | None, *, event: NewOrderEvent,
        verify_after_s: float, wait_s: float | None = None, rate: RatePolicy | None = None,
    ) -> CreateResult:
        await asyncio.sleep(self.write_delay_s)  # cancelled here, like a rolled-back write: nothing taken
        if idempotency_key is not None:
            key = self.keys.get((request.customer_id, idempotency_key))
            if key is not None:
                if key.fingerprint != request.fingerprint():
                    return KeyMismatch(key.order_id)
                if not key.completed:
                    return InFlight(key.order_id)
                return Replay(self.orders[key.order_id])
        if rate is not None:
            slot = self.rates.setdefault(rate, InMemoryRateLimiter(rate, time.monotonic)).acquire(request.customer_id)
            if not slot.allowed:
                return Limited(slot.retry_after_s)
        if idempotency_key is not None:
            self.keys[(request.customer_id, idempotency_key)] = _Key(request.fingerprint(), order_id)
        order = self.add(order_id, request)
        self.outbox_events.append((order_id, event, 1))
        self.verify_due[order_id] = order.created_at + timedelta(seconds=verify_after_s)
        return Created(order)

    async def complete_key(self, customer_id: str, key: str) -> None:
        self.keys[(customer_id, key)].completed = True

    async def get(self, order_id: UUID) -> Order | None:
        return self.orders.get(order_id)

    async def transition(
        self, order_id: UUID, to: OrderStatus, via: SettledVia, reason: str = "", *, event: NewOrderEvent
    ) -> Order | None:
        await asyncio.sleep(self.write_delay_s)
        if order_id in self.cut_in:  # the other writer's transition, with its own event
            winner = self.cut_in.pop(order_id)
            self._record(order_id, NewOrderEvent(uuid4(), event_type_for(winner.value)))
            self._apply(order_id, winner, SettledVia.VERIFY_ORDER, "")
        current = self.orders[order_id]
        if current.status not in sources_for(to):
            return None
        self._record(order_id, event)
        return self._apply(order_id, to, via, reason)

    def _record(self, order_id: UUID, event: NewOrderEvent) -> None:
        version = 1 + sum(1 for o, *_ in self.outbox_events if o == order_id)
        self.outbox_events.append((order_id, event, version))

    async def rearm_verify(self, order_id: UUID) -> None:
        self.verify_due[order_id] = min(self.verify_due.get(order_id, datetime.now(UTC)), datetime.now(UTC))

    def _apply(self, order_id: UUID, to: OrderStatus, via: SettledVia, reason: str) -> Order:
        current = self.orders[order_id]
        now = datetime.now(UTC)
        updated = dataclasses.replace(
            current, status=to, reason=reason or current.reason, updated_at=now,
            settled_via=current.settled_via or via, settled_at=current.settled_at or now,
        )
        self.orders[order_id] = updated
        self.events.append((order_id, to, via))
        return updated

    async def mark_verify_enqueued(self, order_id: UUID) -> int:
        """What the relay records when it sent a VerifyOrder (not a port method: the relay's own SQL)."""
        order = self.orders[order_id]
        self.orders[order_id] = dataclasses.replace(order, verify_attempts=order.verify_attempts + 1)
        self.verify_enqueued_at[order_id] = datetime.now(UTC)
        return order.verify_attempts + 1

    async def request_cancel(self, order_id: UUID) -> Order | None:
        order = self.orders[order_id]
        if order.status not in (OrderStatus.PENDING, OrderStatus.CONFIRMED):
            return None
        self.orders[order_id] = dataclasses.replace(order, cancel_requested=True)
        return self.orders[order_id]

    async def stale_pending(self, stale_after_s: float, give_up_after_s: float, limit: int) -> list[Order]:
        now = datetime.now(UTC)
        return [
            o for o in self.orders.values()
            if o.is_pending and not o.cancel_requested
            and timedelta(seconds=stale_after_s) < now - o.created_at <= timedelta(seconds=give_up_after_s)
            and now - self.verify_enqueued_at.get(o.order_id, datetime.min.replace(tzinfo=UTC))
            > timedelta(seconds=stale_after_s)
        ][:limit]

    async def give_up_expired(self, give_up_after_s: float, limit: int) -> int:
        now = datetime.now(UTC)
        expired = [o for o in self.orders.values() if o.is_pending and not o.cancel_requested
                   and now - o.created_at > timedelta(seconds=give_up_after_s)][:limit]
        for order in expired:
            self.orders[order.order_id] = dataclasses.replace(order, cancel_requested=True)
        return len(expired)

    async def cancel_requested(self, limit: int) -> list[Order]:
        return [o for o in self.orders.values() if o.cancel_requested
                and o.status in (OrderStatus.PENDING, OrderStatus.CONFIRMED)][:limit]

    async def purge_expired_keys(self, limit: int) -> int:
        purged, self.expired_keys = min(self.expired_keys, limit), max(0, self.expired_keys - limit)
        return purged

    async def recent(self, *, status: OrderStatus | None, customer_id: str | None, limit: int,
                     before: tuple[datetime, UUID] | None) -> list[Order]:
        found = [o for o in self.orders.values() if (status is None or o.status is status)
                 and (customer_id is None or o.customer_id == customer_id)
                 and (before is None or (o.created_at, o.order_id) < before)]
        return sorted(found, key=lambda o: (o.created_at, o.order_id), reverse=True)[:limit]

    async def ping(self) -> None:
        return None


class FakeOutbox:
    """The Outbox port on the fake store: `kick` only records; `relay` does what the real relay does (events to
    the events bus; due verify intents of pending orders to the verify bus, settled ones skipped)."""

    def __init__(self, store: FakeStore, bus: FakeBus, events_bus: FakeBus) -> None:
        self.store = store
        self.bus = bus
        self.events_bus = events_bus
        self.kicks: list[float] = []
        self.published = 0
        self.clock_offset_s = 0.0  # lets a test move "now" past the verify intents' due time

    def kick(self, delay_s: float = 0.0) -> None:
        self.kicks.append(delay_s)

    async def relay(self, timeout_s: float) -> RelayReport:
        events = 0
        for order_id, event, version in self.store.outbox_events[self.published:]:
            body = f'{{"event_id":"{event.event_id}","type":"{event.event_type}","version":{version}}}'.encode()
            await self.events_bus.send(OutgoingMessage(str(event.event_id), body, {"order_id": str(order_id)}))
            self.published += 1
            events += 1
        now = datetime.now(UTC) + timedelta(seconds=self.clock_offset_s)
        verifies = skipped = 0
        for order_id, due in sorted(self.store.verify_due.items(), key=lambda kv: kv[1]):
            if due > now:
                continue
            order = self.store.orders[order_id]
            if order.is_pending:
                await self.bus.send(verify_message(order_id, order.verify_attempts + 1))
                await self.store.mark_verify_enqueued(order_id)
                verifies += 1
            else:
                skipped += 1
            del self.store.verify_due[order_id]
        return RelayReport(events=events, verifies=verifies, skipped=skipped)


class FakeInventory:
    """Answers RESERVED unless told otherwise; `down` makes every call's outcome unknown."""

    def __init__(self, products: tuple[str, ...] = ("P-1", "P-2")) -> None:
        self.products = [ProductView(p, p.lower(), 100, 10, 0) for p in products]
        self.reserve_answer: ReservationOutcome | Exception = ReservationOutcome(ReservationStatus.RESERVED)
        self.release_answer: ReleaseOutcome | Exception = ReleaseOutcome(ReservationStatus.RELEASED, True, False)
        self.down = False
        self.reserved: list[UUID] = []
        self.released: list[UUID] = []
        self.shipped: list[UUID] = []
        self.ship_answer: Exception | None = None
        self.ship_timeouts: list[float] = []
        self.list_calls = 0
        self.list_attempts = 0
        self.chaos = ChaosSwitches(False, 2.0, 5.0, "", 0.0)
        self.chaos_refusal: InventoryRefused | None = None
        self.reserve_delay_s = 0.0  # a slow inventory: past the caller's timeout the outcome is unknown
        self.reserve_timeouts: list[float] = []

    def _unavailable(self) -> None:
        if self.down:
            raise InventoryUnavailable("UNAVAILABLE", "fake inventory is down")

    async def reserve(self, order_id: UUID, items: tuple[LineItem, ...], timeout_s: float) -> ReservationOutcome:
        self._unavailable()
        self.reserve_timeouts.append(timeout_s)
        if self.reserve_delay_s > timeout_s:
            await asyncio.sleep(timeout_s)
            raise InventoryUnavailable("DEADLINE_EXCEEDED", "fake inventory is slow")
        await asyncio.sleep(self.reserve_delay_s)
        if isinstance(self.reserve_answer, Exception):
            raise self.reserve_answer
        self.reserved.append(order_id)
        return self.reserve_answer

    async def release(self, order_id: UUID, reason: str, timeout_s: float) -> ReleaseOutcome:
        self._unavailable()
        if isinstance(self.release_answer, Exception):
            raise self.release_answer
        self.released.append(order_id)
        return self.release_answer

    async def list_products(self, timeout_s: float) -> list[ProductView]:
        self.list_attempts += 1
        self._unavailable()
        self.list_calls += 1
        return list(self.products)

    async def ship(self, order_id: UUID, timeout_s: float) -> bool:
        self.ship_timeouts.append(timeout_s)
        self._unavailable()
        if self.ship_answer is not None:
            raise self.ship_answer
        replayed = order_id in self.shipped
        if not replayed:
            self.shipped.append(order_id)
        return replayed

    async def check(self, timeout_s: float) -> None:
        self._unavailable()

    async def get_chaos(self, timeout_s: float) -> ChaosSwitches:
        if self.chaos_refusal is not None:
            raise self.chaos_refusal
        return self.chaos

    async def set_chaos(self, switches: ChaosSwitches, timeout_s: float) -> ChaosSwitches:
        if self.chaos_refusal is not None:
            raise self.chaos_refusal
        self.chaos = switches
        return switches


class FakeCatalogue:
    """Keeps the highest version per product, as the real store does."""

    def __init__(self, consumed: FakeConsumed) -> None:
        self.rows: dict[str, ProductView] = {}
        self.consumed = consumed  # the same store as the use case's: the real one shares the database
        self.listings = 0

    async def apply_levels(self, event_id: UUID, event_type: str, levels: tuple[StockLevel, ...]) -> int | None:
        if event_id in self.consumed.records:
            return None
        moved = 0
        for lv in levels:
            old = self.rows.get(lv.product_id)
            if old is None or old.version < lv.version:
                price = old.price_cents if old else 0
                self.rows[lv.product_id] = ProductView(lv.product_id, lv.name, price, lv.available, lv.reserved,
                                                       lv.shipped, lv.version, datetime.now(UTC))
                moved += 1
        self.consumed.records[event_id] = (event_type, None, "applied" if moved else "no-op")
        return moved

    async def apply_levels_many(self, events: Sequence[StockChanged]) -> list[bool | None]:
        moved = [await self.apply_levels(e.event_id, e.event_type, e.products) for e in events]
        return [None if m is None else m > 0 for m in moved]

    async def apply_listing(self, products: list[ProductView]) -> int:
        for p in products:
            old = self.rows.get(p.product_id)
            if old is not None and old.version > p.version:
                p = dataclasses.replace(old, name=p.name, price_cents=p.price_cents)
            self.rows[p.product_id] = dataclasses.replace(p, as_of=datetime.now(UTC))
        self.listings += 1
        return len(products)

    async def snapshot(self) -> list[ProductView]:
        return [self.rows[k] for k in sorted(self.rows)]

    async def listed(self) -> bool:
        return self.listings > 0


class FakeConsumed:
    def __init__(self, store: FakeStore | None = None) -> None:
        self.records: dict[UUID, tuple[str, UUID | None, str]] = {}
        self.store = store or FakeStore()  # the same database as the orders, as in the real one

    async def seen(self, event_id: UUID) -> bool:
        return event_id in self.records

    async def first_look(
        self, event_id: UUID, event_type: str, order_id: UUID, movable_from: tuple[OrderStatus, ...]
    ) -> FirstLook:
        if event_id in self.records:
            return FirstLook(seen=True, order=None, recorded=False)
        order = self.store.orders.get(order_id)
        if order is not None and order.status in movable_from:
            return FirstLook(seen=False, order=order, recorded=False)
        self.records[event_id] = (event_type, order_id, "no-op" if order is not None else "unknown-order")
        return FirstLook(seen=False, order=order, recorded=True)

    async def first_looks(self, looks: Sequence[DecisionLook]) -> list[FirstLook]:
        return [await self.first_look(x.event_id, x.event_type, x.order_id, x.movable_from) for x in looks]

    async def record(self, event_id: UUID, event_type: str, order_id: UUID | None, effect: str) -> bool:
        if event_id in self.records:
            return False
        self.records[event_id] = (event_type, order_id, effect)
        return True


class FakeBus:
    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []
        self.broken: Exception | None = None

    async def send(self, message: OutgoingMessage) -> None:
        if self.broken is not None:
            raise self.broken
        self.sent.append(message)

    async def check(self) -> None:
        if self.broken is not None:
            raise self.broken

    async def close(self) -> None:
        return None

    async def stats(self) -> dict[str, int]:
        return {"active": len(self.sent), "dead_lettered": 0}


class FakeMetrics:
    def __init__(self) -> None:
        self.outcomes: list[tuple[str, str]] = []
        self.calls: list[str] = []
        self.redeliveries: list[str] = []
        self.gauge_refreshes = 0

    def record_outcome(self, status: str, settled_via: str) -> None:
        self.outcomes.append((status, settled_via))

    @contextmanager
    def inventory_call(self, method: str) -> Iterator[None]:
        self.calls.append(method)
        yield

    def verify_redelivered(self, queue: str) -> None:
        self.redeliveries.append(queue)

    async def refresh_gauges(self) -> None:
        self.gauge_refreshes += 1
