"""Closed-loop HTTP load: N clients, each POSTing one checkout after another over a keep-alive connection.

Every request is a valid single-item order (random product of the bench set, quantity 1..3, random customer);
the hot case sends every order for one product. Only ``201 Created`` (confirmed) counts as an order; every other
status and every client-side error is counted and reported, never hidden in the rate.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from devstack.identity.clients import api_headers

MAX_QUANTITY = 3
CUSTOMERS = 1000


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


@dataclass(frozen=True)
class OrderMix:
    """Pre-encoded request bodies, so building a request costs the client next to nothing."""

    bodies: tuple[bytes, ...]
    auth: tuple[str, ...] = ()  # the `Authorization` value for each body: a token of the customer it names

    @classmethod
    def build(cls, product_ids: list[str], seed: int, size: int = 4096) -> OrderMix:
        rng = random.Random(seed)
        bodies, auth = [], []
        for _ in range(size):
            customer = f"bench-cust-{rng.randrange(CUSTOMERS)}"
            order = {
                "customer_id": customer,
                "items": [{"product_id": rng.choice(product_ids), "quantity": rng.randint(1, MAX_QUANTITY)}],
            }
            bodies.append(json.dumps(order, separators=(",", ":")).encode())
            auth.append(api_headers(customer)["Authorization"])  # minted once per customer (cached)
        return cls(tuple(bodies), tuple(auth))


@dataclass
class LoadResult:
    clients: int
    duration_s: float  # the measured window (ramp-up excluded)
    orders: int  # 201 Created (confirmed)
    latencies_ms: list[float] = field(repr=False)  # of every completed response in the window
    statuses: dict[str, int]
    errors: dict[str, int]

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.duration_s if self.duration_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        return {
            "clients": self.clients,
            "duration_s": round(self.duration_s, 3),
            "orders": self.orders,
            "rate": round(self.orders_per_s, 1),
            "responses": len(ordered),
            "p50_ms": round(percentile(ordered, 0.50), 2),
            "p90_ms": round(percentile(ordered, 0.90), 2),
            "p99_ms": round(percentile(ordered, 0.99), 2),
            "max_ms": round(ordered[-1], 2) if ordered else 0.0,
            "mean_ms": round(sum(ordered) / len(ordered), 2) if ordered else 0.0,
            "statuses": dict(sorted(self.statuses.items())),
            "errors": dict(sorted(self.errors.items())),
        }


async def run_load(
    url: str,
    mix: OrderMix,
    *,
    clients: int,
    duration_s: float,
    ramp_s: float = 1.0,
    request_timeout_s: float = 30.0,
    max_requests: int = 2_000_000,
    seed: int = 1,
    on_window: Callable[[str], None] | None = None,
    idempotency_keys: bool = False,
) -> LoadResult:
    """Runs `clients` workers for ramp_s + duration_s; only requests that start inside the window are measured.

    Bounded in time (every worker stops at the window's end; a request in flight then is awaited up to its
    timeout) and in count (`max_requests` in total). `on_window("start")` / `on_window("end")` are called on the
    event loop when the measured window opens and closes (e.g. to read CPU counters). With `idempotency_keys`
    every request carries a fresh ``Idempotency-Key`` (the path real clients are told to use)."""
    connector = aiohttp.TCPConnector(limit=clients, limit_per_host=clients, force_close=False, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=request_timeout_s)
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    sent = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    window_start = start + ramp_s
    window_end = window_start + duration_s
    if on_window is not None:
        loop.call_at(window_start, on_window, "start")
        loop.call_at(window_end, on_window, "end")

    async def worker(index: int, session: aiohttp.ClientSession) -> None:
        nonlocal sent
        rng = random.Random(seed * 100_003 + index)
        bodies = mix.bodies
        while sent < max_requests:
            began = loop.time()
            if began >= window_end:
                return
            sent += 1
            pick = rng.randrange(len(bodies))
            body = bodies[pick]
            request_headers = {**headers, "Authorization": mix.auth[pick]} if mix.auth else dict(headers)
            if idempotency_keys:
                request_headers["Idempotency-Key"] = uuid.uuid4().hex
            try:
                async with session.post(url, data=body, headers=request_headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                if began >= window_start:
                    errors[type(exc).__name__] += 1
                await asyncio.sleep(0.05)  # a refused connection must not become a hot loop
                continue
            if began >= window_start:
                latencies.append((loop.time() - began) * 1000.0)
                statuses[str(status)] += 1

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(worker(i, session) for i in range(clients)))
    measured = min(loop.time(), window_end) - window_start
    return LoadResult(
        clients=clients,
        duration_s=max(measured, 1e-9),
        orders=statuses.get("201", 0),
        latencies_ms=latencies,
        statuses=dict(statuses),
        errors=dict(errors),
    )
