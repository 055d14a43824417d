"""The seeded workload: a plan built up front from `random.Random(seed)`, then driven over HTTP by many clients."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 30  # per request: 5xx / connection errors / 409 in flight are retried with the same key
RETRY_PAUSE_S = 0.5
MAX_RETRY_WINDOW_S = 90.0  # per request, wall clock
SHIP_POLLS = 60  # × RETRY_PAUSE_S: how long a ship waits for its order to settle, and retries an unknown outcome
SHIP_RETRY_WINDOW_S = 30.0  # wall clock for the ship retries of one order


@dataclass(frozen=True)
class PlannedOrder:
    index: int
    customer_id: str
    idem_key: str
    items: tuple[tuple[str, int], ...]
    resend: bool  # send the identical request again after the first answer (a client retry)
    cancel_after_s: float | None  # cancel this long after the first answer, if set
    ship: bool = False  # operations ship it once it is confirmed (POST /orders/{id}/ship)

    def body(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "items": [{"product_id": p, "quantity": q} for p, q in self.items],
        }


@dataclass(frozen=True)
class WorkloadPlan:
    seed: int
    orders: list[PlannedOrder]


def build_plan(
    seed: int,
    n_orders: int,
    products: list[str],
    hot_product: str,
    *,
    resend_fraction: float = 0.2,
    cancel_fraction: float = 0.12,
    hot_fraction: float = 0.35,
    customers: int = 40,
    ship_fraction: float = 0.15,
) -> WorkloadPlan:
    """Same seed and catalogue → same plan. Products are sorted first so the API's listing order does not matter."""
    rng = random.Random(seed)
    ship_rng = random.Random(f"ship-{seed}")  # its own stream: the rest of a seed's plan stays as it was
    catalogue = sorted(p for p in products if p != hot_product)
    plan: list[PlannedOrder] = []
    for i in range(n_orders):
        lines: dict[str, int] = {}
        if rng.random() < hot_fraction:
            lines[hot_product] = rng.randint(1, 2)
        n_lines = 1 if rng.random() < 0.55 else rng.randint(2, 3)
        for product in rng.sample(catalogue, k=min(max(0, n_lines - len(lines)), len(catalogue))):
            lines[product] = rng.randint(1, 3)
        key = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        plan.append(
            PlannedOrder(
                index=i,
                customer_id=f"chaos-{seed}-c{rng.randrange(customers):02d}",
                idem_key=f"chaos-{key}",
                items=tuple(sorted(lines.items())),
                resend=rng.random() < resend_fraction,
                cancel_after_s=round(rng.uniform(0.0, 3.0), 2) if rng.random() < cancel_fraction else None,
                ship=ship_rng.random() < ship_fraction,
            )
        )
    return WorkloadPlan(seed, plan)


@dataclass
class Outcome:
    """What the client saw for one planned order."""

    planned: PlannedOrder
    order_id: str | None = None
    first_status: int | None = None  # the first non-retryable answer to the POST
    first_latency_s: float | None = None  # of that answer
    first_order_status: str | None = None
    answered_at: float | None = None  # monotonic
    started_at: float | None = None  # monotonic, when the first POST went out
    cancel_status: int | None = None
    ship_status: int | None = None
    error: str | None = None


@dataclass
class Observations:
    http_status: Counter[str] = field(default_factory=Counter)
    post_latencies_s: list[float] = field(default_factory=list)  # every POST /orders round trip
    post_calls: list[tuple[float, float]] = field(default_factory=list)  # (monotonic start, seconds) of each
    outcomes: dict[int, Outcome] = field(default_factory=dict)
    client_keys: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    seen_order_ids: set[str] = field(default_factory=set)
    sent: int = 0
    answered: int = 0
    done: int = 0
    got_202: int = 0

    def note_order(self, planned: PlannedOrder, body: Any) -> str | None:
        if not isinstance(body, dict):
            return None
        oid = body.get("order_id")
        if not isinstance(oid, str):
            return None
        self.seen_order_ids.add(oid)
        # an in-flight 409 problem carries the order id too: that is also an answer to this key
        self.client_keys.setdefault((planned.customer_id, planned.idem_key), []).append(oid)
        return oid


TokenFor = Callable[[str], str | None]  # customer id → a bearer token for that customer (None: send none)


class Client:
    def __init__(self, base: str, http: aiohttp.ClientSession, obs: Observations,
                 token_for: TokenFor | None = None) -> None:
        self.base = base
        self.http = http
        self.obs = obs
        self.token_for = token_for or (lambda _customer: None)

    def auth(self, customer: str) -> dict[str, str]:
        token = self.token_for(customer)
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def _call(self, method: str, path: str, label: str, **kw: Any) -> tuple[int, Any, float]:
        started = time.monotonic()
        try:
            async with self.http.request(method, f"{self.base}{path}", **kw) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.obs.http_status[f"{label} {type(exc).__name__}"] += 1
            return 0, None, time.monotonic() - started
        elapsed = time.monotonic() - started
        self.obs.http_status[f"{label} {status}"] += 1
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        return status, body, elapsed

    async def post_order(self, planned: PlannedOrder) -> tuple[int, Any, float]:
        """POST until a final answer (201/202/409 rejected/200/4xx); retries 5xx, errors, 409 in flight."""
        headers = {"Idempotency-Key": planned.idem_key, **self.auth(planned.customer_id)}
        deadline = time.monotonic() + MAX_RETRY_WINDOW_S
        status, body, elapsed = 0, None, 0.0
        for _ in range(MAX_ATTEMPTS):
            started = time.monotonic()
            status, body, elapsed = await self._call("POST", "/orders", "POST /orders", json=planned.body(),
                                                     headers=headers)
            if status:
                self.obs.post_latencies_s.append(elapsed)
                self.obs.post_calls.append((started, elapsed))
            self.obs.note_order(planned, body)
            in_flight = status == 409 and isinstance(body, dict) and "in-flight" in str(body.get("type", ""))
            if status and status < 500 and not in_flight:
                return status, body, elapsed
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(RETRY_PAUSE_S)
        return status, body, elapsed

    async def cancel(self, order_id: str, customer: str) -> int:
        status = 0
        for _ in range(10):
            status, body, _ = await self._call("POST", f"/orders/{order_id}/cancel", "POST /cancel",
                                               headers=self.auth(customer))
            if isinstance(body, dict) and isinstance(body.get("order_id"), str):
                self.obs.seen_order_ids.add(body["order_id"])
            if status and status < 500:
                return status
            await asyncio.sleep(RETRY_PAUSE_S)
        return status

    async def ship_when_confirmed(self, order_id: str, customer: str) -> int:
        """Polls (bounded) until the order settles; ships it if confirmed (as operations), retrying while the
        outcome is unknown."""
        from devstack.chaos.session import OPS  # the checker's ops identity (session imports this module)

        status, body = 0, None
        for _ in range(SHIP_POLLS):
            status, body, _ = await self._call("GET", f"/orders/{order_id}", "GET /orders/{id}",
                                               headers=self.auth(customer))
            if isinstance(body, dict) and body.get("status") not in (None, "pending"):
                break
            await asyncio.sleep(RETRY_PAUSE_S)
        if not isinstance(body, dict) or body.get("status") != "confirmed":
            return 0  # rejected, cancelled or never settled: nothing to ship
        give_up_at = time.monotonic() + SHIP_RETRY_WINDOW_S  # each try may wait SHIP_TIMEOUT_SECONDS
        for _ in range(SHIP_POLLS):
            status, body, _ = await self._call("POST", f"/orders/{order_id}/ship", "POST /ship",
                                               headers=self.auth(OPS))
            if (status and status < 500) or time.monotonic() >= give_up_at:
                return status
            await asyncio.sleep(RETRY_PAUSE_S)
        return status

    async def run_one(self, planned: PlannedOrder) -> None:
        out = Outcome(planned)
        self.obs.outcomes[planned.index] = out
        self.obs.sent += 1
        out.started_at = time.monotonic()
        status, body, elapsed = await self.post_order(planned)
        self.obs.answered += 1
        out.first_status, out.first_latency_s, out.answered_at = status, elapsed, time.monotonic()
        if isinstance(body, dict) and isinstance(body.get("order_id"), str) and "status" in body:
            out.order_id = body["order_id"]
            out.first_order_status = str(body["status"])
        else:
            out.error = f"no order in the answer (status {status}): {str(body)[:200]}"
        if status == 202:
            self.obs.got_202 += 1
        if planned.resend:
            await self.post_order(planned)  # identical request, same key: must replay the same order
        if planned.cancel_after_s is not None and out.order_id:
            await asyncio.sleep(planned.cancel_after_s)
            out.cancel_status = await self.cancel(out.order_id, planned.customer_id)
        elif planned.ship and out.order_id:
            out.ship_status = await self.ship_when_confirmed(out.order_id, planned.customer_id)
        self.obs.done += 1


async def run_workload(base: str, plan: WorkloadPlan, clients: int, obs: Observations,
                       token_for: TokenFor | None = None) -> None:
    queue: asyncio.Queue[PlannedOrder] = asyncio.Queue()
    for p in plan.orders:
        queue.put_nowait(p)
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=clients * 2)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        client = Client(base, http, obs, token_for)

        async def worker() -> None:
            while True:
                try:
                    planned = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    await client.run_one(planned)
                except Exception as exc:  # one bad order must not stop the run; it shows in the report
                    log.exception("order %d failed in the client", planned.index)
                    obs.outcomes[planned.index].error = repr(exc)

        await asyncio.gather(*(worker() for _ in range(max(1, clients))))
