"""Settlement by events: the inventory's decision settles the pending order the moment it arrives, through the
same conditional transition the HTTP path, VerifyOrder and the reconciler use (whoever is first wins, the rest read
the winner's result); stock.changed events keep the catalogue copy current.

Idempotent by event id: a handled event is recorded in `consumed_events`, and a redelivery that finds it does
nothing. A stock change is recorded in the statement that applies it. A decision the order can no longer take (the
HTTP reply settled it first: the common case) is recognised and recorded in one statement; any other is recorded
after its transition (which goes through the shared seam, in its own statement); a crash in between is still safe
because the transition itself is conditional (a second `pending -> confirmed` does not happen)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from order_functions.application.ports import (
    CatalogueStore,
    ConsumedEvents,
    DecisionLook,
    FirstLook,
    OrderStore,
    ReservationOutcome,
    ReservationStatus,
)
from order_functions.application.transitions import OrderTransitions
from order_functions.domain.models import ALLOWED_TRANSITIONS, Order, OrderStatus, SettledVia, sources_for
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

    async def batch(self, events: Sequence[ReservationEvent]) -> list[EventHandled]:
        """A trigger's batch: its stock changes in one statement, the first decision of each order in one look,
        then the rest one by one in the order received (a second event of one order, or a second copy of one
        event, sees what the first did)."""
        handled: dict[int, EventHandled] = {}
        ids: set[UUID] = set()
        orders: set[UUID] = set()
        stock: list[tuple[int, StockChanged]] = []
        decisions: list[tuple[int, ReservationDecision]] = []
        for n, event in enumerate(events):
            first_copy = event.event_id not in ids
            ids.add(event.event_id)
            if first_copy and isinstance(event, StockChanged):
                stock.append((n, event))
            elif first_copy and isinstance(event, ReservationDecision) and event.order_id not in orders:
                orders.add(event.order_id)
                decisions.append((n, event))
        if stock:
            effects = await self.catalogue.apply_levels_many([e for _, e in stock])
            handled.update({n: _stock_handled(e, f) for (n, e), f in zip(stock, effects, strict=True)})
        if decisions:
            looks = await self.consumed.first_looks([_look(e) for _, e in decisions])
            for (n, e), look in zip(decisions, looks, strict=True):
                handled[n] = await self._after_look(e, look)
        for n, event in enumerate(events):
            if n not in handled:
                handled[n] = await self(event)
        return [handled[n] for n in range(len(events))]

    async def __call__(self, event: ReservationEvent) -> EventHandled:
        if isinstance(event, StockChanged):
            # the copy and the record of the event commit together: a redelivery finds the record and stops
            [effect] = await self.catalogue.apply_levels_many([event])
            return _stock_handled(event, effect)
        if isinstance(event, ReservationDecision):
            return await self._decision(event)
        if await self.consumed.seen(event.event_id):
            log.info("reservation event %s (%s) already handled", event.event_id, event.event_type)
            return EventHandled("duplicate")
        assert isinstance(event, OtherEvent)  # a type this version does not know
        log.warning("reservation event %s of unknown type %r skipped", event.event_id, event.event_type)
        return await self._record(event, None, EventHandled(NO_OP))

    async def _record(self, event: ReservationEvent, order_id: UUID | None, handled: EventHandled) -> EventHandled:
        if not await self.consumed.record(event.event_id, event.event_type, order_id, handled.effect):
            log.info("reservation event %s: a concurrent delivery recorded it first", event.event_id)
        return handled

    async def _decision(self, event: ReservationDecision) -> EventHandled:
        """One look settles the common cases (a redelivery; an order the HTTP reply already settled, recorded as
        handled in that same statement); only an order the event can still move takes the transition."""
        [look] = await self.consumed.first_looks([_look(event)])
        return await self._after_look(event, look)

    async def _after_look(self, event: ReservationDecision, look: FirstLook) -> EventHandled:
        target, reason = _target(event)
        if look.seen:
            log.info("reservation event %s (%s) already handled", event.event_id, event.event_type)
            return EventHandled("duplicate")
        order = look.order
        if order is None:
            # a reservation made by another client of the inventory (a benchmark, an operator): not ours to settle
            log.warning("reservation event %s for unknown order %s skipped", event.event_id, event.order_id)
            handled = EventHandled(UNKNOWN_ORDER)
        elif target not in ALLOWED_TRANSITIONS[order.status]:
            log.info("reservation event %s: order %s already %s", event.event_id, order.order_id, order.status.value)
            handled = EventHandled(NO_OP, order)
        else:
            return await self._record(event, event.order_id, await self._settle(event, order, target, reason))
        if not look.recorded:
            log.info("reservation event %s: a concurrent delivery recorded it first", event.event_id)
        return handled

    async def _settle(self, event: ReservationDecision, order: Order, target: OrderStatus, reason: str) -> EventHandled:
        if event.status in ("RESERVED", "REJECTED"):
            outcome = ReservationOutcome(ReservationStatus(event.status), reason)
            after = await self.transitions.settle(order, outcome, SettledVia.RESERVATION_EVENT)
        else:
            after = await self.transitions.move(order, target, SettledVia.RESERVATION_EVENT, reason)
        # applied: the order reached the event's state while this delivery handled it (the seam decided the race)
        return EventHandled(APPLIED if after.status is target else NO_OP, after)


def _stock_handled(event: ReservationEvent, effect: bool | None) -> EventHandled:
    if effect is None:
        log.info("reservation event %s (%s) already handled", event.event_id, event.event_type)
        return EventHandled("duplicate")
    return EventHandled(APPLIED if effect else NO_OP)


def _look(event: ReservationDecision) -> DecisionLook:
    return DecisionLook(event.event_id, event.event_type, event.order_id, sources_for(_target(event)[0]))


def _target(event: ReservationDecision) -> tuple[OrderStatus, str]:
    if event.status == "RESERVED":
        return OrderStatus.CONFIRMED, ""
    if event.status == "REJECTED":
        return OrderStatus.REJECTED, event.reason or "insufficient stock"
    if event.status == "RELEASED":
        return OrderStatus.CANCELLED, event.reason or "stock released"
    # the ship endpoint records `shipped` itself; this covers a crash between the inventory's ship and that record
    return OrderStatus.SHIPPED, ""
