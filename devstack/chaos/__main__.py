"""`python -m devstack.chaos`: start a private stack, drive a seeded workload under faults, check the invariants.

`--compare naive` runs the same seeded workload and faults against the naive design first (devstack/chaos/naive:
no deadline handling, no idempotency, no VerifyOrder) and prints both side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

from devstack.chaos import session
from devstack.chaos.collect import snapshot
from devstack.chaos.compare import Figures, analyse, side_by_side
from devstack.chaos.faults import FAULT_KINDS, ChaosConfig, FaultLog
from devstack.chaos.invariants import check_all
from devstack.chaos.report import Report, SlowPathRow
from devstack.chaos.windows import by_fault_window, window_table
from devstack.chaos.workload import Observations
from devstack.stack import ROOT

log = logging.getLogger("devstack.chaos")

DATA_DIR = ROOT / ".data" / "chaos"
ARTIFACTS = ROOT / ".artifacts" / "chaos"

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
    compare: str | None = None

    def chaos(self) -> ChaosConfig:
        return ChaosConfig(self.gremlin, self.min_delay, self.max_delay, self.pattern, self.crash_rate)

    def to_json(self) -> dict[str, Any]:
        return {**vars(self), "faults": sorted(self.faults)}


def parse_args(argv: list[str] | None = None) -> Settings:
    p = argparse.ArgumentParser(prog="python -m devstack.chaos", description=__doc__)
    p.add_argument("--profile", choices=sorted(PROFILES), help="default: full (ci with --compare)")
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
    p.add_argument("--compare", choices=["naive"],
                   help="run the same seeded workload and faults against the naive design too, side by side")
    a = p.parse_args(argv)
    a.profile = a.profile or ("ci" if a.compare else "full")
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
        bus_outage_s=d["bus_outage_s"], keep_data=a.keep_data, compare=a.compare,
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
        # the harness tests correctness under faults, not the per-customer checkout limit
        "CHECKOUT_RATE_PER_MINUTE": "10000",
        "CHECKOUT_RATE_BURST": "1000",
    }


def spec_for(s: Settings, mode: str) -> session.RunSpec:
    data_dir = DATA_DIR if mode == "valerix" else DATA_DIR.with_name("chaos-naive")
    return session.RunSpec(mode, data_dir, s.seed, s.orders, s.clients, s.chaos(), s.faults, s.profile,
                           s.bus_outage_s, stack_env(s))


def slow_path(obs: Observations, snap: Any, times: dict[str, Any]) -> tuple[list[SlowPathRow], list[float]]:
    rows: list[SlowPathRow] = []
    settle_202: list[float] = []
    final_of = {o.order_id: o.status for o in snap.orders}
    for out in sorted(obs.outcomes.values(), key=lambda o: o.planned.index):
        if out.first_status != 202 or not out.order_id:
            continue
        t = times.get(out.order_id)
        settle_s = (t.settled_at - t.created_at).total_seconds() if t and t.settled_at else None
        if settle_s is not None:
            settle_202.append(settle_s)
        rows.append(SlowPathRow(out.order_id, 202, out.first_latency_s or 0.0, final_of.get(out.order_id, "missing"),
                                (t.settled_via if t else None) or "-", settle_s))
    return rows, settle_202


async def valerix_report(s: Settings, h: session.Harness, obs: Observations, faultlog: FaultLog,
                         quiet: bool, took: float, t0: float) -> tuple[Report, Any]:
    snap, times = await snapshot(h.stack.env, h.api_base, obs.client_keys, obs.seen_order_ids,
                                 token=h.token_for(session.OPS))
    slow, settle_202 = slow_path(obs, snap, times)
    by_state: dict[str, int] = {}
    for o in snap.orders:
        by_state[o.status] = by_state.get(o.status, 0) + 1
    notes = [f"quiescence {'reached' if quiet else 'NOT reached'} after {took:.1f}s"]
    errors = [o for o in obs.outcomes.values() if o.error]
    if errors:
        notes.append(f"{len(errors)} planned orders got no order back, e.g. #{errors[0].planned.index}: "
                     f"{errors[0].error}")
    notes.append("202 → settled is measured from the order's created_at to its settled_at (orders DB)")
    h.timings["total"] = time.monotonic() - t0
    inv = h.stack.inventory
    report = Report(
        seed=s.seed, profile=s.profile, settings=s.to_json(), timings_s=h.timings, orders_by_state=by_state,
        http_status=dict(obs.http_status), post_latencies_s=obs.post_latencies_s, settle_after_202_s=settle_202,
        queue_stats=await h.bus_queue.stats(), dead_letters=await h.bus_queue.dead_letters(limit=50),
        faults=[e.to_json() for e in faultlog.events], inventory_restarts=inv.restarts if inv else 0,
        inventory_exit_codes=list(inv.exit_codes) if inv else [], invariants=check_all(snap), slow_path=slow,
        notes=notes,
        fault_windows=[w.to_json() for w in by_fault_window(obs.post_calls, [e.to_json() for e in faultlog.events],
                                                            faultlog.started)],
    )
    return report, snap


async def run_mode(s: Settings, mode: str) -> tuple[bool, Figures]:
    """One full run against one design; returns (invariants held, the comparison figures)."""
    t0 = time.monotonic()
    spec = spec_for(s, mode)
    session.setup_logs(spec.data_dir)
    gremlin = f"on {s.min_delay:g}..{s.max_delay:g}s {s.pattern}".strip() if s.gremlin else "off"
    print(f"chaos[{mode}]: seed {s.seed}, profile {s.profile}, {s.orders} orders, {s.clients} clients, gremlin "
          f"{gremlin}, crash rate {s.crash_rate:g}, faults {','.join(sorted(s.faults)) or 'none'}", flush=True)
    print(f"chaos[{mode}]: logs in {spec.data_dir / 'logs'}", flush=True)
    h: session.Harness | None = None
    ok = False
    try:
        h = await session.start(spec)
        print(f"chaos[{mode}]: stack up in {h.timings['start']:.1f}s at {h.api_base}", flush=True)
        if mode == "naive" and s.faults & session.NAIVE_SKIPS:
            print(f"chaos[naive]: {','.join(sorted(s.faults & session.NAIVE_SKIPS))}: no bus in the naive design,"
                  " nothing for these faults to hit", flush=True)
        obs, faultlog = await session.drive(h, await session.prepare(h))
        await session.calm_down(h)
        ok, figures = await (settle_valerix(s, h, obs, faultlog, t0) if mode == "valerix"
                             else settle_naive(s, h, obs, faultlog))
        return ok, figures
    finally:
        if h is not None:
            await session.stop(h)
            if h.stack.pg is not None and ok and not s.keep_data:
                await asyncio.to_thread(h.stack.pg.destroy)
            elif h.stack.pg is not None:
                print(f"chaos[{mode}]: data kept in {spec.data_dir} (logs in {spec.data_dir / 'logs'})")


async def settle_valerix(s: Settings, h: session.Harness, obs: Observations, faultlog: FaultLog,
                         t0: float) -> tuple[bool, Figures]:
    print(f"chaos[valerix]: settling: Gremlin and Schrödinger OFF via SetChaos; waiting up to "
          f"{s.quiesce_timeout:.0f}s for quiescence", flush=True)
    quiet, took = await session.wait_quiescent(h.orders_url, s.quiesce_timeout, grace_s=s.max_delay + 1.5,
                                               env=h.stack.env)
    h.timings["quiesce"] = took
    report, snap = await valerix_report(s, h, obs, faultlog, quiet, took, t0)
    if s.profile == "ci":
        print("\n" + report.slow_path_table())
    print(report.summary())
    print(window_table(by_fault_window(obs.post_calls, report.faults, faultlog.started)))
    paths = report.write(ARTIFACTS)
    print("written: " + ", ".join(str(p.relative_to(ROOT)) for p in paths))
    return report.ok, analyse(session.valerix_facts(snap, obs))


async def settle_naive(s: Settings, h: session.Harness, obs: Observations,
                       faultlog: FaultLog) -> tuple[bool, Figures]:
    # nothing in the naive design settles anything later: only let the late (Gremlin-held) calls land
    await asyncio.sleep(s.max_delay + 1.5)
    figures = analyse(await session.naive_facts(h, obs))
    print(window_table(by_fault_window(obs.post_calls, [e.to_json() for e in faultlog.events], faultlog.started)))
    return True, figures


async def run(s: Settings) -> int:
    if s.compare is None:
        ok, _ = await run_mode(s, "valerix")
        return 0 if ok else 1
    _, naive = await run_mode(s, "naive")
    ok, valerix = await run_mode(s, "valerix")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / f"compare-{s.seed}.json"
    out.write_text(json.dumps({"seed": s.seed, "settings": s.to_json(), "naive": naive.to_json(),
                               "valerix": valerix.to_json()}, indent=2) + "\n")
    print(f"\n=== naive design vs Valerix: seed {s.seed}, same workload and faults ===")
    print(side_by_side(naive, valerix))
    print(f"written: {out.relative_to(ROOT)}")
    print(f"compare: naive {len(naive.anomalous)} anomalies, valerix {len(valerix.anomalous)} anomalies", flush=True)
    return 0 if ok else 1


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
