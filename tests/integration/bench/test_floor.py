"""`python -m devstack.bench.floor`: each case's servers really serve the load, and CPU is counted for exactly
the processes the case runs (the HTTP server, the gRPC server, PostgreSQL)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devstack.bench import floor


def test_each_case_answers_every_request_and_counts_its_processes(pg_datadir: Path) -> None:
    rows = asyncio.run(floor.measure(list(floor.CASES), clients=2, duration_s=0.5, datadir=pg_datadir))
    assert [row["case"] for row in rows] == list(floor.CASES)
    for row in rows:
        assert row["rate"] > 0 and row["non201"] == 0 and row["errors"] == {}, row
        assert all(us > 0 for us in row["cpu_us"].values()), row
    assert [sorted(row["cpu_us"]) for row in rows] == [["http"], ["grpc", "http"], ["grpc", "http", "postgres"]]


def test_the_target_line_reads_the_last_benchs_pgbench_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    latest = tmp_path / ".artifacts" / "bench" / "latest.json"
    latest.parent.mkdir(parents=True)
    latest.write_text('{"steps": [{"kind": "http", "script": null, "clients": 16, "cpu_ms_per_order": {}},'
                      ' {"kind": "pgbench", "script": "checkout.sql", "clients": 16,'
                      ' "cpu_ms_per_order": {"postgres": 1.2}}]}')
    monkeypatch.setattr(floor, "ROOT", tmp_path)
    assert floor.last_pgbench_checkout_ms() == 1.2
    floor.print_rows([{"case": "http", "rate": 10.0, "p50_ms": 1.0, "p99_ms": 2.0, "non201": 0, "errors": {},
                       "cpu_us": {"http": 70.0}}], floor.last_pgbench_checkout_ms())
    assert "= 600 µs per order" in capsys.readouterr().out
