"""The soak's growth figures: start/end/slope of a memory series, with the settling phase left out of the slope."""

from __future__ import annotations

import pytest

from devstack.bench.memory import growth


def test_a_steady_leak_shows_as_its_slope() -> None:
    points = [(t * 0.5, 100.0 + 0.05 * t * 0.5) for t in range(121)]  # +0.05 MiB/s over 60 s
    g = growth(points)
    assert g["slope_mib_per_min"] == pytest.approx(3.0, abs=1e-6)
    assert g["start_mib"] == pytest.approx(100.0, abs=0.1) and g["end_mib"] == pytest.approx(103.0, abs=0.1)
    assert g["seconds"] == 60.0 and g["samples"] == 121


def test_warm_up_growth_is_not_counted_as_a_leak() -> None:
    settling = [(t * 0.5, 80.0 + t) for t in range(12)]  # pools and caches filling in the first 6 s
    flat = [(6.0 + t * 0.5, 92.0) for t in range(108)]
    g = growth(settling + flat)
    assert g["slope_mib_per_min"] == pytest.approx(0.0, abs=1e-6)
    assert g["min_mib"] == 80.0 and g["max_mib"] == 92.0


def test_too_few_samples_give_no_figures() -> None:
    assert growth([(0.0, 1.0)]) == {}
