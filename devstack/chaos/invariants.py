"""The docs/architecture.md invariants as pure functions over rows (no servers), so they can be unit-tested.

`check_all(snapshot)` returns one `InvariantResult` per invariant, each with counter-examples when it fails.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

MAX_EXAMPLES = 5

Items = dict[str, int]  # product_id -> quantity


@dataclass(frozen=True)
class ProductRow:
    product_id: str
    available: int
    received: int


@dataclass(frozen=True)
class ReservationRow:
    order_id: str
    status: str  # RESERVED | REJECTED | RELEASED | SHIPPED | PENDING
    items: Items


@dataclass(frozen=True)
class OrderRow:
    order_id: str
    status: str  # pending | confirmed | rejected | cancelled | shipped
    items: Items
    customer_id: str = ""
    settled_via: str | None = None
    settle_ms: int | None = None


@dataclass(frozen=True)
class IdempotencyRow:
    customer_id: str
    idem_key: str
    order_id: str


@dataclass(frozen=True)
class OrderEventRow:
    """One row of the order outbox (order_events) and whether the relay has sent it."""

    event_id: str
    order_id: str
    type: str  # order.placed | order.confirmed | ...
    version: int
    sent: bool


@dataclass(frozen=True)
class ConsumerRow:
    """What the notifications add-on applied: each event id once, and the notification it wrote (if any)."""

    event_id: str
    type: str
    notifications: int  # rows in notifications.notifications for this event


@dataclass
class Snapshot:
    """What the checker reads: both databases, what the clients saw, and what the public API answered."""

    products: list[ProductRow] = field(default_factory=list)
    reservations: list[ReservationRow] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    idempotency: list[IdempotencyRow] = field(default_factory=list)
    # (customer_id, key) -> every order id any response to a request with that key carried
    client_keys: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # every order id a client saw in any response (create, replay, cancel, poll)
    client_seen_order_ids: set[str] = field(default_factory=set)
    # the public API's view (None: not read)
    api_order_status: dict[str, str | None] | None = None  # order_id -> status, None when the API answered 404
    api_product_available: dict[str, int] | None = None
    # the order outbox and the notifications add-on (None: not read)
    order_events: list[OrderEventRow] | None = None
    verify_unsent: int = 0  # verify intents the relay has not sent (or skipped)
    consumer: list[ConsumerRow] | None = None
    # issue 13 (None: not read): the order side's catalogue copy (product -> available); the reservation events the
    # inventory's relay sent; those the order side consumed (event id -> effect); transitions events made
    catalogue_copy: dict[str, int] | None = None
    sent_reservation_events: set[str] | None = None
    consumed_events: dict[str, str] | None = None
    event_transitions: list[tuple[str, str]] | None = None  # (order_id, to_status) with via = reservation-event


@dataclass
class InvariantResult:
    name: str
    description: str
    checked: int
    violations: list[str] = field(default_factory=list)
    violation_count: int = 0

    @property
    def ok(self) -> bool:
        return self.violation_count == 0

    def add(self, example: str) -> None:
        self.violation_count += 1
        if len(self.violations) < MAX_EXAMPLES:
            self.violations.append(example)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "ok": self.ok,
            "checked": self.checked,
            "violation_count": self.violation_count,
            "counter_examples": self.violations,
        }


def _fmt_items(items: Items) -> str:
    return ",".join(f"{p}x{q}" for p, q in sorted(items.items())) or "-"


def check_conservation(snap: Snapshot) -> InvariantResult:
    res = InvariantResult(
        "conservation", "per product: received = available + Σ RESERVED + Σ SHIPPED quantity, and available ≥ 0",
        len(snap.products),
    )
    held: dict[str, int] = defaultdict(int)  # reserved or shipped: either way no longer available
    for r in snap.reservations:
        if r.status in ("RESERVED", "SHIPPED"):
            for product, qty in r.items.items():
                held[product] += qty
    for p in snap.products:
        if p.available < 0:
            res.add(f"{p.product_id}: available={p.available} < 0")
        if p.received != p.available + held[p.product_id]:
            res.add(
                f"{p.product_id}: received={p.received} != available={p.available} + reserved={held[p.product_id]}"
                f" (diff {p.received - p.available - held[p.product_id]:+d})"
            )
    known = {p.product_id for p in snap.products}
    for product in sorted(set(held) - known):
        res.add(f"{product}: {held[product]} reserved for a product the products table does not have")
    return res


def check_confirmed_reserved(snap: Snapshot) -> InvariantResult:
    by_order = {r.order_id: r for r in snap.reservations}
    confirmed = [o for o in snap.orders if o.status == "confirmed"]
    res = InvariantResult(
        "confirmed_has_reservation", "every confirmed order has a RESERVED reservation with the same items",
        len(confirmed),
    )
    for o in confirmed:
        r = by_order.get(o.order_id)
        if r is None:
            res.add(f"order {o.order_id} confirmed, no reservation row")
        elif r.status != "RESERVED":
            res.add(f"order {o.order_id} confirmed, reservation {r.status}")
        elif r.items != o.items:
            res.add(f"order {o.order_id} confirmed items {_fmt_items(o.items)} != reserved {_fmt_items(r.items)}")
    return res


_ALLOWED_FOR = {"rejected": {"REJECTED"}, "cancelled": {"RELEASED"}}


def check_terminal_hold_nothing(snap: Snapshot) -> InvariantResult:
    by_order = {r.order_id: r for r in snap.reservations}
    terminal = [o for o in snap.orders if o.status in _ALLOWED_FOR]
    res = InvariantResult(
        "rejected_cancelled_hold_nothing",
        "rejected → reservation REJECTED or absent; cancelled → RELEASED or absent (never RESERVED)",
        len(terminal),
    )
    for o in terminal:
        r = by_order.get(o.order_id)
        if r is not None and r.status not in _ALLOWED_FOR[o.status]:
            res.add(f"order {o.order_id} {o.status}, reservation {r.status} ({_fmt_items(r.items)})")
    return res


def check_no_pending(snap: Snapshot) -> InvariantResult:
    res = InvariantResult("no_pending_after_quiescence", "no order is pending after the system quiesced",
                          len(snap.orders))
    for o in snap.orders:
        if o.status == "pending":
            res.add(f"order {o.order_id} still pending")
    return res


def check_idempotency(snap: Snapshot) -> InvariantResult:
    res = InvariantResult(
        "idempotency_key_one_order",
        "a key maps to exactly one order; every client retry with the same key got the same order_id",
        len(snap.client_keys) + len(snap.idempotency),
    )
    db: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in snap.idempotency:
        db[(row.customer_id, row.idem_key)].add(row.order_id)
    for (customer, key), ids in sorted(db.items()):
        if len(ids) > 1:
            res.add(f"key {customer}/{key} maps to {len(ids)} orders in the DB: {sorted(ids)}")
    for (customer, key), seen in sorted(snap.client_keys.items()):
        distinct = sorted(set(seen))
        if len(distinct) > 1:
            res.add(f"key {customer}/{key}: clients got different order ids {distinct}")
        elif distinct and db.get((customer, key)) and distinct[0] not in db[(customer, key)]:
            res.add(f"key {customer}/{key}: clients got {distinct[0]}, DB maps it to {sorted(db[(customer, key)])}")
        elif distinct and not db.get((customer, key)):
            res.add(f"key {customer}/{key}: clients got {distinct[0]}, no idempotency row in the DB")
    return res


def check_no_order_lost(snap: Snapshot) -> InvariantResult:
    known = {o.order_id for o in snap.orders}
    res = InvariantResult("no_order_lost", "every order id a client saw exists in the orders DB",
                          len(snap.client_seen_order_ids))
    for oid in sorted(snap.client_seen_order_ids - known):
        res.add(f"order {oid} was answered to a client but is not in the orders DB")
    return res


def check_no_orphan_reservation(snap: Snapshot) -> InvariantResult:
    known = {o.order_id for o in snap.orders}
    res = InvariantResult("no_orphan_reservation", "every reservation's order_id exists in the orders DB",
                          len(snap.reservations))
    for r in snap.reservations:
        if r.order_id not in known:
            res.add(f"reservation {r.order_id} ({r.status}, {_fmt_items(r.items)}) has no order")
    return res


def check_api_agrees(snap: Snapshot) -> InvariantResult:
    res = InvariantResult("api_agrees_with_db",
                          "GET /api/orders/{id} status and GET /api/products available match the databases", 0)
    if snap.api_order_status is not None:
        db_status = {o.order_id: o.status for o in snap.orders}
        res.checked += len(db_status)
        for oid, status in sorted(db_status.items()):
            if oid not in snap.api_order_status:
                res.add(f"order {oid}: not read through the API")
            elif snap.api_order_status[oid] != status:
                res.add(f"order {oid}: API says {snap.api_order_status[oid]}, DB says {status}")
    if snap.api_product_available is not None:
        res.checked += len(snap.products)
        for p in snap.products:
            api = snap.api_product_available.get(p.product_id)
            if api != p.available:
                res.add(f"product {p.product_id}: API available={api}, DB available={p.available}")
    return res


_TERMINAL_EVENTS = {"order.confirmed", "order.rejected", "order.cancelled", "order.shipped"}


def _event_type(status: str) -> str:
    return "order.placed" if status == "pending" else f"order.{status}"


def check_one_event_per_transition(snap: Snapshot) -> InvariantResult:
    res = InvariantResult(
        "order_events_one_per_transition",
        "each order's events are versions 1..n from order.placed to its current state, each terminal event once",
        0 if snap.order_events is None else len(snap.orders),
    )
    if snap.order_events is None:
        return res
    by_order: dict[str, list[OrderEventRow]] = defaultdict(list)
    for e in snap.order_events:
        by_order[e.order_id].append(e)
    for o in snap.orders:
        events = sorted(by_order.get(o.order_id, []), key=lambda e: e.version)
        types = [e.type for e in events]
        if [e.version for e in events] != list(range(1, len(events) + 1)):
            res.add(f"order {o.order_id}: versions {[e.version for e in events]} are not 1..{len(events)}")
        elif not events or types[0] != "order.placed" or types[-1] != _event_type(o.status):
            res.add(f"order {o.order_id} {o.status}: events {types}")
        elif any(types.count(t) > 1 for t in _TERMINAL_EVENTS):
            res.add(f"order {o.order_id}: a terminal event twice in {types}")
    return res


def check_outbox_drained(snap: Snapshot) -> InvariantResult:
    unsent = [e for e in snap.order_events or [] if not e.sent]
    res = InvariantResult("outbox_drained", "after quiescence no order event or verify intent is left unsent",
                          0 if snap.order_events is None else len(snap.order_events) + 1)
    for e in unsent:
        res.add(f"event {e.event_id} ({e.type} of order {e.order_id}) unsent")
    if snap.verify_unsent:
        res.add(f"{snap.verify_unsent} verify intent(s) unsent")
    return res


def check_consumer_applied_once(snap: Snapshot) -> InvariantResult:
    res = InvariantResult(
        "notifications_applied_once",
        "the notifications add-on applied every sent order event once, one notification per terminal event",
        0 if snap.consumer is None or snap.order_events is None else len(snap.order_events),
    )
    if snap.consumer is None or snap.order_events is None:
        return res
    applied = {c.event_id: c for c in snap.consumer}
    for e in snap.order_events:
        c = applied.pop(e.event_id, None)
        if c is None:
            if e.sent:
                res.add(f"event {e.event_id} ({e.type}) was sent but never applied")
            continue
        wanted = 1 if e.type in _TERMINAL_EVENTS else 0
        if c.notifications != wanted:
            res.add(f"event {e.event_id} ({e.type}): {c.notifications} notification(s), expected {wanted}")
    for event_id in sorted(applied):
        res.add(f"applied event {event_id} is not in the order outbox")
    return res


def check_shipped_reserved(snap: Snapshot) -> InvariantResult:
    by_order = {r.order_id: r for r in snap.reservations}
    shipped = [o for o in snap.orders if o.status == "shipped"]
    res = InvariantResult("shipped_has_shipped_reservation",
                          "every shipped order has a SHIPPED reservation with the same items", len(shipped))
    for o in shipped:
        r = by_order.get(o.order_id)
        if r is None or r.status != "SHIPPED":
            res.add(f"order {o.order_id} shipped, reservation {r.status if r else 'missing'}")
        elif r.items != o.items:
            res.add(f"order {o.order_id} shipped items {_fmt_items(o.items)} != {_fmt_items(r.items)}")
    return res


def check_catalogue_copy(snap: Snapshot) -> InvariantResult:
    res = InvariantResult("catalogue_copy_matches",
                          "after quiescence the order side's catalogue copy has every product's available stock",
                          len(snap.products) if snap.catalogue_copy is not None else 0)
    if snap.catalogue_copy is None:
        return res
    for p in snap.products:
        copy = snap.catalogue_copy.get(p.product_id)
        if copy != p.available:
            res.add(f"product {p.product_id}: copy available={copy}, inventory available={p.available}")
    return res


def check_events_applied_once(snap: Snapshot) -> InvariantResult:
    sent, consumed = snap.sent_reservation_events, snap.consumed_events
    transitions = snap.event_transitions or []
    res = InvariantResult("reservation_events_applied_once",
                          "every reservation event sent was consumed (once: by event id), and no event moved an "
                          "order into the same state twice", len(sent or ()) + len(transitions))
    if sent is None or consumed is None:
        return res
    for event_id in sorted(sent - set(consumed)):
        res.add(f"event {event_id} was sent but never consumed")
    moves: dict[tuple[str, str], int] = defaultdict(int)
    for order_id, to_status in transitions:
        moves[(order_id, to_status)] += 1
    for (order_id, to_status), n in sorted(moves.items()):
        if n > 1:
            res.add(f"order {order_id} moved to {to_status} {n} times by reservation events")
    return res


CHECKS = (
    check_conservation,
    check_confirmed_reserved,
    check_terminal_hold_nothing,
    check_no_pending,
    check_idempotency,
    check_no_order_lost,
    check_no_orphan_reservation,
    check_api_agrees,
    check_one_event_per_transition,
    check_outbox_drained,
    check_consumer_applied_once,
    check_shipped_reserved,
    check_catalogue_copy,
    check_events_applied_once,
)


def check_all(snap: Snapshot) -> list[InvariantResult]:
    return [check(snap) for check in CHECKS]
