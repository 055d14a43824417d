"""`python -m devstack.chaos`: start a private stack, drive a seeded workload under faults, check the invariants."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from devstack.chaos.collect import events_backlog, order_counts, snapshot
from devstack.chaos.faults import (
    CALM,
    FAULT_KINDS,
    ChaosConfig,
    FaultLog,
    Faults,
    InventoryAdmin,
    make_bus_queue,
    run_faults,
    schedule,
)
from devstack.chaos.invariants import check_all
from devstack.chaos.progress import Progress
from devstack.chaos.report import Report, SlowPathRow
from devstack.chaos.workload import Observations, build_plan, run_workload
from devstack.stack import ROOT, Stack, StackOptions
from valerix_common.embedded_pg import free_port

log = logging.getLogger("devstack.chaos")

DATA_DIR = ROOT / ".data" / "chaos"
ARTIFACTS = ROOT / ".artifacts" / "chaos"
HOT_PRODUCT = "CHAOS-HOT-1"

PROFILES: dict[str, dict[str, Any]] = {
    "full": {"orders": 300, "clients": 32, "gremlin": True, "min_delay": 2.0, "max_delay": 5.0, "pattern": "",
             "crash_rate": 0.2, "faults": ",".join(FAULT_KINDS), "quiesce_timeout": 180.0, "bus_outage_s": 4.0},
    "ci": {"orders": 80, "clients": 16, "gremlin": True, "min_delay": 2.0, "max_delay": 3.0, "pattern": "every:3",
           "crash_rate": 0.1, "faults": "duplicate,kill-inventory,restart-postgres", "quiesce_timeout": 120.0,
           "bus_outage_s": 3.0},
}


@dataclass
class Settings:
    seed: int
    profile: str
    orders: int
    clients: int
    gremlin: bool
    min_delay: float
    max_delay: float
    pattern: str
    crash_rate: float
    faults: set[str]
    quiesce_timeout: float
    bus_outage_s: float
    keep_data: bool

    def chaos(self) -> ChaosConfig:
        return ChaosConfig(self.gremlin, self.min_delay, self.max_delay, self.pattern, self.crash_rate)

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "faults": sorted(self.faults)}


def parse_args(argv: list[str] | None = None) -> Settings:
    p = argparse.ArgumentParser(prog="python -m devstack.chaos", description=__doc__)
    p.add_argument("--profile", choices=sorted(PROFILES), default="full")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--orders", type=int)
    p.add_argument("--clients", type=int)
    p.add_argument("--gremlin", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--crash-rate", type=float)
    p.add_argument("--min-delay", type=float)
    p.add_argument("--max-delay", type=float)
    p.add_argument("--gremlin-pattern", dest="pattern")
    p.add_argument("--faults", help=f"comma list of {','.join(FAULT_KINDS)} (or 'none')")
    p.add_argument("--quiesce-timeout", type=float)
    p.add_argument("--keep-data", action="store_true", help="keep .data/chaos (PostgreSQL data, logs) afterwards")
    a = p.parse_args(argv)
    d = PROFILES[a.profile]

    def pick(name: str) -> Any:
        v = getattr(a, name)
        return d[name] if v is None else v

    faults = {f.strip() for f in str(pick("faults")).split(",") if f.strip() and f.strip() != "none"}
    unknown = faults - set(FAULT_KINDS)
    if unknown:
        p.error(f"unknown fault(s) {sorted(unknown)}; choose from {','.join(FAULT_KINDS)}")
    s = Settings(
        seed=a.seed, profile=a.profile, orders=pick("orders"), clients=pick("clients"), gremlin=pick("gremlin"),
        min_delay=pick("min_delay"), max_delay=pick("max_delay"), pattern=pick("pattern"),
        crash_rate=pick("crash_rate"), faults=faults, quiesce_timeout=pick("quiesce_timeout"),
        bus_outage_s=d["bus_outage_s"], keep_data=a.keep_data,
    )
    if not (0 <= s.crash_rate <= 1) or s.min_delay < 0 or s.max_delay < s.min_delay or s.orders < 1:
        p.error("need 0 ≤ crash-rate ≤ 1, 0 ≤ min-delay ≤ max-delay, orders ≥ 1")
    return s


def stack_env(s: Settings) -> dict[str, str]:
    return {
        "GREMLIN_MODE": "true" if s.gremlin else "false",
        "GREMLIN_MIN_DELAY_S": str(s.min_delay),
        "GREMLIN_MAX_DELAY_S": str(s.max_delay),
        "GREMLIN_PATTERN": s.pattern,
        "GREMLIN_SEED": str(s.seed),
        "SCHRODINGER_CRASH_RATE": str(s.crash_rate),
        "RECONCILE_STALE_AFTER_SECONDS": "8",
        "RECONCILE_GIVE_UP_AFTER_SECONDS": "120",
        "LOCAL_BUS_LOCK_DURATION_S": "30",
        "LOG_LEVEL": "INFO",
    }


async def wait_quiescent(url: str, timeout_s: float, grace_s: float, progress: Progress,
                         env: dict[str, str] | None = None) -> tuple[bool, float]:
    """No pending order and no outstanding cancellation, twice, `grace_s` apart (late Gremlin calls land); and,
    given the stack's `env`, no reservation event still on its way (so the catalogue copy can be compared)."""
    started = time.monotonic()
    stable_since: float | None = None
    while time.monotonic() - started < timeout_s:
        try:
            counts = await order_counts(url)
            if env is not None:
                counts["events_backlog"] = await events_backlog(env)
        except Exception as exc:  # the database may be coming back
            log.info("quiescence poll failed: %r", exc)
            counts = {"pending": -1}
        if counts.get("pending", 0) == 0 and counts.get("cancel_outstanding", 0) == 0 \
                and counts.get("events_backlog", 0) == 0:
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= grace_s:
                return True, time.monotonic() - started
        else:
            stable_since = None
        await asyncio.sleep(0.5)
    progress.say(f"quiescence NOT reached within {timeout_s:.0f}s")
    return False, time.monotonic() - started


async def run(s: Settings) -> int:
    t0 = time.monotonic()
    shutil.rmtree(DATA_DIR / "logs", ignore_errors=True)
    (DATA_DIR / "logs").mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=DATA_DIR / "logs" / "chaos.log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    options = StackOptions(data_dir=DATA_DIR, fresh=True, functions_port=free_port(), grpc_port=free_port(),
                           inventory_health_port=free_port(), extra_env=stack_env(s))
    stack = Stack(options)
    gremlin = f"on {s.min_delay:g}..{s.max_delay:g}s {s.pattern}".strip() if s.gremlin else "off"
    print(f"chaos: seed {s.seed}, profile {s.profile}, {s.orders} orders, {s.clients} clients, gremlin {gremlin}"
          f", crash rate {s.crash_rate:g}, faults {','.join(sorted(s.faults)) or 'none'}", flush=True)
    print(f"chaos: logs in {DATA_DIR / 'logs'}", flush=True)
    ok = False
    bus_pool: Any = None
    try:
        await stack.start()
        timings = {"start": time.monotonic() - t0}
        print(f"chaos: stack up in {timings['start']:.1f}s at {stack.api_base}", flush=True)
        admin = InventoryAdmin(stack.inventory_target, stack.env["INVENTORY_ADMIN_TOKEN"])

        # --- setup: calm inventory while reading the catalogue and creating the hot product -------------------
        await admin.set_chaos(CALM)
        async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
                    http.get(f"{stack.api_base}/products") as resp):
            resp.raise_for_status()
            catalogue = [str(p["product_id"]) for p in (await resp.json())["products"]]
        hot_stock = max(8, s.orders // 8)
        await admin.restock(HOT_PRODUCT, hot_stock, name="Chaos hot item (small stock)", price_cents=999)
        async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
                    http.get(f"{stack.api_base}/products") as resp):  # the order side's catalogue learns it
            resp.raise_for_status()
            if HOT_PRODUCT not in {str(p["product_id"]) for p in (await resp.json())["products"]}:
                raise RuntimeError(f"{HOT_PRODUCT} missing from GET /api/products after Restock")
        plan = build_plan(s.seed, s.orders, [*catalogue, HOT_PRODUCT], HOT_PRODUCT)
        await admin.set_chaos(s.chaos())
        print(f"chaos: {len(catalogue)} products + {HOT_PRODUCT} (stock {hot_stock}); plan of {len(plan.orders)} "
              f"orders ({sum(p.resend for p in plan.orders)} re-sent, "
              f"{sum(p.cancel_after_s is not None for p in plan.orders)} cancelled)", flush=True)

        bus_pool, bus_queue = make_bus_queue(stack.env["LOCAL_BUS_DATABASE_URL"])
        await bus_pool.open()

        # --- workload + faults + progress ------------------------------------------------------------------
        obs = Observations()
        db_counts: dict[str, int] = {}
        faultlog = FaultLog()

        def render() -> str:
            settled = sum(db_counts.get(k, 0) for k in ("confirmed", "rejected", "cancelled", "shipped"))
            return (f"sent {obs.sent}/{s.orders} answered {obs.answered} (202: {obs.got_202}) | db settled "
                    f"{settled} pending {db_counts.get('pending', 0)} | faults {len(faultlog.events)} | "
                    f"inventory restarts {stack.inventory.restarts if stack.inventory else 0}")

        progress = Progress(render)
        faultlog.printer = progress.say
        faultlog.started = progress.started = time.monotonic()

        async def monitor() -> None:
            while True:
                try:
                    fresh = await order_counts(stack.env["ORDERS_DATABASE_URL"])
                    db_counts.clear()
                    db_counts.update(fresh)
                except Exception as exc:
                    log.info("progress poll failed: %r", exc)
                await asyncio.sleep(1.0)

        faults = Faults(stack, faultlog, bus_queue)
        done = asyncio.Event()
        monitor_task = asyncio.create_task(monitor())
        progress.start()
        fault_task = asyncio.create_task(run_faults(
            faults, schedule(s.faults, s.profile), lambda: obs.answered / max(1, s.orders), done, s.bus_outage_s))
        try:
            await run_workload(stack.api_base, plan, s.clients, obs)
            done.set()
            progress.say(f"[+{progress.elapsed():6.1f}s] workload done: {obs.answered} orders answered")
            await asyncio.wait_for(fault_task, timeout=120)
            timings["workload"] = progress.elapsed()

            # --- settle -------------------------------------------------------------------------------------
            # A crash-happy inventory may die before SetChaos answers: any restart from now on comes up calm too.
            if stack.inventory is not None:
                stack.inventory.env = {**stack.inventory.env, "GREMLIN_MODE": "false", "SCHRODINGER_CRASH_RATE": "0"}
            await admin.set_chaos(CALM)
            progress.say(f"[+{progress.elapsed():6.1f}s] settling: Gremlin and Schrödinger OFF via SetChaos; "
                         f"waiting up to {s.quiesce_timeout:.0f}s for quiescence")
            quiet, took = await wait_quiescent(stack.env["ORDERS_DATABASE_URL"], s.quiesce_timeout,
                                               grace_s=s.max_delay + 1.5, progress=progress, env=stack.env)
            timings["quiesce"] = took
        finally:
            done.set()
            monitor_task.cancel()
            with contextlib.suppress(Exception):
                fresh = await order_counts(stack.env["ORDERS_DATABASE_URL"])
                db_counts.clear()
                db_counts.update(fresh)
            if not fault_task.done():
                fault_task.cancel()
            await progress.stop()

        # --- check -------------------------------------------------------------------------------------------
        snap, times = await snapshot(stack.env, stack.api_base, obs.client_keys, obs.seen_order_ids)
        results = check_all(snap)
        qstats = await bus_queue.stats()
        dead = await bus_queue.dead_letters(limit=50)
        by_state: dict[str, int] = {}
        for o in snap.orders:
            by_state[o.status] = by_state.get(o.status, 0) + 1
        slow: list[SlowPathRow] = []
        settle_202: list[float] = []
        for out in sorted(obs.outcomes.values(), key=lambda o: o.planned.index):
            if out.first_status != 202 or not out.order_id:
                continue
            t = times.get(out.order_id)
            settle_s = (t.settled_at - t.created_at).total_seconds() if t and t.settled_at else None
            if settle_s is not None:
                settle_202.append(settle_s)
            final = next((o.status for o in snap.orders if o.order_id == out.order_id), "missing")
            slow.append(SlowPathRow(out.order_id, 202, out.first_latency_s or 0.0, final,
                                    (t.settled_via if t else None) or "-", settle_s))
        notes = [f"quiescence {'reached' if quiet else 'NOT reached'} after {took:.1f}s"]
        errors = [o for o in obs.outcomes.values() if o.error]
        if errors:
            notes.append(f"{len(errors)} planned orders got no order back, e.g. #{errors[0].planned.index}: "
                         f"{errors[0].error}")
        notes.append("202 → settled is measured from the order's created_at to its settled_at (orders DB)")
        timings["total"] = time.monotonic() - t0
        inv = stack.inventory
        report = Report(
            seed=s.seed, profile=s.profile, settings=s.to_json(), timings_s=timings, orders_by_state=by_state,
            http_status=dict(obs.http_status), post_latencies_s=obs.post_latencies_s, settle_after_202_s=settle_202,
            queue_stats=qstats, dead_letters=dead, faults=[e.to_json() for e in faultlog.events],
            inventory_restarts=inv.restarts if inv else 0, inventory_exit_codes=list(inv.exit_codes) if inv else [],
            invariants=results, slow_path=slow, notes=notes,
        )
        if s.profile == "ci":
            print("\n" + report.slow_path_table())
        print(report.summary())
        paths = report.write(ARTIFACTS)
        print("written: " + ", ".join(str(p.relative_to(ROOT)) for p in paths))
        ok = report.ok
        return 0 if ok else 1
    finally:
        if bus_pool is not None:
            await bus_pool.close()
        await stack.stop()
        if stack.pg is not None and ok and not s.keep_data:
            await asyncio.to_thread(stack.pg.destroy)
        elif stack.pg is not None:
            print(f"chaos: data kept in {DATA_DIR} (logs in {DATA_DIR / 'logs'})")


def main(argv: list[str] | None = None) -> None:
    settings = parse_args(argv)
    try:
        code = asyncio.run(run(settings))
    except KeyboardInterrupt:
        code = 130
    except Exception as exc:  # the run itself broke (not an invariant): say so, distinctly
        logging.getLogger("devstack.chaos").exception("chaos run aborted")
        print(f"chaos: run aborted: {exc!r} (see {DATA_DIR / 'logs'})", file=sys.stderr)
        code = 2
    sys.exit(code)


if __name__ == "__main__":
    main()
