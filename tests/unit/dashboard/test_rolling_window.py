"""The rolling window behind the dashboard's 1-second alert (pure: every timestamp is given)."""

from __future__ import annotations

import pytest

from order_functions.domain.rolling_window import RollingWindow


def test_empty_window_has_no_average_and_is_not_slow() -> None:
    stats = RollingWindow(window_s=30, threshold_s=1).stats(now=100.0)
    assert stats.count == 0 and stats.average_s is None and stats.p95_s is None and stats.max_s is None
    assert not stats.slow
    assert stats.to_json()["state"] == "OK" and stats.to_json()["average_ms"] is None


def test_a_sample_exactly_at_the_window_edge_is_expired() -> None:
    window = RollingWindow(window_s=30, threshold_s=1)
    window.record(70.0, 5.0)  # finished exactly now - window: out
    window.record(70.001, 0.5)  # just inside
    stats = window.stats(now=100.0)
    assert stats.count == 1 and stats.average_s == pytest.approx(0.5)
    assert window.stats(now=100.001).count == 0


def test_samples_expire_as_time_moves_on_and_the_sum_follows() -> None:
    window = RollingWindow(window_s=10, threshold_s=1)
    for t in range(10):
        window.record(float(t), 2.0 if t < 5 else 0.1)
    assert window.stats(now=9.5).average_s == pytest.approx((5 * 2.0 + 5 * 0.1) / 10)
    later = window.stats(now=14.5)  # samples finished at 0..4 are gone
    assert later.count == 5 and later.average_s == pytest.approx(0.1) and not later.slow
    assert window.stats(now=100).count == 0
    window.record(101.0, 0.25)  # a new burst after an empty window starts from a clean sum
    assert window.stats(now=101.0).average_s == pytest.approx(0.25)


def test_recording_alone_holds_one_window_of_samples() -> None:
    # a process nobody reads the dashboard of must not keep every sample up to max_samples
    window = RollingWindow(window_s=30, threshold_s=1)
    for i in range(1000):  # 10 a second for 100 s, stats never asked
        window.record(i / 10, 0.2)
    assert len(window) == 300  # finished in (69.9, 99.9]
    stats = window.stats(now=99.9)
    assert stats.count == 300 and stats.average_s == pytest.approx(0.2)


def test_a_window_emptied_by_recording_starts_the_next_burst_from_a_clean_sum() -> None:
    window = RollingWindow(window_s=10, threshold_s=1)
    for d in (0.1, 0.2, 0.3):  # their sum minus each of them leaves 1.1e-16 behind in floats
        window.record(0.0, d)
    window.record(100.0, 0.25)  # the three age out on this record; stats were never read in between
    assert window.stats(now=100.0).average_s == 0.25


def test_threshold_equality_is_ok_and_just_above_is_slow() -> None:
    window = RollingWindow(window_s=30, threshold_s=1.0)
    window.record(1.0, 0.5)
    window.record(2.0, 1.5)
    at_threshold = window.stats(now=3.0)
    assert at_threshold.average_s == pytest.approx(1.0) and not at_threshold.slow
    assert at_threshold.to_json()["state"] == "OK"
    window.record(3.0, 1.0001)
    above = window.stats(now=3.0)
    assert above.slow and above.to_json()["state"] == "SLOW"


def test_a_burst_of_samples_at_one_instant() -> None:
    window = RollingWindow(window_s=30, threshold_s=1)
    for i in range(1000):
        window.record(50.0, 1.5 if i % 2 else 0.7)
    stats = window.stats(now=50.0)
    assert stats.count == 1000 and stats.average_s == pytest.approx(1.1) and stats.slow
    assert stats.max_s == pytest.approx(1.5) and stats.p50_s == pytest.approx(0.7)
    assert window.stats(now=80.0).count == 0  # the whole burst expires together


def test_max_samples_bound_drops_the_oldest_and_keeps_the_sum_right() -> None:
    window = RollingWindow(window_s=1000, threshold_s=5, max_samples=3)
    for t, d in enumerate([10.0, 20.0, 1.0, 2.0, 3.0]):
        window.record(float(t), d)
    stats = window.stats(now=5.0)
    assert stats.count == 3 and stats.average_s == pytest.approx(2.0)  # the two big oldest ones went first
    assert stats.max_s == pytest.approx(3.0) and not stats.slow  # all five would average 7.2 s: slow


def test_percentiles_use_the_nearest_rank() -> None:
    window = RollingWindow(window_s=30, threshold_s=1)
    for i in range(1, 101):  # 1..100 ms
        window.record(10.0, i / 1000)
    stats = window.stats(now=10.0)
    assert stats.p50_s == pytest.approx(0.050) and stats.p95_s == pytest.approx(0.095)
    assert stats.max_s == pytest.approx(0.100)
    body = stats.to_json()
    assert body["p95_ms"] == 95.0 and body["average_ms"] == 50.5 and body["threshold_ms"] == 1000.0
    assert body["count"] == 100 and body["window_s"] == 30

    single = RollingWindow(window_s=30, threshold_s=1)
    single.record(1.0, 0.2)
    one = single.stats(now=1.0)
    assert one.p50_s == one.p95_s == one.max_s == pytest.approx(0.2)
