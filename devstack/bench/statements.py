"""Statements per order, per database: what one order makes PostgreSQL execute (`make bench ARGS="--statements"`).

The bench's server then loads `pg_stat_statements` with `track = all` (PL/pgSQL's inner statements and the foreign
key checks count too, as the server runs them). The counters are reset when the 16-client HTTP step starts, and
read a few seconds after it ends, once the asynchronous work (relays, consumers) has drained; every figure is
divided by the orders created in between, so each row reads "per order" including what happens after the reply.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

# written into postgresql.conf when the bench's server is created (a preload library needs a fresh start)
SERVER_SETTINGS = {"shared_preload_libraries": "'pg_stat_statements'", "pg_stat_statements.track": "all"}
DRAIN_S = 4.0  # after the load stops: the relays' and consumers' tail belongs to the orders just made
TOP = 10  # the most frequent statements of each database


@dataclass(frozen=True)
class StatementRow:
    database: str
    calls: int
    exec_ms: float
    rows: int
    query: str


def reset(admin_url: str) -> datetime:
    """Zeroes the counters; returns the server's clock at that moment (orders created from then are counted)."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        conn.execute("SELECT pg_stat_statements_reset()")
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def read(admin_url: str) -> list[StatementRow]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT d.datname, s.calls, s.total_exec_time, s.rows, s.query FROM pg_stat_statements s"
            " JOIN pg_database d ON d.oid = s.dbid WHERE s.query NOT LIKE '%%pg_stat_statements%%'"
        ).fetchall()
    return [StatementRow(db, int(calls), float(ms), int(n), re.sub(r"\s+", " ", q).strip())
            for db, calls, ms, n, q in rows]


def orders_since(orders_url: str, since: datetime) -> int:
    with psycopg.connect(orders_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM orders WHERE created_at >= %s", (since,)).fetchone()
    return int(row[0]) if row else 0


async def measured(admin_url: str, orders_url: str, since: datetime) -> dict[str, Any]:
    """After the step: waits for the drain, then the per-order figures (JSON-ready)."""
    await asyncio.sleep(DRAIN_S)
    rows = await asyncio.to_thread(read, admin_url)
    orders = await asyncio.to_thread(orders_since, orders_url, since)
    return summarise(rows, orders)


def summarise(rows: list[StatementRow], orders: int) -> dict[str, Any]:
    per = max(orders, 1)
    databases: dict[str, dict[str, float]] = {}
    for r in rows:
        d = databases.setdefault(r.database, {"statements": 0.0, "exec_ms": 0.0})
        d["statements"] += r.calls / per
        d["exec_ms"] += r.exec_ms / per
    top = [r for name in sorted(databases)
           for r in sorted((r for r in rows if r.database == name), key=lambda r: r.calls, reverse=True)[:TOP]]
    return {
        "orders": orders,
        "databases": {k: {n: round(v, 3) for n, v in d.items()} for k, d in sorted(databases.items())},
        "top": [{"database": r.database, "per_order": round(r.calls / per, 3),
                 "mean_exec_us": round(r.exec_ms / r.calls * 1000, 1) if r.calls else 0.0,
                 "rows_per_call": round(r.rows / r.calls, 2) if r.calls else 0.0, "query": r.query[:140]}
                for r in top],
    }


def table(result: dict[str, Any]) -> str:
    lines = [f"Statements per order (pg_stat_statements, track = all; {result['orders']} orders, the asynchronous"
             " work after the reply included):"]
    for name, d in result["databases"].items():
        lines.append(f"  {name:<14} {d['statements']:6.2f} statements  {d['exec_ms']:6.2f} ms executing")
    lines.append(f"  most frequent ({TOP} per database):")
    for t in result["top"]:
        lines.append(f"  {t['database']:<14} {t['per_order']:5.2f}/order {t['mean_exec_us']:8.0f} µs"
                     f" {t['rows_per_call']:6.2f} rows  {t['query']}")
    return "\n".join(lines)
