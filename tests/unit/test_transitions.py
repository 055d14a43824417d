"""The single state-change seam: a lost race returns the winner's state and records nothing."""

from __future__ import annotations

import uuid

from order_functions.application.ports import ReservationOutcome, ReservationStatus
from order_functions.application.transitions import OrderTransitions
from order_functions.domain.models import OrderStatus, SettledVia
from tests.unit.fakes import FakeMetrics, FakeStore, request


async def test_winner_records_one_event_and_one_metric() -> None:
    store, metrics = FakeStore(), FakeMetrics()
    order = store.add(uuid.uuid4(), request())
    moved = await OrderTransitions(store, metrics).move(order, OrderStatus.CONFIRMED, SettledVia.VERIFY_ORDER, "")
    assert moved.status is OrderStatus.CONFIRMED and store.events == [(order.order_id, OrderStatus.CONFIRMED,
                                                                        SettledVia.VERIFY_ORDER)]
    assert metrics.outcomes == [("confirmed", "verify-order")]


async def test_loser_of_a_race_gets_the_winners_result() -> None:
    store, metrics = FakeStore(), FakeMetrics()
    order = store.add(uuid.uuid4(), request())
    store.cut_in[order.order_id] = OrderStatus.REJECTED  # VerifyOrder settled it a moment earlier
    outcome = ReservationOutcome(ReservationStatus.RESERVED)
    result = await OrderTransitions(store, metrics).settle(order, outcome, SettledVia.INVENTORY_REPLY)
    assert result.status is OrderStatus.REJECTED and result.settled_via is SettledVia.VERIFY_ORDER
    assert metrics.outcomes == []  # only the winner counts


async def test_terminal_states_never_change() -> None:
    store, metrics = FakeStore(), FakeMetrics()
    order = store.add(uuid.uuid4(), request(), status=OrderStatus.CANCELLED)
    result = await OrderTransitions(store, metrics).move(order, OrderStatus.CONFIRMED, SettledVia.VERIFY_ORDER, "")
    assert result.status is OrderStatus.CANCELLED and store.events == []
