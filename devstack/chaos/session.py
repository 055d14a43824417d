"""One chaos run, phase by phase: start a private stack (Valerix, or the naive front), prepare, drive, settle."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from devstack.chaos.collect import events_backlog, order_counts, outbox_backlog, parse_items, read_inventory
from devstack.chaos.compare import RunFacts, RunOrder
from devstack.chaos.faults import CALM, ChaosConfig, FaultLog, Faults, InventoryAdmin, make_bus_queue, run_faults
from devstack.chaos.faults import schedule as fault_schedule
from devstack.chaos.invariants import Snapshot
from devstack.chaos.progress import Progress
from devstack.chaos.workload import Observations, WorkloadPlan, build_plan, run_workload
from devstack.identity.settings import ORDERS_AUDIENCE
from devstack.stack import ROOT, Stack, StackOptions, http_ok
from devstack.supervisor import Supervised, python_argv, wait_for
from valerix_common.embedded_pg import free_port

log = logging.getLogger("devstack.chaos")

HOT_PRODUCT = "CHAOS-HOT-1"
OPS = "chaos-ops"  # the checker's identity: reads every customer's orders
NAIVE_SKIPS = {"duplicate", "bus-outage"}  # the naive design has no bus for these to hit


@dataclass
class RunSpec:
    mode: str  # "valerix" | "naive"
    data_dir: Path
    seed: int
    orders: int
    clients: int
    chaos: ChaosConfig
    faults: set[str]
    profile: str
    bus_outage_s: float
    stack_env: dict[str, str]


@dataclass
class Harness:
    spec: RunSpec
    stack: Stack
    admin: InventoryAdmin
    api_base: str
    naive: Supervised | None = None
    bus_pool: Any = None
    bus_queue: Any = None
    timings: dict[str, float] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)

    def token_for(self, customer: str) -> str | None:
        """A bearer token for `customer` from the stack's local issuer (the naive front ignores it)."""
        issuer = self.stack.issuer
        if issuer is None:
            return None
        if customer not in self._tokens:
            roles = ("ops",) if customer == OPS else ()
            self._tokens[customer] = issuer.minter.mint(customer, ORDERS_AUDIENCE, roles=roles, ttl_s=3600)
        return self._tokens[customer]

    @property
    def orders_url(self) -> str:
        return self.stack.env["ORDERS_DATABASE_URL"]

    def faults(self) -> set[str]:
        return self.spec.faults - NAIVE_SKIPS if self.spec.mode == "naive" else set(self.spec.faults)


def setup_logs(data_dir: Path) -> None:
    shutil.rmtree(data_dir / "logs", ignore_errors=True)
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()
    handler = logging.FileHandler(data_dir / "logs" / "chaos.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


async def start(spec: RunSpec) -> Harness:
    t0 = time.monotonic()
    options = StackOptions(data_dir=spec.data_dir, fresh=True, functions_port=free_port(), grpc_port=free_port(),
                           inventory_health_port=free_port(), extra_env=spec.stack_env,
                           with_functions=spec.mode == "valerix")
    stack = Stack(options)
    harness = Harness(spec, stack, InventoryAdmin(stack.inventory_target, ""), stack.api_base)
    await stack.start()
    harness.admin = InventoryAdmin(stack.inventory_target, stack.env["INVENTORY_ADMIN_TOKEN"])
    if spec.mode == "naive":
        port = free_port()
        harness.naive = Supervised("naive", python_argv("devstack.chaos.naive"), {**stack.env, "NAIVE_PORT": str(port)},
                                   ROOT, spec.data_dir / "logs" / "naive.log")
        await harness.naive.start()
        harness.api_base = f"http://127.0.0.1:{port}/api"
        await wait_for("naive front", lambda: http_ok(f"{harness.api_base}/health"), timeout_s=60)
    harness.bus_pool, harness.bus_queue = make_bus_queue(stack.env["LOCAL_BUS_DATABASE_URL"])
    await harness.bus_pool.open()
    harness.timings["start"] = time.monotonic() - t0
    return harness


async def stop(harness: Harness) -> None:
    if harness.bus_pool is not None:
        await harness.bus_pool.close()
    if harness.naive is not None:
        await harness.naive.stop()
    await harness.stack.stop()


async def _catalogue(api_base: str, token: str | None) -> list[str]:
    last = ""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for _ in range(10):  # bounded: the front's catalogue copy may lag a restock by a moment
        async with (aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30), headers=headers) as http,
                    http.get(f"{api_base}/products") as resp):
            text = await resp.text()
            last = f"{resp.status} {text[:200]}"
            if resp.status == 200:
                listing = json.loads(text)
                ids = [str(p["product_id"]) for p in listing["products"]]
                if HOT_PRODUCT in ids and listing.get("complete", True):  # a copy still being filled may lack some
                    return ids
        await asyncio.sleep(0.5)
    raise RuntimeError(f"GET {api_base}/products never listed {HOT_PRODUCT}: last answer {last}")


async def prepare(h: Harness) -> WorkloadPlan:
    """Calm inventory while reading the catalogue and creating the small-stock hot product; then chaos on."""
    await h.admin.set_chaos(CALM)
    hot_stock = max(8, h.spec.orders // 8)
    await h.admin.restock(HOT_PRODUCT, hot_stock, name="Chaos hot item (small stock)", price_cents=999)
    catalogue = await _catalogue(h.api_base, h.token_for(OPS))
    if HOT_PRODUCT not in catalogue:
        raise RuntimeError(f"{HOT_PRODUCT} missing from GET /api/products after Restock")
    plan = build_plan(h.spec.seed, h.spec.orders, catalogue, HOT_PRODUCT)
    await h.admin.set_chaos(h.spec.chaos)
    print(f"chaos[{h.spec.mode}]: {len(catalogue) - 1} products + {HOT_PRODUCT} (stock {hot_stock}); plan of "
          f"{len(plan.orders)} orders ({sum(p.resend for p in plan.orders)} re-sent, "
          f"{sum(p.cancel_after_s is not None for p in plan.orders)} cancelled)", flush=True)
    return plan


async def drive(h: Harness, plan: WorkloadPlan) -> tuple[Observations, FaultLog]:
    """The workload with the faults firing as it progresses, and one live progress line."""
    obs, faultlog, counts = Observations(), FaultLog(), dict[str, int]()
    inv = h.stack.inventory

    def render() -> str:
        settled = sum(counts.get(k, 0) for k in ("confirmed", "rejected", "cancelled", "shipped"))
        return (f"sent {obs.sent}/{h.spec.orders} answered {obs.answered} (202: {obs.got_202}) | db settled "
                f"{settled} pending {counts.get('pending', 0)} | faults {len(faultlog.events)} | "
                f"inventory restarts {inv.restarts if inv else 0}")

    progress = Progress(render)
    faultlog.printer = progress.say
    faultlog.started = progress.started = time.monotonic()
    monitor = asyncio.create_task(_monitor(h, counts))
    done = asyncio.Event()
    progress.start()
    fault_task = asyncio.create_task(run_faults(
        Faults(h.stack, faultlog, h.bus_queue), fault_schedule(h.faults(), h.spec.profile),
        lambda: obs.answered / max(1, h.spec.orders), done, h.spec.bus_outage_s))
    try:
        await run_workload(h.api_base, plan, h.spec.clients, obs, h.token_for)
        done.set()
        progress.say(f"[+{progress.elapsed():6.1f}s] workload done: {obs.answered} orders answered")
        await asyncio.wait_for(fault_task, timeout=120)
        h.timings["workload"] = progress.elapsed()
    finally:
        done.set()
        monitor.cancel()
        if not fault_task.done():
            fault_task.cancel()
        await progress.stop()
    return obs, faultlog


async def _monitor(h: Harness, counts: dict[str, int]) -> None:
    if h.spec.mode != "valerix":
        return
    while True:
        try:
            fresh = await order_counts(h.orders_url)
            counts.clear()
            counts.update(fresh)
        except Exception as exc:
            log.info("progress poll failed: %r", exc)
        await asyncio.sleep(1.0)


async def calm_down(h: Harness) -> None:
    """Gremlin and Schrödinger off, including for any restart from now on (it may crash before SetChaos lands)."""
    if h.stack.inventory is not None:
        h.stack.inventory.env = {**h.stack.inventory.env, "GREMLIN_MODE": "false", "SCHRODINGER_CRASH_RATE": "0"}
    await h.admin.set_chaos(CALM)


async def wait_quiescent(url: str, timeout_s: float, grace_s: float,
                         env: dict[str, str] | None = None) -> tuple[bool, float]:
    """No pending order, no outstanding cancellation and an empty order outbox (events applied by the
    add-on too), twice, `grace_s` apart (late Gremlin calls land); and,
    given the stack's `env`, no reservation event still on its way (so the catalogue copy can be compared)."""
    started = time.monotonic()
    stable_since: float | None = None
    while time.monotonic() - started < timeout_s:
        try:
            counts = await order_counts(url)
            counts["outbox_backlog"] = await outbox_backlog(url)
            if env is not None:
                counts["events_backlog"] = await events_backlog(env)
        except Exception as exc:  # the database may be coming back
            log.info("quiescence poll failed: %r", exc)
            counts = {"pending": -1}
        if counts.get("pending", 0) == 0 and counts.get("cancel_outstanding", 0) == 0 \
                and counts.get("outbox_backlog", 0) == 0 and counts.get("events_backlog", 0) == 0:
            stable_since = stable_since or time.monotonic()
            if time.monotonic() - stable_since >= grace_s:
                return True, time.monotonic() - started
        else:
            stable_since = None
        await asyncio.sleep(0.5)
    return False, time.monotonic() - started


async def naive_facts(h: Harness, obs: Observations) -> RunFacts:
    products, reservations = await read_inventory(h.stack.env["INVENTORY_DATABASE_URL"])
    async with await psycopg.AsyncConnection.connect(h.orders_url) as conn:
        cur = await conn.execute(
            "SELECT order_id::text, customer_id, request_key, status, items,"
            " extract(epoch FROM settled_at - created_at) FROM naive_orders")
        rows = await cur.fetchall()
    orders = [RunOrder(str(r[0]), (str(r[1]), str(r[2])) if r[2] else None, str(r[3]),
                       float(r[5]) if r[5] is not None else None) for r in rows if parse_items(r[4]) is not None]
    return RunFacts("naive", obs, orders, reservations, products)


def valerix_facts(snap: Snapshot, obs: Observations) -> RunFacts:
    key_of = {row.order_id: (row.customer_id, row.idem_key) for row in snap.idempotency}
    orders = [RunOrder(o.order_id, key_of.get(o.order_id), o.status,
                       o.settle_ms / 1000 if o.settle_ms is not None else None) for o in snap.orders]
    return RunFacts("valerix", obs, orders, snap.reservations, snap.products)
