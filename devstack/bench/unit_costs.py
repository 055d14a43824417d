"""`python -m devstack.bench.unit_costs`: the CPU price of the small things a checkout does many times.

A CPU budget per order is (how many times a thing happens per order) × (what it costs once). The profile says where
time goes; this says what one unit costs on this machine, in CPU microseconds of this process (and of the
PostgreSQL backend for database round trips), so a plan can say "remove 4 round trips = N µs per order":

* a database round trip with the product's connection settings, over TCP loopback (as the product connects) and
  over the server's Unix socket; an empty BEGIN/COMMIT pair (the two extra round trips of a transaction);
* one log line through the product's format to a stream; a no-op OpenTelemetry span (telemetry off, as here).

Every figure is the median of `--repeats` batches; the machine is shared, so run it twice and compare.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
from opentelemetry import trace

from devstack.bench.memory import cpu_times
from valerix_common.db import connection_kwargs
from valerix_common.embedded_pg import EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent.parent


async def _round_trips(conninfo: str, n: int, repeats: int, statement: str) -> dict[str, float]:
    """Client CPU, backend CPU and wall time per execution of `statement` on one connection (µs, medians)."""
    async with await psycopg.AsyncConnection.connect(conninfo, **connection_kwargs("password")()) as conn:
        row = await (await conn.execute("SELECT pg_backend_pid() AS pid")).fetchone()
        assert row is not None
        backend = int(row["pid"])
        client, server, wall = [], [], []
        for _ in range(repeats):
            before = (time.process_time(), cpu_times(backend), time.perf_counter())
            for _ in range(n):
                if statement == "BEGIN/COMMIT":
                    async with conn.transaction():
                        pass
                else:
                    await conn.execute(statement)  # type: ignore[arg-type]
            after = (time.process_time(), cpu_times(backend), time.perf_counter())
            client.append((after[0] - before[0]) / n * 1e6)
            server.append(((after[1] or (0.0, 0.0))[0] - (before[1] or (0.0, 0.0))[0]) / n * 1e6)
            wall.append((after[2] - before[2]) / n * 1e6)
    return {"client_cpu_us": statistics.median(client), "server_cpu_us": statistics.median(server),
            "wall_us": statistics.median(wall)}


def _cpu_per_call(fn: Callable[[], Any], n: int, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(n):
            fn()
        samples.append((time.process_time() - started) / n * 1e6)
    return statistics.median(samples)


def _log_line_cost(n: int, repeats: int) -> float:
    logger = logging.getLogger("unit-costs")
    logger.propagate = False
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s svc %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        return _cpu_per_call(lambda: logger.info("order %s -> %s via %s", "5eb1a7c1", "confirmed", "reply"), n, repeats)
    finally:
        logger.removeHandler(handler)


def _noop_span_cost(n: int, repeats: int) -> float:
    tracer = trace.get_tracer("unit-costs")

    def span() -> None:
        with tracer.start_as_current_span("x") as s:
            s.set_attribute("valerix.order_id", "5eb1a7c1")

    return _cpu_per_call(span, n, repeats)


async def measure(n: int, repeats: int) -> dict[str, Any]:
    pg = EmbeddedPostgres(ROOT / ".data" / "bench-unit-costs").start()
    try:
        tcp = pg.url()
        unix = f"host={pg.datadir / 'sockets'} port={pg.port} user=postgres dbname=postgres"
        rows: dict[str, Any] = {}
        cases: list[tuple[str, Callable[[], Awaitable[dict[str, float]]]]] = [
            ("round trip SELECT 1, TCP loopback", lambda: _round_trips(tcp, n, repeats, "SELECT 1")),
            ("round trip SELECT 1, Unix socket", lambda: _round_trips(unix, n, repeats, "SELECT 1")),
            ("empty query (a pool check), TCP", lambda: _round_trips(tcp, n, repeats, "")),
            ("BEGIN + COMMIT (2 round trips), TCP", lambda: _round_trips(tcp, n, repeats, "BEGIN/COMMIT")),
        ]
        for name, case in cases:
            rows[name] = await case()
        rows["log line (product format, to a stream)"] = {"client_cpu_us": _log_line_cost(n * 5, repeats)}
        rows["no-op OpenTelemetry span + attribute"] = {"client_cpu_us": _noop_span_cost(n * 5, repeats)}
        return rows
    finally:
        pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.bench.unit_costs", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="operations per batch (2000)")
    parser.add_argument("--repeats", type=int, default=5, help="batches; the median is printed (5)")
    args = parser.parse_args()
    if not 1 <= args.n <= 100_000 or not 1 <= args.repeats <= 50:
        parser.error("--n must be in [1, 100000] and --repeats in [1, 50]")
    rows = asyncio.run(measure(args.n, args.repeats))
    print(f"{'unit':<42}{'client CPU µs':>15}{'server CPU µs':>15}{'wall µs':>10}")
    for name, row in rows.items():
        print(f"{name:<42}{row['client_cpu_us']:>15.1f}"
              f"{row.get('server_cpu_us', float('nan')):>15.1f}{row.get('wall_us', float('nan')):>10.1f}")


if __name__ == "__main__":
    main()
