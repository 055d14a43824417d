"""The bench's targets block: each figure is the same-run ratio of the steps it names."""

from __future__ import annotations

from typing import Any

from devstack.bench.report import targets


def step(kind: str, case: str, clients: int, rate: float, cpu: dict[str, float]) -> dict[str, Any]:
    return {"kind": kind, "case": case, "clients": clients, "rate": rate, "p50_ms": 10.0, "p99_ms": 40.0,
            "cpu_ms_per_order": cpu}


def test_the_targets_are_ratios_of_the_same_run() -> None:
    result = {"steps": [
        step("pgbench", "random", 16, 400.0, {"postgres": 2.0}),
        step("http", "random", 16, 100.0, {"functions": 6.0, "inventory": 3.0, "postgres": 6.0}),
        step("http", "hot", 4, 50.0, {}),
        step("http", "hot", 64, 60.0, {}),
    ]}
    text = targets(result)
    assert "= 0.25× (target ≥ 0.5×: NOT met); p99 target ≤ 50 ms: met" in text
    assert "= 15.00 ms ÷ PostgreSQL per pgbench checkout 2.00 ms = 7.50× (target ≤ 1.5×: NOT met)" in text
    assert "the services alone: 9.00 ms" in text
    assert "the services ÷ the PostgreSQL work they asked for in the same step: 9.00 ÷ 6.00 ms = 1.50×" in text
    assert "hot product 64 clients 60.0 orders/s ÷ 4 clients 50.0 = 1.20 (target ≥ 0.9: met)" in text
    assert "soak        not run" in text
