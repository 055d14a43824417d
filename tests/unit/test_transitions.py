"""The single state-change seam: a lost race returns the winner's state and records nothing."""

from __future__ import annotations

import uuid

from order_functions.application.ports import ReservationOutcome, ReservationStatus
from order_functions.application.transitions import OrderTransitions
from order_functions.domain.models import OrderStatus, SettledVia
from tests.unit.fakes import FakeBus, FakeMetrics, FakeOutbox, FakeStore, request


def seam(store: FakeStore, metrics: FakeMetrics) -> tuple[OrderTransitions, FakeOutbox]:
    outbox = FakeOutbox(store, FakeBus(), FakeBus())
    return OrderTransitions(store, metrics, outbox), outbox


async def test_winner_records_one_event_and_one_metric() -> None:
    store, metrics = FakeStore(), FakeMetrics()
    order = store.add(uuid.uuid4(), request())
    transitions, outbox = seam(store, metrics)
    moved = await transitions.move(order, OrderStatus.CONFIRMED, SettledVia.VERIFY_ORDER, "")
    assert moved.status is OrderStatus.CONFIRMED and store.events == [(order.order_id, OrderStatus.CONFIRMED,
                                                                        SettledVia.VERIFY_ORDER)]
    assert metrics.outcomes == [("confirmed", "verify-order")]
    [(order_id, event, version)] = store.outbox_events  # the order event, written with the transition
    assert order_id == order.order_id and event.event_type == "order.confirmed" and version == 1
    assert outbox.kicks == [0.0]  # the relay is asked to publish it, without waiting for it


async def test_loser_of_a_race_gets_the_winners_result() -> None:
    store, metrics = FakeStore(), FakeMetrics()
    order = store.add(uuid.uuid4(), request())
    store.cut_in[order.order_id] = OrderStatus.REJECTED  # VerifyOrder settled it a moment earlier
    outcome = ReservationOutcome(ReservationStatus.RESERVED)
    transitions, outbox = seam(store, metrics)
    result = await transitions.settle(order, outcome, SettledVia.INVENTORY_REPLY)
    assert result.status is OrderStatus.REJECTED and result.settled_via is SettledVia.VERIFY_ORDER
    assert metrics.outcomes == []  # only the winner counts
    assert [e.event_type for _, e, _ in store.outbox_events] == ["order.rejected"] and outbox.kicks == []


async def test_terminal_states_never_change() -> None:
    store, metrics = FakeStore(), FakeMetrics()
    order = store.add(uuid.uuid4(), request(), status=OrderStatus.CANCELLED)
    transitions, _ = seam(store, metrics)
    result = await transitions.move(order, OrderStatus.CONFIRMED, SettledVia.VERIFY_ORDER, "")
    assert result.status is OrderStatus.CANCELLED and store.events == [] and store.outbox_events == []


async def test_each_event_has_its_own_id_type_and_the_next_version() -> None:
    store, metrics = FakeStore(), FakeMetrics()
    order = store.add(uuid.uuid4(), request())
    transitions, _ = seam(store, metrics)
    confirmed = await transitions.move(order, OrderStatus.CONFIRMED, SettledVia.INVENTORY_REPLY, "")
    await transitions.move(confirmed, OrderStatus.CANCELLED, SettledVia.CANCEL, "cancelled by customer")
    assert [(e.event_type, v) for _, e, v in store.outbox_events] == [("order.confirmed", 1), ("order.cancelled", 2)]
    assert len({e.event_id for _, e, _ in store.outbox_events}) == 2
