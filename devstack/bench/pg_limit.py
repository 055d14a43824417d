"""The physical limit: pgbench running the product's own SQL per order against the same PostgreSQL server.

A scratch database gets both services' tables from their real migrations, in schemas ``inv`` (inventory) and
``ord`` (orders), so one pgbench connection can do a whole checkout's work with ``search_path=ord,inv``. The
scripts are generated at bench time from the repositories' own statements (`sql_scripts`: the repository methods
one checkout calls run once through recording connections; one statement = one round trip, as in the product):

* ``reserve.sql``: the reservation transaction alone;
* ``checkout.sql``: create the order; the reservation transaction; confirm (each commit as in the product);
* ``checkout-idempotent.sql``: the same with an Idempotency-Key (claim and complete the key);
* the hot case runs ``checkout.sql`` with ``-D nproducts=1``: every order for product ``bench-1``.

``--scripts DIR`` runs a folder of hand-picked scripts instead (e.g. an old version from git history).

pgbench sends statements as the product does: ``-M extended`` (unnamed statements, parsed and planned every
time: the product with ``POSTGRES_PREPARED_STATEMENTS=false``) or ``-M prepared`` when the product prepares its
statements (its default since issue 14; the bench's ``--protocol auto`` follows the setting).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from devstack.bench.http_load import percentile
from devstack.bench.sql_scripts import SCRIPT_NAMES, record_scripts, write_scripts
from inventory_service.repository import MIGRATIONS as INVENTORY_MIGRATIONS
from order_functions.infrastructure.orders_repository import MIGRATIONS as ORDERS_MIGRATIONS
from valerix_common.embedded_pg import EmbeddedPostgres
from valerix_common.migrations import apply_migrations

SCRATCH_DATABASE = "valerix_bench_limit"
SEARCH_PATH = "ord,inv"
PRODUCT_STOCK = 1_000_000_000  # per product: no run can exhaust it
PROTOCOLS = ("extended", "simple", "prepared")


@dataclass(frozen=True)
class PgbenchResult:
    script: str
    clients: int
    threads: int
    nproducts: int
    protocol: str
    duration_s: float
    transactions: int
    failed: int
    tps: float
    latency_avg_ms: float
    p50_ms: float
    p99_ms: float

    def summary(self) -> dict[str, Any]:
        return {
            "script": self.script,
            "clients": self.clients,
            "threads": self.threads,
            "nproducts": self.nproducts,
            "protocol": self.protocol,
            "duration_s": self.duration_s,
            "transactions": self.transactions,
            "failed": self.failed,
            "rate": round(self.tps, 1),
            "latency_avg_ms": round(self.latency_avg_ms, 3),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
        }


class PhysicalLimit:
    """Owns the scratch database and runs pgbench against it."""

    def __init__(
        self, pg: EmbeddedPostgres, products: int, scripts: Path, *, generate: bool = True,
        database: str = SCRATCH_DATABASE,
    ) -> None:
        """`scripts` is where the generated scripts go (`generate`), or a folder of ready ones to run."""
        self.pg = pg
        self.scripts = scripts
        self.generate = generate
        self.round_trips: dict[str, int] = {}
        self.products = products
        self.database = database
        self.pgbench = pg.bin_dir / "pgbench"
        if not self.pgbench.exists():
            raise RuntimeError(f"pgbench not found beside the server binaries in {pg.bin_dir}")

    async def prepare(self) -> None:
        """(Re)creates the scratch database, applies both services' migrations, seeds bench-1..bench-N."""
        async with await psycopg.AsyncConnection.connect(self.pg.url(), autocommit=True) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')  # type: ignore[arg-type]
            await admin.execute(f'CREATE DATABASE "{self.database}"')  # type: ignore[arg-type]
        url = self.pg.url(self.database)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await conn.execute("CREATE SCHEMA inv")
            await conn.execute("CREATE SCHEMA ord")
            for schema, folder in (("inv", INVENTORY_MIGRATIONS), ("ord", ORDERS_MIGRATIONS)):
                await conn.execute(f"SET search_path = {schema}")  # type: ignore[arg-type]
                await apply_migrations(conn, folder)
            await conn.execute(
                "INSERT INTO inv.products (product_id, name, price_cents, available, received)"
                " SELECT 'bench-' || g, 'Bench product ' || g, 100, %s, %s FROM generate_series(1, %s) AS g",
                (PRODUCT_STOCK, PRODUCT_STOCK, self.products),
            )
            await conn.execute("ANALYZE")
        if self.generate:
            recordings = await record_scripts(make_conninfo(url, options=f"-c search_path={SEARCH_PATH}"))
            write_scripts(recordings, self.scripts)
            self.round_trips = {rec.name: rec.round_trips for rec in recordings}
        for name in SCRIPT_NAMES:  # a broken script fails here, not after minutes of other steps
            if (self.scripts / name).exists():
                await self.run(name, clients=1, duration_s=1, nproducts=self.products, transactions=1)

    def script_texts(self) -> dict[str, str]:
        return {name: (self.scripts / name).read_text() for name in SCRIPT_NAMES if (self.scripts / name).exists()}

    async def checkpoint(self) -> None:
        """Starts every measured step from a clean checkpoint, so no step pays for its predecessor's dirty pages."""
        async with await psycopg.AsyncConnection.connect(self.pg.url(), autocommit=True) as admin:
            await admin.execute("CHECKPOINT")

    async def run(
        self, script: str, *, clients: int, duration_s: float, nproducts: int, protocol: str = "extended",
        transactions: int | None = None,
    ) -> PgbenchResult:
        """`duration_s` of pgbench (`-T`), or exactly `transactions` per client (`-t`) when given."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}")
        seconds = max(1, round(duration_s))
        threads = max(1, min(clients, os.cpu_count() or 1))
        with tempfile.TemporaryDirectory(prefix="valerix-pgbench-") as tmp:
            prefix = Path(tmp) / "tx"
            argv = [
                str(self.pgbench),
                "-h", self.pg.host, "-p", str(self.pg.port), "-U", "postgres",
                "-n",  # no vacuum of the standard pgbench tables (there are none)
                "-M", protocol,
                "-c", str(clients), "-j", str(threads),
                *(["-t", str(transactions)] if transactions else ["-T", str(seconds)]),
                "-D", f"nproducts={nproducts}",
                "-f", str(self.scripts / script),
                "--log", f"--log-prefix={prefix}",
                self.database,
            ]  # fmt: skip
            env = {**os.environ, "PGOPTIONS": f"-c search_path={SEARCH_PATH}"}
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=tmp, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            try:
                out, err = await asyncio.wait_for(proc.communicate(), timeout=seconds + 120)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
                raise RuntimeError(f"pgbench {script} -c {clients} did not finish in {seconds + 120}s") from None
            text = out.decode(errors="replace") + err.decode(errors="replace")
            if proc.returncode != 0:
                raise RuntimeError(f"pgbench {script} -c {clients} failed ({proc.returncode}):\n{text[-3000:]}")
            latencies = _logged_latencies_ms(Path(tmp))
        latencies.sort()
        return PgbenchResult(
            script=script,
            clients=clients,
            threads=threads,
            nproducts=nproducts,
            protocol=protocol,
            duration_s=float(seconds),
            transactions=_int(r"number of transactions actually processed: (\d+)", text),
            failed=_int(r"number of failed transactions: (\d+)", text),
            tps=_float(r"tps = ([\d.]+) \(without initial connection time\)", text),
            latency_avg_ms=_float(r"latency average = ([\d.]+) ms", text),
            p50_ms=percentile(latencies, 0.50),
            p99_ms=percentile(latencies, 0.99),
        )

    async def drop(self) -> None:
        async with await psycopg.AsyncConnection.connect(self.pg.url(), autocommit=True) as admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')  # type: ignore[arg-type]


def _logged_latencies_ms(folder: Path) -> list[float]:
    """Per-transaction latencies from pgbench --log files: ``client tx_no latency_us script_no epoch us``."""
    values: list[float] = []
    for path in sorted(folder.glob("tx*")):
        for line in path.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[2].isdigit():
                values.append(int(fields[2]) / 1000.0)
    return values


def _float(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    if not match:
        raise RuntimeError(f"pgbench output has no {pattern!r}:\n{text[-2000:]}")
    return float(match.group(1))


def _int(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    return int(match.group(1)) if match else 0
