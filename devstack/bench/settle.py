"""`python -m devstack.bench.settle`: request → settled under the Gremlin, and `GET /products` meanwhile.

Starts the local stack (PostgreSQL, the inventory with its relay, the Functions host), restocks one product, turns
the Gremlin on (`--delay MIN:MAX`, plus `--crash-rate`), then `--clients` callers send `--orders` orders (each with
an Idempotency-Key, re-sent on 5xx or a dropped connection, as a real client would) while a prober reads
`GET /products` every 100 ms. Request → settled is the first send of an order to its `settled_at` in the orders
database (same machine clock). Prints figures; never asserts them.

    python -m devstack.bench.settle --delay 3:3 --orders 16 --clients 8
    python -m devstack.bench.settle --delay 2:5 --crash-rate 0.2 --orders 16 --clients 8
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import aiohttp
import psycopg

from devstack.bench.http_load import percentile
from devstack.chaos.faults import CALM, ChaosConfig, InventoryAdmin
from devstack.identity.clients import api_headers
from devstack.stack import ROOT, Stack, StackOptions
from valerix_common.embedded_pg import free_port

OUT = ROOT / ".artifacts" / "bench"
PRODUCT = "BENCH-SETTLE-1"
RETRY_PAUSE_S = 0.5
SEND_WINDOW_S = 90.0  # per order: how long a client keeps re-sending after 5xx
SETTLE_WAIT_S = 120.0  # after the last request: how long to wait for every order to settle


async def send_order(http: aiohttp.ClientSession, base: str, statuses: Counter[str]) -> tuple[float, str | None]:
    """Returns (wall time of the first send, order id or None)."""
    key = f"bench-{uuid.uuid4()}"
    customer = f"bench-settle-{key[-8:]}"  # a shopper per order: the per-customer rate limit is not what is measured
    body = {"customer_id": customer, "items": [{"product_id": PRODUCT, "quantity": 1}]}
    headers = {"Idempotency-Key": key, **api_headers(customer)}
    first = time.time()
    deadline = time.monotonic() + SEND_WINDOW_S
    while time.monotonic() < deadline:
        try:
            async with http.post(f"{base}/orders", json=body, headers=headers) as resp:
                statuses[f"POST {resp.status}"] += 1
                payload = await resp.json(content_type=None)
                if resp.status < 500 and not (resp.status == 409 and "in-flight" in str(payload.get("type"))):
                    return first, payload.get("order_id")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            statuses[f"POST {type(exc).__name__}"] += 1
        await asyncio.sleep(RETRY_PAUSE_S)
    return first, None


async def probe_products(http: aiohttp.ClientSession, base: str, stop: asyncio.Event,
                         latencies: list[float], statuses: Counter[str]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        try:
            async with http.get(f"{base}/products", headers=api_headers("bench-browser")) as resp:
                await resp.read()
                statuses[f"GET /products {resp.status}"] += 1
                if resp.status == 200:
                    latencies.append((time.monotonic() - started) * 1000)
        except (aiohttp.ClientError, TimeoutError) as exc:
            statuses[f"GET /products {type(exc).__name__}"] += 1
        await asyncio.sleep(0.1)


async def settled_rows(url: str, order_ids: list[str]) -> dict[str, tuple[str, float | None, str | None]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT order_id::text, status, extract(epoch FROM settled_at), settled_via FROM orders"
            " WHERE order_id = ANY(%s::uuid[])", (order_ids,))
        return {r[0]: (r[1], float(r[2]) if r[2] is not None else None, r[3]) for r in await cur.fetchall()}


async def wait_settled(url: str, order_ids: list[str]) -> dict[str, tuple[str, float | None, str | None]]:
    deadline = time.monotonic() + SETTLE_WAIT_S
    rows = await settled_rows(url, order_ids)
    while time.monotonic() < deadline and any(status == "pending" for status, _, _ in rows.values()):
        await asyncio.sleep(0.25)
        rows = await settled_rows(url, order_ids)
    return rows


def summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}
    ordered = sorted(values)
    return {"n": len(ordered), "p50": round(percentile(ordered, 0.50), 3), "p90": round(percentile(ordered, 0.90), 3),
            "p99": round(percentile(ordered, 0.99), 3), "max": round(ordered[-1], 3)}


async def workload(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    base, statuses = stack.api_base, Counter[str]()
    sends: list[tuple[float, str | None]] = []
    products_ms: list[float] = []
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=64)) as http:
        stop = asyncio.Event()
        prober = asyncio.create_task(probe_products(http, base, stop, products_ms, statuses))
        pending = list(range(args.orders))

        async def client() -> None:
            while pending:
                pending.pop()
                sends.append(await send_order(http, base, statuses))

        await asyncio.gather(*(client() for _ in range(args.clients)))
        last_request = max(first for first, _ in sends)
        ids = [oid for _, oid in sends if oid]
        rows = await wait_settled(stack.env["ORDERS_DATABASE_URL"], ids)
        stop.set()
        await prober
    first_send = {oid: first for first, oid in sends if oid}
    settle_s = [rows[o][1] - first_send[o] for o in ids if o in rows and rows[o][1] is not None]  # type: ignore[operator]
    last_settled = max((r[1] for r in rows.values() if r[1] is not None), default=None)
    return {
        "request_to_settled_s": summary(settle_s),
        "unsettled": sum(1 for status, _, _ in rows.values() if status == "pending") + args.orders - len(ids),
        "last_request_to_last_settled_s": round(last_settled - last_request, 3) if last_settled else None,
        "orders_by_state": dict(Counter(status for status, _, _ in rows.values())),
        "settled_via": dict(Counter(via or "-" for _, _, via in rows.values())),
        "products_ms": summary(products_ms),
        "http": dict(statuses),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    low, _, high = args.delay.partition(":")
    chaos = ChaosConfig(True, float(low), float(high or low), "", args.crash_rate)
    extra = {"GREMLIN_MODE": "false", "SCHRODINGER_CRASH_RATE": "0", "RECONCILE_STALE_AFTER_SECONDS": "8",
             "LOG_LEVEL": "WARNING"}
    options = StackOptions(data_dir=ROOT / ".data" / "bench-settle", fresh=True, functions_port=free_port(),
                           grpc_port=free_port(), inventory_health_port=free_port(), extra_env=extra)
    stack = Stack(options)
    try:
        await stack.start()
        admin = InventoryAdmin(stack.inventory_target, stack.env["INVENTORY_ADMIN_TOKEN"])
        await admin.set_chaos(CALM)
        await admin.restock(PRODUCT, args.orders * 2, name="Bench settle item", price_cents=100)
        await asyncio.sleep(1.0)  # its stock event reaches the catalogue copy
        await admin.set_chaos(chaos)
        result = await workload(stack, args)
        await admin.set_chaos(CALM)
    finally:
        await stack.stop()
        if stack.pg is not None:
            await asyncio.to_thread(stack.pg.destroy)
    return {"at": datetime.now(UTC).isoformat(timespec="seconds"), "orders": args.orders, "clients": args.clients,
            "gremlin_delay_s": [chaos.min_delay_s, chaos.max_delay_s], "crash_rate": args.crash_rate, **result}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.bench.settle", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=16)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--delay", default="3:3", help="Gremlin delay MIN:MAX seconds (every call)")
    parser.add_argument("--crash-rate", type=float, default=0.0)
    args = parser.parse_args()
    if not 1 <= args.orders <= 10_000 or not 1 <= args.clients <= 256 or not 0 <= args.crash_rate <= 1:
        parser.error("need 1 ≤ orders ≤ 10000, 1 ≤ clients ≤ 256, 0 ≤ crash-rate ≤ 1")
    load_before = tuple(round(x, 2) for x in os.getloadavg())
    result = asyncio.run(run(args))
    result["load_average_before"] = load_before
    r, p = result["request_to_settled_s"], result["products_ms"]
    print(f"settle bench: {args.orders} orders, {args.clients} clients, Gremlin {args.delay} s, crash rate "
          f"{args.crash_rate:g} (load before: {load_before})")
    print(f"  request -> settled   p50 {r['p50']} s  p90 {r['p90']} s  max {r['max']} s  (n={r['n']}, "
          f"unsettled {result['unsettled']})")
    print(f"  last request -> last settled {result['last_request_to_last_settled_s']} s")
    print(f"  settled via {result['settled_via']}; states {result['orders_by_state']}")
    print(f"  GET /products        p50 {p['p50']} ms  p99 {p['p99']} ms  max {p['max']} ms  (n={p['n']})")
    print(f"  http {result['http']}")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"settle-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
