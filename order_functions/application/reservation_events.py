"""Settlement by events: the inventory's decision settles the pending order the moment it arrives, through the
same conditional transition the HTTP path, VerifyOrder and the reconciler use (whoever is first wins, the rest read
the winner's result); stock.changed events keep the catalogue copy current.

Idempotent by event id: a handled event is recorded in `consumed_events`, and a redelivery that finds it does
nothing. A stock change is recorded in the transaction that applies it. A decision is recorded after its
transition (which goes through the shared seam, in its own statement); a crash in between is still safe because
the transition itself is conditional (a second `pending -> confirmed` does not happen)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from uuid import UUID

from order_functions.application.ports import (
    CatalogueStore,
    ConsumedEvents,
    OrderStore,
    ReservationOutcome,
    ReservationStatus,
)
from order_functions.application.transitions import OrderTransitions
from order_functions.domain.models import ALLOWED_TRANSITIONS, Order, OrderStatus, SettledVia
from order_functions.domain.reservation_events import (
    OtherEvent,
    ReservationDecision,
    ReservationEvent,
    StockChanged,
)

log = logging.getLogger(__name__)

APPLIED, NO_OP, UNKNOWN_ORDER = "applied", "no-op", "unknown-order"


@dataclass(frozen=True)
class EventHandled:
    effect: str  # applied | no-op | unknown-order | duplicate
    order: Order | None = None


class ApplyReservationEvent:
    def __init__(
        self, orders: OrderStore, transitions: OrderTransitions, catalogue: CatalogueStore, consumed: ConsumedEvents
    ) -> None:
        self.orders = orders
        self.transitions = transitions
        self.catalogue = catalogue
        self.consumed = consumed

    async def __call__(self, event: ReservationEvent) -> EventHandled:
        if isinstance(event, StockChanged):
            # the copy and the record of the event commit together: a redelivery finds the record and stops
            moved = await self.catalogue.apply_levels(event.event_id, event.event_type, event.products)
            if moved is None:
                log.info("reservation event %s (%s) already handled", event.event_id, event.event_type)
                return EventHandled("duplicate")
            return EventHandled(APPLIED if moved else NO_OP)
        if await self.consumed.seen(event.event_id):
            log.info("reservation event %s (%s) already handled", event.event_id, event.event_type)
            return EventHandled("duplicate")
        if isinstance(event, ReservationDecision):
            handled = await self._settle(event)
            order_id: UUID | None = event.order_id
        else:
            assert isinstance(event, OtherEvent)
            log.warning("reservation event %s of unknown type %r skipped", event.event_id, event.event_type)
            handled, order_id = EventHandled(NO_OP), None
        if not await self.consumed.record(event.event_id, event.event_type, order_id, handled.effect):
            log.info("reservation event %s: a concurrent delivery recorded it first", event.event_id)
        return handled

    async def _settle(self, event: ReservationDecision) -> EventHandled:
        order = await self.orders.get(event.order_id)
        if order is None:
            # a reservation made by another client of the inventory (a benchmark, an operator): not ours to settle
            log.warning("reservation event %s for unknown order %s skipped", event.event_id, event.order_id)
            return EventHandled(UNKNOWN_ORDER)
        target, reason = _target(event)
        if target not in ALLOWED_TRANSITIONS[order.status]:
            log.info("reservation event %s: order %s already %s", event.event_id, order.order_id, order.status.value)
            return EventHandled(NO_OP, order)
        if event.status in ("RESERVED", "REJECTED"):
            outcome = ReservationOutcome(ReservationStatus(event.status), reason)
            after = await self.transitions.settle(order, outcome, SettledVia.RESERVATION_EVENT)
        else:
            after = await self.transitions.move(order, target, SettledVia.RESERVATION_EVENT, reason)
        # applied: the order reached the event's state while this delivery handled it (the seam decided the race)
        return EventHandled(APPLIED if after.status is target else NO_OP, after)


def _target(event: ReservationDecision) -> tuple[OrderStatus, str]:
    if event.status == "RESERVED":
        return OrderStatus.CONFIRMED, ""
    if event.status == "REJECTED":
        return OrderStatus.REJECTED, event.reason or "insufficient stock"
    if event.status == "RELEASED":
        return OrderStatus.CANCELLED, event.reason or "stock released"
    # the ship endpoint records `shipped` itself; this covers a crash between the inventory's ship and that record
    return OrderStatus.SHIPPED, ""
