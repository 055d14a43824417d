"""`make bench ARGS="--statements"`: a server created with the bench's settings counts every statement per
database, and the figures are divided by the orders created since the reset."""

from __future__ import annotations

from pathlib import Path

import psycopg

from devstack.bench import statements
from valerix_common.embedded_pg import EmbeddedPostgres


def test_statements_per_order_per_database(pg_datadir: Path) -> None:
    server = EmbeddedPostgres(pg_datadir, settings=statements.SERVER_SETTINGS).start()
    try:
        orders_url = server.create_database("stmt_orders", "stmt_svc")
        other_url = server.create_database("stmt_other", "stmt_svc")
        with psycopg.connect(orders_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id int, created_at timestamptz NOT NULL DEFAULT clock_timestamp())")
            conn.execute("INSERT INTO orders (id) VALUES (0)")  # before the reset: neither counted nor an order
        since = statements.reset(server.url())
        with psycopg.connect(orders_url, autocommit=True) as conn, psycopg.connect(other_url, autocommit=True) as o:
            for n in range(4):
                conn.execute("INSERT INTO orders (id) VALUES (%s)", (n,))
                o.execute("SELECT %s::int", (n,))
                o.execute("SELECT %s::int + 1", (n,))
        rows = statements.read(server.url())  # before the count below: the bench reads in this order too
        assert statements.orders_since(orders_url, since) == 4
        result = statements.summarise(rows, 4)
    finally:
        server.stop()
    assert result["orders"] == 4
    assert result["databases"]["stmt_orders"]["statements"] == 1.0  # one insert per order
    assert result["databases"]["stmt_other"]["statements"] == 2.0
    inserts = [t for t in result["top"] if t["query"].startswith("INSERT INTO orders")]
    assert [(t["database"], t["per_order"], t["rows_per_call"]) for t in inserts] == [("stmt_orders", 1.0, 1.0)]
    text = statements.table(result)
    assert "stmt_other" in text and "2.00 statements" in text
