"""Faults injected while the workload runs, and the inventory admin RPCs the run needs (Restock, SetChaos)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import psycopg

from devstack.identity.clients import inventory_metadata
from devstack.stack import Stack
from order_functions.config import VERIFY_QUEUE
from order_functions.infrastructure.local_bus import local_queue
from order_functions.infrastructure.local_queue import LocalQueue
from order_functions.infrastructure.messaging import OutgoingMessage
from protos import ADMIN_TOKEN_METADATA, chaos_to_pb, inventory_stub
from protos import inventory_pb2 as pb
from protos import inventory_pb2_grpc as pb_grpc
from valerix_common.db import make_pool

log = logging.getLogger(__name__)

FAULT_KINDS = ("duplicate", "kill-inventory", "restart-postgres", "bus-outage")


# --- inventory admin ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChaosConfig:
    gremlin: bool
    min_delay_s: float
    max_delay_s: float
    pattern: str
    crash_rate: float

    def to_pb(self) -> pb.ChaosSettings:
        return chaos_to_pb(
            gremlin_enabled=self.gremlin, min_delay_s=self.min_delay_s, max_delay_s=self.max_delay_s,
            pattern=self.pattern, crash_rate=self.crash_rate,
        )


CALM = ChaosConfig(False, 0.0, 0.0, "", 0.0)


class InventoryAdmin:
    def __init__(self, target: str, token: str) -> None:
        self.target = target
        self.metadata = ((ADMIN_TOKEN_METADATA, token), *inventory_metadata())  # as the Order Service

    async def _with_retry(self, what: str, call: Callable[[pb_grpc.InventoryServiceAsyncStub], Any],
                          attempts: int = 60) -> Any:
        last: Exception | None = None
        for _ in range(attempts):  # bounded (~30 s+); the inventory may be restarting after a crash
            async with grpc.aio.insecure_channel(self.target) as channel:
                try:
                    return await call(inventory_stub(channel))
                except grpc.aio.AioRpcError as exc:
                    last = exc
                    if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                        raise
            await asyncio.sleep(0.5)
        raise RuntimeError(f"inventory admin {what}: no answer after {attempts} attempts: {last}")

    async def set_chaos(self, cfg: ChaosConfig) -> pb.ChaosSettings:
        async def call(stub: pb_grpc.InventoryServiceAsyncStub) -> pb.ChaosSettings:
            reply: pb.ChaosSettings = await stub.SetChaos(cfg.to_pb(), metadata=self.metadata, timeout=15)
            return reply

        result: pb.ChaosSettings = await self._with_retry("SetChaos", call)
        return result

    async def restock(self, product_id: str, quantity: int, name: str = "", price_cents: int = 0) -> pb.Product:
        async def call(stub: pb_grpc.InventoryServiceAsyncStub) -> pb.Product:
            req = pb.RestockRequest(product_id=product_id, quantity=quantity, name=name, price_cents=price_cents)
            reply: pb.Product = await stub.Restock(req, metadata=self.metadata, timeout=15)
            return reply

        result: pb.Product = await self._with_retry("Restock", call)
        return result


# --- fault log ---------------------------------------------------------------------------------------------------
@dataclass
class FaultEvent:
    kind: str
    at_s: float  # since the workload started
    duration_s: float
    detail: str
    ok: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "at_s": round(self.at_s, 2), "duration_s": round(self.duration_s, 2),
                "detail": self.detail, "ok": self.ok}


@dataclass
class FaultLog:
    started: float = field(default_factory=time.monotonic)
    events: list[FaultEvent] = field(default_factory=list)
    printer: Callable[[str], None] = print

    def record(self, kind: str, began: float, detail: str, ok: bool = True) -> None:
        event = FaultEvent(kind, began - self.started, time.monotonic() - began, detail, ok)
        self.events.append(event)
        log.warning("fault %s at +%.1fs (%.1fs): %s", kind, event.at_s, event.duration_s, detail)
        self.printer(f"[+{event.at_s:6.1f}s] fault {kind}{'' if ok else ' (FAILED)'}: {detail} "
                     f"({event.duration_s:.1f}s)")


# --- the faults --------------------------------------------------------------------------------------------------
class Faults:
    def __init__(self, stack: Stack, faultlog: FaultLog, bus_queue: LocalQueue | None) -> None:
        self.stack = stack
        self.log = faultlog
        self.bus_queue = bus_queue
        self._dup_round = 0

    async def duplicate_delivery(self, n: int = 6) -> None:
        """VerifyOrder delivered twice: a copy with a NEW message_id for some pending (and a few settled) orders."""
        began = time.monotonic()
        self._dup_round += 1
        try:
            async with await psycopg.AsyncConnection.connect(self.stack.env["ORDERS_DATABASE_URL"]) as conn:
                cur = await conn.execute(
                    "(SELECT order_id::text FROM orders WHERE status = 'pending' ORDER BY created_at LIMIT %s)"
                    " UNION ALL "
                    "(SELECT order_id::text FROM orders WHERE status <> 'pending' ORDER BY created_at DESC LIMIT 2)",
                    (n,),
                )
                ids = [str(r[0]) for r in await cur.fetchall()]
            assert self.bus_queue is not None
            for oid in ids:
                body = json.dumps({"order_id": oid, "attempt": 99}).encode()
                await self.bus_queue.send(OutgoingMessage(message_id=f"chaos-dup{self._dup_round}-{oid}", body=body))
            self.log.record("duplicate", began, f"{len(ids)} extra VerifyOrder copies (new message ids)")
        except Exception as exc:
            self.log.record("duplicate", began, f"could not inject: {exc!r}", ok=False)

    async def kill_inventory(self) -> None:
        began = time.monotonic()
        inv = self.stack.inventory
        assert inv is not None
        for _ in range(150):  # a Schrödinger crash may have it restarting: wait up to ~15 s for a live process
            if inv.pid is not None:
                break
            await asyncio.sleep(0.1)
        pid, restarts = inv.pid, inv.restarts
        if pid is None:
            self.log.record("kill-inventory", began, "inventory not running at the moment (crash restart?)", ok=False)
            return
        inv.kill()
        for _ in range(200):  # up to ~20 s for the supervisor to restart it
            if inv.restarts > restarts and inv.pid:
                break
            await asyncio.sleep(0.1)
        self.log.record("kill-inventory", began, f"SIGKILL pid {pid}; restarted as pid {inv.pid}")

    async def restart_postgres(self) -> None:
        began = time.monotonic()
        assert self.stack.pg is not None
        pg = self.stack.pg
        try:
            # stop + start rather than EmbeddedPostgres.restart(): `pg_ctl restart` (no -l) hands the new server the
            # captured stdout/stderr pipes, so subprocess.run waits for EOF until its 120 s timeout and then raises.
            old_pid = pg.pid
            await asyncio.to_thread(pg.stop, "fast")
            await asyncio.to_thread(pg.start)
            self.log.record("restart-postgres", began, f"pg_ctl stop -m fast + start (pid {old_pid} → {pg.pid})")
        except Exception as exc:
            self.log.record("restart-postgres", began, f"restart failed: {exc!r}", ok=False)

    async def bus_outage(self, seconds: float = 4.0) -> None:
        """The local bus database refuses connections for a while; its open sessions are terminated."""
        began = time.monotonic()
        assert self.stack.pg is not None
        admin_url = self.stack.pg.url()
        terminated = 0
        try:
            async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
                await conn.execute("ALTER DATABASE localbus ALLOW_CONNECTIONS false")
                try:
                    cur = await conn.execute(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = 'localbus' AND pid <> pg_backend_pid()"
                    )
                    row = await cur.fetchone()
                    terminated = int(row[0]) if row else 0
                    await asyncio.sleep(seconds)
                finally:
                    await conn.execute("ALTER DATABASE localbus ALLOW_CONNECTIONS true")
            self.log.record("bus-outage", began, f"localbus refused connections for {seconds:.0f}s "
                                                 f"({terminated} sessions terminated)")
        except Exception as exc:
            self.log.record("bus-outage", began, f"failed: {exc!r}", ok=False)
            await _reallow(admin_url)


async def _reallow(admin_url: str) -> None:
    for _ in range(20):
        try:
            async with await psycopg.AsyncConnection.connect(admin_url, autocommit=True) as conn:
                await conn.execute("ALTER DATABASE localbus ALLOW_CONNECTIONS true")
                return
        except psycopg.Error:
            await asyncio.sleep(0.5)


@dataclass(frozen=True)
class ScheduledFault:
    at_fraction: float  # of the orders answered
    kind: str


def schedule(kinds: set[str], profile: str) -> list[ScheduledFault]:
    """When each fault fires, as a fraction of the workload's answered orders (deterministic)."""
    if profile == "ci":
        plan = [ScheduledFault(0.25, "kill-inventory"), ScheduledFault(0.45, "duplicate"),
                ScheduledFault(0.6, "bus-outage"), ScheduledFault(0.75, "restart-postgres")]
    else:
        plan = [
            ScheduledFault(0.15, "duplicate"), ScheduledFault(0.25, "kill-inventory"),
            ScheduledFault(0.4, "bus-outage"), ScheduledFault(0.5, "duplicate"),
            ScheduledFault(0.6, "restart-postgres"), ScheduledFault(0.75, "kill-inventory"),
            ScheduledFault(0.85, "duplicate"),
        ]
    return [f for f in plan if f.kind in kinds]


async def run_faults(faults: Faults, plan: list[ScheduledFault], progress: Callable[[], float],
                     workload_done: asyncio.Event, bus_outage_s: float, max_wait_s: float = 600.0) -> None:
    """Fires the faults one at a time as the workload progresses; any left when it ends fire right after."""
    deadline = time.monotonic() + max_wait_s
    for fault in plan:
        while progress() < fault.at_fraction and time.monotonic() < deadline:
            try:  # woken early when the workload ends
                await asyncio.wait_for(workload_done.wait(), timeout=0.2)
                break
            except TimeoutError:
                pass
        if fault.kind == "duplicate":
            await faults.duplicate_delivery()
        elif fault.kind == "kill-inventory":
            await faults.kill_inventory()
        elif fault.kind == "restart-postgres":
            await faults.restart_postgres()
        elif fault.kind == "bus-outage":
            await faults.bus_outage(bus_outage_s)


def make_bus_queue(bus_url: str) -> tuple[Any, LocalQueue]:
    pool = make_pool(bus_url, name="chaos-bus", min_size=1, max_size=2, mode="password")
    return pool, local_queue(pool, VERIFY_QUEUE)
