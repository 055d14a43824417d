"""The naive-vs-Valerix yardstick and the per-fault-window answer times: pure functions on hand-made runs."""

from __future__ import annotations

from devstack.chaos.compare import RunFacts, RunOrder, analyse, oversold
from devstack.chaos.invariants import ProductRow, ReservationRow
from devstack.chaos.windows import by_fault_window
from devstack.chaos.workload import Observations, Outcome, PlannedOrder


def planned(i: int) -> PlannedOrder:
    return PlannedOrder(i, f"c{i}", f"k{i}", (("A", 1),), resend=False, cancel_after_s=None)


def outcome(i: int, status: int, order_id: str | None, took: float = 1.0) -> Outcome:
    return Outcome(planned(i), order_id=order_id, first_status=status, started_at=100.0, answered_at=100.0 + took)


def test_each_anomaly_is_counted_once_per_customer_intent() -> None:
    obs = Observations()
    # 0: told failed (no order id), the late call reserved anyway; a retry then made a second order → 2 anomalies
    obs.outcomes[0] = outcome(0, 503, None, took=4.0)
    # 1: clean confirmation
    obs.outcomes[1] = outcome(1, 201, "o1")
    # 2: told confirmed, but nothing holds its stock (lost)
    obs.outcomes[2] = outcome(2, 201, "o2")
    # 3: accepted (202) and still pending (stuck); its settle time adds the order's own settle time
    obs.outcomes[3] = outcome(3, 202, "o3")
    orders = [RunOrder("o0a", ("c0", "k0"), "failed", 2.0), RunOrder("o0b", ("c0", "k0"), "failed", 2.0),
              RunOrder("o1", ("c1", "k1"), "confirmed", 0.1), RunOrder("o2", ("c2", "k2"), "confirmed", 0.1),
              RunOrder("o3", ("c3", "k3"), "pending", None)]
    reservations = [ReservationRow("o0a", "RESERVED", {"A": 1}), ReservationRow("o1", "RESERVED", {"A": 1}),
                    ReservationRow("o2", "RELEASED", {"A": 1})]
    fig = analyse(RunFacts("naive", obs, orders, reservations, [ProductRow("A", 8, 10)]))
    assert [s.split(":")[0] for s in fig.failed_but_taken] == ["#0 c0"]
    assert [s.split(":")[0] for s in fig.duplicates] == ["#0 c0"]
    assert fig.held_twice == 0  # one of its two orders holds stock
    assert [s.split(":")[0] for s in fig.stuck_or_lost] == ["#2 c2", "#3 c3"]
    assert fig.anomalous == {0, 2, 3}
    assert fig.intents == 4 and sorted(fig.settle_s) == [1.0, 1.0, 1.0, 4.0]
    assert fig.oversold_units == 0


def test_a_clean_run_has_no_anomaly_and_accepted_orders_settle_later() -> None:
    obs = Observations()
    obs.outcomes[0] = outcome(0, 202, "o0", took=2.0)
    obs.client_keys[("c0", "k0")] = ["o0", "o0"]  # a retry replayed the same order
    fig = analyse(RunFacts("valerix", obs, [RunOrder("o0", ("c0", "k0"), "confirmed", 3.5)],
                           [ReservationRow("o0", "RESERVED", {"A": 1})], [ProductRow("A", 9, 10)]))
    assert not fig.anomalous and fig.settle_s == [5.5]


def test_oversold_counts_units_beyond_what_was_received() -> None:
    products = [ProductRow("A", available=0, received=2), ProductRow("B", available=-1, received=3)]
    reservations = [ReservationRow("x", "RESERVED", {"A": 3}), ReservationRow("y", "RELEASED", {"A": 5})]
    assert oversold(products, reservations) == 1 + 1


def test_answer_times_are_grouped_by_the_fault_window_each_request_started_in() -> None:
    faults = [{"kind": "kill-inventory", "at_s": 10.0, "duration_s": 2.0},
              {"kind": "restart-postgres", "at_s": 20.0, "duration_s": 1.0}]
    calls = [(1000 + t, s) for t, s in ((1, 0.01), (5, 0.03), (10.5, 2.0), (11.9, 1.5), (20.2, 0.9), (30, 0.02))]
    rows = {r.label.split(" ")[0]: r for r in by_fault_window(calls, faults, started=1000.0)}
    assert rows["no"].count == 3 and rows["no"].max_s == 0.03
    assert rows["kill-inventory"].count == 2 and rows["kill-inventory"].max_s == 2.0
    assert rows["kill-inventory"].p50_s in (1.5, 2.0)
    assert rows["restart-postgres"].count == 1 and rows["restart-postgres"].p99_s == 0.9


def test_a_retry_that_reserved_twice_is_a_duplicate_holding_stock_twice() -> None:
    obs = Observations()
    obs.outcomes[0] = outcome(0, 201, "b")
    orders = [RunOrder("a", ("c0", "k0"), "failed", 2.0), RunOrder("b", ("c0", "k0"), "confirmed", 0.1)]
    reservations = [ReservationRow("a", "RESERVED", {"A": 1}), ReservationRow("b", "RESERVED", {"A": 1})]
    fig = analyse(RunFacts("naive", obs, orders, reservations, [ProductRow("A", 8, 10)]))
    assert len(fig.duplicates) == 1 and fig.held_twice == 1
    assert not fig.failed_but_taken, "the customer was told confirmed: the extra stock is the duplicate's harm"
    assert fig.anomalous == {0}
