"""The bench's pgbench scripts are recorded from the repositories and do the product's work on a real server."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from devstack.bench.pg_limit import PhysicalLimit
from devstack.bench.sql_recorder import Recorded
from devstack.bench.sql_scripts import ORDER_ID, ORDER_ID_SQL, PRODUCT_ID, QUANTITY, render, to_pgbench
from valerix_common.embedded_pg import EmbeddedPostgres


def test_parameters_become_literals_or_per_transaction_expressions() -> None:
    assert render(ORDER_ID) == ORDER_ID_SQL
    assert render([PRODUCT_ID]) == "('{bench-' || :pid::text || '}')::text[]"
    assert render([QUANTITY]) == "('{' || :qty::text || '}')::int8[]"
    json_sql = "('[[\"bench-' || :pid::text || '\", ' || :qty::text || ']]')::jsonb"
    assert render(Jsonb([[PRODUCT_ID, QUANTITY]])) == json_sql
    assert render(["pending", 'a "b"', ""]) == "'{pending,\"a \\\"b\\\"\",\"\"}'::text[]"
    assert render("it's") == "'it''s'"
    assert render(True) == "true" and render(None) == "NULL" and render(2.5) == "2.5"


def test_placeholders_are_replaced_in_order_and_by_name() -> None:
    positional = Recorded("SELECT %s, %s, '100%%'", (ORDER_ID, "x"))
    assert to_pgbench(positional) == f"SELECT {ORDER_ID_SQL}, 'x', '100%'"
    named = Recorded("UPDATE t SET a = %(v)s WHERE b = %(v)s AND c = %(w)s", {"v": 1, "w": "y"})
    assert to_pgbench(named) == "UPDATE t SET a = 1 WHERE b = 1 AND c = 'y'"
    with pytest.raises(ValueError, match="2 parameters for 1 placeholders"):
        to_pgbench(Recorded("SELECT %s", (1, 2)))


@pytest.fixture
def pg(pg_server: EmbeddedPostgres | None) -> EmbeddedPostgres:
    if pg_server is None:
        pytest.skip("pgbench needs the embedded server (external database URLs are configured)")
    return pg_server


async def test_recorded_scripts_do_the_checkouts_work(pg: EmbeddedPostgres, tmp_path: Path) -> None:
    limit = PhysicalLimit(pg, products=1, scripts=tmp_path, database=f"bench_test_{uuid.uuid4().hex[:8]}")
    await limit.prepare()  # records the repositories' statements and smoke-runs every script once
    try:
        texts = limit.script_texts()
        assert set(texts) == {"reserve.sql", "checkout.sql", "checkout-idempotent.sql"}
        for name, text in texts.items():
            sql_lines = [line for line in text.splitlines() if line and not line.startswith(("--", "\\"))]
            assert "%s" not in text and "%(" not in text, name
            assert sql_lines.count("BEGIN;") == sql_lines.count("COMMIT;"), name
            # the reservation is one call of the product's function, in every script that reserves
            assert sum("FROM reserve_stock(" in line for line in sql_lines) == 1, name
            assert limit.round_trips[name] == len(sql_lines), name
        assert limit.round_trips["reserve.sql"] == 1
        assert texts["checkout-idempotent.sql"].count("BEGIN;") >= 1  # the key's claim keeps its transaction
        url = pg.url(limit.database)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            before = await (await conn.execute("SELECT available FROM inv.products WHERE product_id = 'bench-1'")
                            ).fetchone()
            orders_before = await (await conn.execute("SELECT count(*) FROM ord.orders")).fetchone()
            await limit.run("checkout.sql", clients=1, duration_s=1, nproducts=1, transactions=5)
            after = await (await conn.execute("SELECT available FROM inv.products WHERE product_id = 'bench-1'")
                           ).fetchone()
            confirmed = await (await conn.execute(
                "SELECT count(*) FROM ord.orders o JOIN inv.reservations r USING (order_id)"
                " WHERE o.status = 'confirmed' AND r.status = 'RESERVED'"
            )).fetchone()
            orders_after = await (await conn.execute("SELECT count(*) FROM ord.orders")).fetchone()
        assert before is not None and after is not None and confirmed is not None
        assert 5 <= before[0] - after[0] <= 15  # five orders of 1..3 each, decremented for real
        assert orders_after is not None and orders_before is not None
        assert orders_after[0] - orders_before[0] == 5
        assert confirmed[0] >= 5  # confirmed on the orders side and reserved on the stock side
    finally:
        await limit.drop()
