"""The chaos invariant checker on small hand-made data sets: pure functions, no servers."""

from __future__ import annotations

from devstack.chaos.collect import parse_items
from devstack.chaos.invariants import (
    ConsumerRow,
    IdempotencyRow,
    InvariantResult,
    OrderEventRow,
    OrderRow,
    ProductRow,
    ReservationRow,
    Snapshot,
    check_all,
)
from devstack.chaos.report import percentile
from devstack.chaos.workload import build_plan

O1, O2, O3, O4 = (f"00000000-0000-4000-8000-00000000000{i}" for i in range(1, 5))


def clean() -> Snapshot:
    """A consistent world: A received 10, B 5; O1 confirmed (A2, B1), O2 rejected, O3 cancelled, O4 confirmed."""
    return Snapshot(
        products=[ProductRow("A", available=7, received=10), ProductRow("B", available=4, received=5)],
        reservations=[
            ReservationRow(O1, "RESERVED", {"A": 2, "B": 1}),
            ReservationRow(O2, "REJECTED", {"B": 9}),
            ReservationRow(O3, "RELEASED", {"A": 4}),
            ReservationRow(O4, "RESERVED", {"A": 1}),
        ],
        orders=[
            OrderRow(O1, "confirmed", {"A": 2, "B": 1}, "c1"),
            OrderRow(O2, "rejected", {"B": 9}, "c1"),
            OrderRow(O3, "cancelled", {"A": 4}, "c2"),
            OrderRow(O4, "confirmed", {"A": 1}, "c2"),
        ],
        idempotency=[IdempotencyRow("c1", "k1", O1), IdempotencyRow("c1", "k2", O2), IdempotencyRow("c2", "k3", O3),
                     IdempotencyRow("c2", "k4", O4)],
        client_keys={("c1", "k1"): [O1, O1], ("c1", "k2"): [O2], ("c2", "k3"): [O3], ("c2", "k4"): [O4]},
        client_seen_order_ids={O1, O2, O3, O4},
        api_order_status={O1: "confirmed", O2: "rejected", O3: "cancelled", O4: "confirmed"},
        api_product_available={"A": 7, "B": 4},
    )


def results(snap: Snapshot) -> dict[str, InvariantResult]:
    return {r.name: r for r in check_all(snap)}


def only_failure(snap: Snapshot, name: str) -> InvariantResult:
    res = results(snap)
    failed = sorted(n for n, r in res.items() if not r.ok)
    assert failed == [name], failed
    return res[name]


def test_clean_set_passes() -> None:
    res = results(clean())
    assert all(r.ok for r in res.values()), {n: r.violations for n, r in res.items()}
    assert len(res) == 14 and res["conservation"].checked == 2


def evented() -> Snapshot:
    """The clean world plus issue 13: O4 shipped (its 1 A left the warehouse), the copy, events sent and consumed."""
    snap = clean()
    snap.reservations[3] = ReservationRow(O4, "SHIPPED", {"A": 1})
    snap.orders[3] = OrderRow(O4, "shipped", {"A": 1}, "c2")
    snap.api_order_status = {**(snap.api_order_status or {}), O4: "shipped"}
    snap.catalogue_copy = {"A": 7, "B": 4}
    snap.sent_reservation_events = {"e1", "e2"}
    snap.consumed_events = {"e1": "applied", "e2": "no-op"}
    snap.event_transitions = [(O1, "confirmed"), (O4, "shipped")]
    return snap


def test_shipped_units_count_in_conservation_and_the_evented_world_passes() -> None:
    res = results(evented())
    assert all(r.ok for r in res.values()), {n: r.violations for n, r in res.items()}
    assert res["shipped_has_shipped_reservation"].checked == 1 and res["catalogue_copy_matches"].checked == 2


def test_a_shipped_order_without_a_shipped_reservation_is_detected() -> None:
    snap = evented()
    snap.reservations[3] = ReservationRow(O4, "RELEASED", {"A": 1})
    snap.products[0] = ProductRow("A", available=8, received=10)  # released: back on the shelf, copy follows
    snap.catalogue_copy = {"A": 8, "B": 4}
    snap.api_product_available = {"A": 8, "B": 4}
    res = only_failure(snap, "shipped_has_shipped_reservation")
    assert res.violations == [f"order {O4} shipped, reservation RELEASED"]


def test_a_stale_catalogue_copy_is_detected() -> None:
    snap = evented()
    snap.catalogue_copy = {"A": 9}
    res = only_failure(snap, "catalogue_copy_matches")
    assert res.violation_count == 2  # A differs, B is missing


def test_events_lost_or_applied_twice_are_detected() -> None:
    snap = evented()
    snap.sent_reservation_events = {"e1", "e2", "e3"}
    snap.event_transitions = [(O1, "confirmed"), (O1, "confirmed")]
    res = only_failure(snap, "reservation_events_applied_once")
    assert res.violations == ["event e3 was sent but never consumed", f"order {O1} moved to confirmed 2 times by "
                              "reservation events"]


def test_conservation_violation_is_detected() -> None:
    snap = clean()
    snap.products[0] = ProductRow("A", available=6, received=10)  # one unit vanished
    snap.api_product_available = {"A": 6, "B": 4}
    res = only_failure(snap, "conservation")
    assert res.violations == ["A: received=10 != available=6 + reserved=3 (diff +1)"]


def test_negative_available_is_detected() -> None:
    snap = clean()
    snap.products[1] = ProductRow("B", available=-1, received=0)
    snap.api_product_available = {"A": 7, "B": -1}
    res = results(snap)["conservation"]
    assert not res.ok and any("available=-1 < 0" in v for v in res.violations)


def test_confirmed_order_without_reservation_is_detected() -> None:
    snap = clean()
    snap.reservations = [r for r in snap.reservations if r.order_id != O4]
    snap.products[0] = ProductRow("A", available=8, received=10)  # keep conservation true
    snap.api_product_available = {"A": 8, "B": 4}
    res = only_failure(snap, "confirmed_has_reservation")
    assert res.violations == [f"order {O4} confirmed, no reservation row"]


def test_confirmed_order_with_other_items_is_detected() -> None:
    snap = clean()
    snap.reservations[3] = ReservationRow(O4, "RESERVED", {"B": 1})
    snap.products = [ProductRow("A", 8, 10), ProductRow("B", 3, 5)]
    snap.api_product_available = {"A": 8, "B": 3}
    res = only_failure(snap, "confirmed_has_reservation")
    assert "Ax1 != reserved Bx1" in res.violations[0]


def test_cancelled_order_holding_stock_is_detected() -> None:
    snap = clean()
    snap.reservations[2] = ReservationRow(O3, "RESERVED", {"A": 4})
    snap.products[0] = ProductRow("A", available=3, received=10)
    snap.api_product_available = {"A": 3, "B": 4}
    res = only_failure(snap, "rejected_cancelled_hold_nothing")
    assert res.violations == [f"order {O3} cancelled, reservation RESERVED (Ax4)"]


def test_rejected_order_with_released_reservation_is_flagged() -> None:
    snap = clean()
    snap.reservations[1] = ReservationRow(O2, "RELEASED", {"B": 9})
    assert "reservation RELEASED" in only_failure(snap, "rejected_cancelled_hold_nothing").violations[0]


def test_absent_reservation_for_rejected_or_cancelled_is_fine() -> None:
    snap = clean()
    snap.reservations = [r for r in snap.reservations if r.order_id not in {O2, O3}]
    assert all(r.ok for r in check_all(snap))


def test_pending_order_is_detected() -> None:
    snap = clean()
    snap.orders.append(OrderRow(O4.replace("4", "5"), "pending", {"A": 1}, "c3"))
    snap.api_order_status = {**(snap.api_order_status or {}), O4.replace("4", "5"): "pending"}
    res = only_failure(snap, "no_pending_after_quiescence")
    assert res.violations == [f"order {O4.replace('4', '5')} still pending"]


def test_key_mapping_to_two_orders_in_the_db_is_detected() -> None:
    snap = clean()
    snap.idempotency.append(IdempotencyRow("c1", "k1", O4))
    res = only_failure(snap, "idempotency_key_one_order")
    assert any("key c1/k1 maps to 2 orders" in v for v in res.violations)


def test_client_retry_getting_another_order_is_detected() -> None:
    snap = clean()
    snap.client_keys[("c1", "k1")] = [O1, O4]
    res = only_failure(snap, "idempotency_key_one_order")
    assert res.violations == [f"key c1/k1: clients got different order ids {sorted([O1, O4])}"]


def test_lost_order_is_detected() -> None:
    snap = clean()
    ghost = "00000000-0000-4000-8000-0000000000ff"
    snap.client_seen_order_ids.add(ghost)
    assert only_failure(snap, "no_order_lost").violations == [
        f"order {ghost} was answered to a client but is not in the orders DB"
    ]


def test_reservation_without_order_is_detected() -> None:
    snap = clean()
    leak = "00000000-0000-4000-8000-0000000000aa"
    snap.reservations.append(ReservationRow(leak, "RELEASED", {"A": 1}))
    assert only_failure(snap, "no_orphan_reservation").violations[0].startswith(f"reservation {leak} (RELEASED")


def test_api_disagreeing_with_db_is_detected() -> None:
    snap = clean()
    snap.api_order_status = {**(snap.api_order_status or {}), O1: "pending"}
    snap.api_product_available = {"A": 7, "B": 5}
    res = only_failure(snap, "api_agrees_with_db")
    assert res.violation_count == 2


def test_counter_examples_are_capped_but_counted() -> None:
    snap = clean()
    for i in range(12):
        oid = f"00000000-0000-4000-8000-0000000001{i:02d}"
        snap.orders.append(OrderRow(oid, "pending", {}, "c9"))
    snap.api_order_status = None
    res = results(snap)["no_pending_after_quiescence"]
    assert res.violation_count == 12 and len(res.violations) == 5


def test_plan_is_a_function_of_the_seed() -> None:
    a = build_plan(7, 50, ["P2", "P1", "P3", "HOT"], "HOT")
    b = build_plan(7, 50, ["P3", "HOT", "P1", "P2"], "HOT")
    c = build_plan(8, 50, ["P1", "P2", "P3", "HOT"], "HOT")
    assert a == b and a != c
    assert all(1 <= len(p.items) <= 3 for p in a.orders)
    assert len({p.idem_key for p in a.orders}) == 50


def test_helpers() -> None:
    assert parse_items([["A", 2], ["B", 1]]) == {"A": 2, "B": 1}
    assert parse_items('[{"product_id": "A", "quantity": 3}]') == {"A": 3}
    assert percentile([], 50) is None
    assert percentile([1.0, 2.0, 3.0, 4.0, 100.0], 50) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 100.0], 99) == 100.0


def with_events() -> Snapshot:
    """clean() plus its order outbox and what the notifications add-on applied, all consistent."""
    snap = clean()
    chains = {O1: ["order.placed", "order.confirmed"], O2: ["order.placed", "order.rejected"],
              O3: ["order.placed", "order.confirmed", "order.cancelled"], O4: ["order.placed", "order.confirmed"]}
    snap.order_events = [OrderEventRow(f"{oid}-e{v}", oid, t, v, True)
                         for oid, types in chains.items() for v, t in enumerate(types, start=1)]
    snap.consumer = [ConsumerRow(e.event_id, e.type, 0 if e.type == "order.placed" else 1) for e in snap.order_events]
    return snap


def _failing(snap: Snapshot) -> dict[str, InvariantResult]:
    return {r.name: r for r in check_all(snap) if not r.ok}


def test_consistent_events_and_consumer_pass() -> None:
    assert _failing(with_events()) == {}


def test_a_terminal_event_missing_or_twice_is_detected() -> None:
    snap = with_events()
    assert snap.order_events is not None
    snap.order_events = [e for e in snap.order_events if e.event_id != f"{O2}-e2"]  # rejected without its event
    snap.order_events.append(OrderEventRow(f"{O1}-e3", O1, "order.confirmed", 3, True))  # confirmed twice
    failing = _failing(snap)
    examples = " ".join(failing["order_events_one_per_transition"].violations)
    assert failing["order_events_one_per_transition"].violation_count == 2 and O1 in examples and O2 in examples


def test_an_unsent_outbox_row_is_detected() -> None:
    snap = with_events()
    assert snap.order_events is not None
    snap.order_events[0] = OrderEventRow(snap.order_events[0].event_id, O1, "order.placed", 1, False)
    snap.verify_unsent = 2
    assert _failing(snap)["outbox_drained"].violation_count == 2


def test_an_event_applied_twice_or_never_is_detected() -> None:
    snap = with_events()
    assert snap.consumer is not None
    snap.consumer = [c for c in snap.consumer if c.event_id != f"{O3}-e3"]  # sent, never applied
    snap.consumer[1] = ConsumerRow(snap.consumer[1].event_id, "order.confirmed", 2)  # two notifications
    snap.consumer.append(ConsumerRow("stray", "order.shipped", 1))
    assert _failing(snap)["notifications_applied_once"].violation_count == 3

