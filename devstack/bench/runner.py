"""One benchmark run: its own stack, bench products, the HTTP steps, the pgbench steps, memory and CPU, a profile.

Steps are interleaved per client count (pgbench reserve, pgbench checkout, HTTP checkout, then the next count), so
when the machine is shared a burst of outside load hits a step and its physical limit alike, and the ratio stays
meaningful. Every step starts from a CHECKPOINT and records the load average and the machine's CPU use.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from devstack.bench import profiling, statements
from devstack.bench.http_load import OrderMix, run_load
from devstack.bench.memory import MemorySampler, ProcessGroups, cpu_delta, growth, machine_busy_s
from devstack.bench.pg_limit import PhysicalLimit
from devstack.bench.report import TARGET_CLIENTS
from devstack.bench.sql_scripts import BENCH_RATE
from devstack.identity.clients import inventory_metadata
from devstack.stack import ROOT, Stack, StackOptions
from inventory_service.handlers import ADMIN_TOKEN_METADATA
from protos import inventory_pb2 as pb
from protos import inventory_stub
from valerix_common.db import prepare_threshold
from valerix_common.embedded_pg import free_port

log = logging.getLogger("devstack.bench")

HOT_PRODUCT = "bench-1"  # pgbench's -D nproducts=1 picks the same product
RESTOCK_MAX = 1_000_000  # inventory_service.domain.rules.MAX_RESTOCK_QUANTITY: one Restock call adds at most this
# the bench measures throughput, not the per-customer checkout limit: lifted for its own stack only
BENCH_ENV = {"GREMLIN_MODE": "false", "SCHRODINGER_CRASH_RATE": "0",
             "CHECKOUT_RATE_PER_MINUTE": f"{BENCH_RATE.per_minute:g}", "CHECKOUT_RATE_BURST": str(BENCH_RATE.burst)}
# The bench always runs its own embedded server (pgbench needs it): outside database URLs are ignored.
PREPARED_SETTING = "POSTGRES_PREPARED_STATEMENTS"
OUTSIDE_DATABASES = ("INVENTORY_DATABASE_URL", "ORDERS_DATABASE_URL", "LOCAL_BUS_DATABASE_URL")


@dataclass
class BenchOptions:
    duration_s: float = 8.0
    clients: list[int] = field(default_factory=lambda: [1, 4, 16, 64])
    hot_clients: list[int] = field(default_factory=lambda: [4, 64])
    products: int = 200
    warmup_s: float = 3.0
    ramp_s: float = 1.0
    protocol: str = "auto"  # pgbench -M; auto = as the product's connections do (valerix_common.db)
    scripts: Path | None = None  # None: generate them from the repositories' statements
    idempotency_keys: bool = False
    http: bool = True
    pgbench: bool = True
    reserve_only: bool = True
    profile: bool = False
    profile_clients: int = 16
    soak_s: float = 0.0  # > 0: a soak at soak_clients with memory sampled over time (growth shows as a slope)
    soak_clients: int = 16
    statements: bool = False  # pg_stat_statements over the 16-client random HTTP step (statements per order)
    py_spy: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    label: str = ""
    data_dir: Path = ROOT / ".data" / "bench"
    out_dir: Path = ROOT / ".artifacts" / "bench"
    seed: int = 1


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Bench:
    def __init__(self, options: BenchOptions) -> None:
        self.options = options
        self.stack: Stack | None = None
        self.limit: PhysicalLimit | None = None
        self.groups: ProcessGroups | None = None
        self.sampler: MemorySampler | None = None
        self.steps: list[dict[str, Any]] = []
        self.scripts: dict[str, str] = {}
        self.statement_counts: dict[str, Any] | None = None
        self.product_ids = [f"bench-{i}" for i in range(1, options.products + 1)]

    # --- the run ---------------------------------------------------------------------------------------------
    async def run(self) -> dict[str, Any]:
        opts = self.options
        started_at = datetime.now(UTC)
        load_at_start = load_average()
        for name in OUTSIDE_DATABASES:
            os.environ.pop(name, None)
        env = {**BENCH_ENV, **opts.extra_env}
        if opts.protocol == "auto":
            opts.protocol = product_protocol(env)
        self.stack = Stack(self._stack_options(env))
        profile: dict[str, Any] | None = None
        soak: dict[str, Any] | None = None
        try:
            print(f"starting the stack under {opts.data_dir} ...", flush=True)
            await self.stack.start()
            stack = self.stack
            assert stack.pg is not None and stack.functions is not None and stack.inventory is not None
            print(f"restocking {opts.products} bench products ...", flush=True)
            await self._restock()
            if opts.pgbench:
                await self._prepare_limit()
            self.groups = ProcessGroups(stack.functions.pid, stack.inventory.pid, stack.pg.pid)
            self.sampler = MemorySampler(self.groups)
            self.sampler.start()
            soak, profile = await self._measure()
        finally:
            await self._tear_down()
        return self._result(started_at, load_at_start, env, profile, soak)

    def _stack_options(self, env: dict[str, str]) -> StackOptions:
        return StackOptions(
            data_dir=self.options.data_dir,
            functions_port=free_port(),
            grpc_port=free_port(),
            inventory_health_port=free_port(),
            extra_env=env,
            fresh=True,
            pg_settings=dict(statements.SERVER_SETTINGS) if self.options.statements else {},
        )

    async def _prepare_limit(self) -> None:
        opts = self.options
        assert self.stack is not None and self.stack.pg is not None
        self.limit = PhysicalLimit(
            self.stack.pg, products=opts.products, scripts=opts.scripts or opts.data_dir / "pgbench",
            generate=opts.scripts is None,
        )
        await self.limit.prepare()
        self.scripts = self.limit.script_texts()
        print(f"pgbench scripts {'generated from the repositories into' if opts.scripts is None else 'from'}"
              f" {self.limit.scripts} (round trips: {self.limit.round_trips or 'as written'})", flush=True)

    async def _measure(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The warm-up, then every step in order; returns the soak and the profile (None when not asked for)."""
        opts = self.options
        random_mix = OrderMix.build(self.product_ids, seed=opts.seed)
        hot_mix = OrderMix.build([HOT_PRODUCT], seed=opts.seed)
        if opts.http and opts.warmup_s > 0:
            warm_clients = max([*opts.clients, *opts.hot_clients, 1])
            print(f"warm-up: {opts.warmup_s:g} s of HTTP load at {warm_clients} clients", flush=True)
            await run_load(self._orders_url, random_mix, clients=warm_clients, duration_s=opts.warmup_s,
                           ramp_s=0.0, seed=opts.seed + 7, idempotency_keys=opts.idempotency_keys)
        checkout = "checkout-idempotent.sql" if opts.idempotency_keys else "checkout.sql"
        for clients in opts.clients:
            if opts.pgbench and opts.reserve_only:
                await self._pgbench_step("reserve", "reserve.sql", clients, opts.products)
            if opts.pgbench:
                await self._pgbench_step("random", checkout, clients, opts.products)
            if opts.http:
                await self._http_step("random", random_mix, clients)
        for clients in opts.hot_clients:
            if opts.pgbench:
                await self._pgbench_step("hot", checkout, clients, 1)
            if opts.http:
                await self._http_step("hot", hot_mix, clients)
        soak = await self._soak_step(random_mix) if opts.soak_s > 0 and opts.http else None
        profile = await self._profile_step(random_mix) if opts.profile else None
        return soak, profile

    async def _tear_down(self) -> None:
        if self.sampler is not None:
            await self.sampler.stop()
        if self.limit is not None:
            try:
                await self.limit.drop()
            except Exception:
                log.warning("dropping the pgbench scratch database failed; it goes with the stack's data folder",
                            exc_info=True)
        print("stopping the stack ...", flush=True)
        assert self.stack is not None
        await self.stack.stop()

    def _result(
        self, started_at: datetime, load_at_start: list[float], env: dict[str, str],
        profile: dict[str, Any] | None, soak: dict[str, Any] | None,
    ) -> dict[str, Any]:
        opts = self.options
        return {
            "schema": 1,
            "label": opts.label,
            "started_at": started_at.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": sys.version.split()[0],
                "load_average_at_start": load_at_start,
            },
            "options": {
                **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
                "stack_env": env,
            },
            "steps": self.steps,
            "ratios": ratios(self.steps),
            "pgbench_scripts": self.scripts,
            "memory": self.sampler.to_json() if self.sampler else {},
            "profile": profile,
            "statements": self.statement_counts,
            "soak": soak,
        }

    # --- set-up ----------------------------------------------------------------------------------------------
    @property
    def _admin_url(self) -> str:
        assert self.stack is not None and self.stack.pg is not None
        return self.stack.pg.url()

    @property
    def _orders_url(self) -> str:
        assert self.stack is not None
        return f"{self.stack.api_base}/orders"

    async def _restock(self) -> None:
        """Creates bench-1..bench-N with ample stock through the admin Restock RPC; the hot product gets more."""
        assert self.stack is not None
        token = self.stack.env["INVENTORY_ADMIN_TOKEN"]
        metadata = ((ADMIN_TOKEN_METADATA, token), *inventory_metadata())  # as the Order Service
        # the hot product must outlast every hot step even at a rate far beyond this machine (5,000 orders/s)
        hot_needed = 5_000 * 3 * (self.options.duration_s + self.options.ramp_s) * len(self.options.hot_clients)
        hot_calls = 1 + int(hot_needed // RESTOCK_MAX)
        calls = [(pid, 1) for pid in self.product_ids] + [(HOT_PRODUCT, 1)] * hot_calls
        async with grpc.aio.insecure_channel(self.stack.inventory_target) as channel:
            stub = inventory_stub(channel)

            async def restock(product_id: str) -> None:
                await stub.Restock(
                    pb.RestockRequest(product_id=product_id, quantity=RESTOCK_MAX, name=f"Bench {product_id}",
                                      price_cents=100),
                    metadata=metadata, timeout=10,
                )

            for start in range(0, len(calls), 16):
                await asyncio.gather(*(restock(pid) for pid, _ in calls[start : start + 16]))

    async def _checkpoint(self) -> None:
        if self.limit is not None:
            await self.limit.checkpoint()
        await asyncio.sleep(0.2)  # let the checkpointer's writes settle before the clock starts

    def _begin(self, phase: str) -> dict[str, Any]:
        assert self.groups is not None and self.sampler is not None
        self.sampler.phase = phase
        return {"load_before": load_average(), "cpu": self.groups.cpu_seconds(), "machine": machine_busy_s(),
                "wall": time.monotonic()}

    def _snapshot(self) -> dict[str, Any]:
        assert self.groups is not None
        return {"cpu": self.groups.cpu_seconds(), "machine": machine_busy_s(), "wall": time.monotonic()}

    def _end(self, mark: dict[str, Any], units: int, end: dict[str, Any] | None = None) -> dict[str, Any]:
        assert self.sampler is not None
        end = end or self._snapshot()
        wall = end["wall"] - mark["wall"]
        cpu = cpu_delta(mark["cpu"], end["cpu"])
        kernel = {k.removesuffix(".kernel"): cpu.pop(k) for k in [k for k in cpu if k.endswith(".kernel")]}
        ours = sum(cpu.values())
        machine = end["machine"] - mark["machine"]
        self.sampler.phase = "idle"
        return {
            "load_before": mark["load_before"],
            "cpu_s": cpu,
            "cpu_ms_per_order": {k: round(v * 1000 / units, 3) for k, v in cpu.items()} if units else {},
            "kernel_ms_per_order": {k: round(v * 1000 / units, 3) for k, v in kernel.items()} if units else {},
            "busy_cores": {
                "ours": round(ours / wall, 2),
                "machine": round(machine / wall, 2),
                "others": round(max(0.0, machine - ours) / wall, 2),
            },
        }

    # --- steps -----------------------------------------------------------------------------------------------
    async def _pgbench_step(self, case: str, script: str, clients: int, nproducts: int) -> None:
        assert self.limit is not None
        await self._checkpoint()
        mark = self._begin("pgbench")
        result = await self.limit.run(
            script, clients=clients, duration_s=self.options.duration_s, nproducts=nproducts,
            protocol=self.options.protocol,
        )
        step = {"kind": "pgbench", "case": case, **result.summary()}
        step.update(self._end(mark, result.transactions))
        self.steps.append(step)
        print(f"  pgbench {script:<23} {case:<7} {clients:>3} clients: {result.tps:8.1f} tx/s"
              f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms  load {step['load_before'][0]}",
              flush=True)

    async def _http_step(self, case: str, mix: OrderMix, clients: int) -> None:
        await self._checkpoint()
        counted = self.options.statements and case == "random" and clients == TARGET_CLIENTS
        since = await asyncio.to_thread(statements.reset, self._admin_url) if counted else None
        mark: dict[str, Any] = {}
        end: dict[str, Any] = {}

        def window(edge: str) -> None:
            if edge == "start":
                mark.update(self._begin("http"))
            else:
                end.update(self._snapshot())

        result = await run_load(self._orders_url, mix, clients=clients, duration_s=self.options.duration_s,
                                ramp_s=self.options.ramp_s, seed=self.options.seed + clients, on_window=window,
                                idempotency_keys=self.options.idempotency_keys)
        summary = result.summary()
        step = {"kind": "http", "case": case, **summary}
        # CPU of the measured window ÷ the responses to requests started in it (steady state: the requests in
        # flight when the window opens balance those in flight when it closes)
        step.update(self._end(mark, summary["responses"], end or None))
        self.steps.append(step)
        if since is not None:
            assert self.stack is not None
            self.statement_counts = await statements.measured(self._admin_url, self.stack.env["ORDERS_DATABASE_URL"],
                                                              since)
        bad = {k: v for k, v in summary["statuses"].items() if k != "201"} | summary["errors"]
        what = "POST /api/orders +key" if self.options.idempotency_keys else "POST /api/orders"
        print(f"  HTTP    {what:<23} {case:<7} {clients:>3} clients: {summary['rate']:8.1f} orders/s"
              f"  p50 {summary['p50_ms']:6.2f} ms  p99 {summary['p99_ms']:7.2f} ms  load {step['load_before'][0]}"
              + (f"  NON-201: {bad}" if bad else ""), flush=True)

    async def _soak_step(self, mix: OrderMix) -> dict[str, Any]:
        """A long HTTP step with memory sampled over time: growth per process shows as start/end and a slope."""
        assert self.sampler is not None
        clients, seconds = self.options.soak_clients, self.options.soak_s
        print(f"soak: {seconds:g} s of HTTP at {clients} clients, memory sampled every {self.sampler.interval_s} s",
              flush=True)
        await self._checkpoint()
        mark: dict[str, Any] = {}
        end: dict[str, Any] = {}

        def window(edge: str) -> None:
            if edge == "start":
                mark.update(self._begin("soak"))
                self.sampler.start_series()  # type: ignore[union-attr]
            else:
                end.update(self._snapshot())

        result = await run_load(self._orders_url, mix, clients=clients, duration_s=seconds,
                                ramp_s=self.options.ramp_s, seed=self.options.seed + 1000, on_window=window,
                                max_requests=20_000_000, idempotency_keys=self.options.idempotency_keys)
        series = self.sampler.stop_series()
        summary = result.summary()
        soak = {**summary, **self._end(mark, summary["responses"], end or None),
                "memory": {group: growth(points) for group, points in sorted(series.items())},
                "memory_series": series}
        print(f"  soak {clients} clients: {summary['rate']:.1f} orders/s  p99 {summary['p99_ms']:.2f} ms  "
              + "  ".join(f"{g} {m.get('start_mib')}→{m.get('end_mib')} MiB ({m.get('slope_mib_per_min'):+} MiB/min)"
                          for g, m in soak["memory"].items() if m), flush=True)
        return soak

    async def _profile_step(self, mix: OrderMix) -> dict[str, Any]:
        assert self.stack is not None and self.stack.functions is not None and self.stack.inventory is not None
        py_spy = profiling.find_py_spy(self.options.py_spy)
        if py_spy is None:
            print("profile skipped: py-spy not found (pip install py-spy, or pass --py-spy PATH)", flush=True)
            return {"error": "py-spy not found"}
        targets = {"functions": self.stack.functions.pid or 0, "inventory": self.stack.inventory.pid or 0}
        clients = self.options.profile_clients
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out_dir = self.options.out_dir / f"profile-{stamp}"
        print(f"profiling functions host (pid {targets['functions']}) and inventory (pid {targets['inventory']})"
              f" under {clients} clients for {self.options.duration_s:g} s ...", flush=True)
        await self._checkpoint()
        load_before = load_average()
        assert self.groups is not None
        cpu_before = self.groups.cpu_seconds()
        recording = asyncio.create_task(
            profiling.record(py_spy, targets, self.options.duration_s + self.options.ramp_s, out_dir)
        )
        result = await run_load(self._orders_url, mix, clients=clients, duration_s=self.options.duration_s,
                                ramp_s=self.options.ramp_s, seed=self.options.seed + 99,
                                idempotency_keys=self.options.idempotency_keys)
        summaries = await recording
        cpu = {k: v for k, v in cpu_delta(cpu_before, self.groups.cpu_seconds()).items() if "." not in k}
        responses = result.summary()["responses"] or 1
        seconds_total = self.options.duration_s + self.options.ramp_s
        rate = responses / self.options.duration_s
        for name, summary in summaries.items():
            # the profile spans ramp + window; per order uses the process's measured CPU over the same span
            if name in cpu:
                summary["cpu_us_per_order"] = round(cpu[name] / seconds_total / rate * 1e6, 1)
        return {
            "clients": clients,
            "load_before": load_before,
            "http_under_profiler": result.summary(),
            "targets": summaries,
            "out_dir": str(out_dir),
        }


def product_protocol(stack_env: dict[str, str]) -> str:
    """The pgbench -M that sends statements as the product will: prepared unless POSTGRES_PREPARED_STATEMENTS=false."""
    saved = os.environ.get(PREPARED_SETTING)
    if PREPARED_SETTING in stack_env:
        os.environ[PREPARED_SETTING] = stack_env[PREPARED_SETTING]
    try:
        return "extended" if prepare_threshold() is None else "prepared"
    finally:
        if saved is None:
            os.environ.pop(PREPARED_SETTING, None)
        else:
            os.environ[PREPARED_SETTING] = saved


def ratios(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """HTTP rate ÷ the pgbench checkout rate of the same case and client count (and the reserve-only rate)."""
    sql = {(s["case"], s["clients"]): s for s in steps if s["kind"] == "pgbench"}
    rows = []
    for step in steps:
        if step["kind"] != "http":
            continue
        limit = sql.get((step["case"], step["clients"]))
        reserve = sql.get(("reserve", step["clients"])) if step["case"] == "random" else None
        rows.append({
            "case": step["case"],
            "clients": step["clients"],
            "http_rate": step["rate"],
            "sql_rate": limit["rate"] if limit else None,
            "ratio": round(step["rate"] / limit["rate"], 3) if limit and limit["rate"] else None,
            "reserve_rate": reserve["rate"] if reserve else None,
        })
    return rows
