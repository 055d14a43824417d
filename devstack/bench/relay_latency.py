"""`python -m devstack.bench.relay_latency`: how soon a reservation decision reaches the bus as an event.

Starts PostgreSQL and the inventory process (as `make up` does, with the local bus), makes `--orders`
reservations from `--clients` callers (each pausing `--pace-ms` between calls), and receives the
`reservation-events` subscription meanwhile. Prints, per decision event: decision (the event's `occurred_at`) →
on the bus (the copy's enqueue time; both database clock), decision → received by the subscriber, and the
caller's reply → received (negative: the event arrived before the reply).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc

from devstack.bench.http_load import percentile
from devstack.identity.clients import inventory_metadata
from devstack.stack import ROOT, Stack, StackOptions
from protos import ADMIN_TOKEN_METADATA, inventory_stub
from protos import inventory_pb2 as pb
from valerix_common.db import make_pool
from valerix_common.embedded_pg import free_port
from valerix_common.local_bus import (
    ORDER_SERVICE_SUBSCRIPTION,
    RESERVATION_EVENTS_TOPIC,
    stop_notifier,
    subscription_queue,
)

OUT = ROOT / ".artifacts" / "bench"


async def reserve_all(target: str, product: str, orders: int, clients: int, pace_s: float) -> dict[str, float]:
    """order_id → wall-clock time of the reply."""
    replied: dict[str, float] = {}
    queue: asyncio.Queue[str] = asyncio.Queue()
    for _ in range(orders):
        queue.put_nowait(str(uuid.uuid4()))
    async with grpc.aio.insecure_channel(target) as channel:
        stub = inventory_stub(channel)

        async def caller() -> None:
            while not queue.empty():
                order_id = queue.get_nowait()
                request = pb.ReserveStockRequest(order_id=order_id, items=[pb.LineItem(product_id=product, quantity=1)])
                await stub.ReserveStock(request, timeout=10, metadata=inventory_metadata())
                replied[order_id] = time.time()
                await asyncio.sleep(pace_s)

        await asyncio.gather(*(caller() for _ in range(clients)))
    return replied


async def receive_decisions(bus_url: str, wanted: int, timeout_s: float) -> dict[str, tuple[float, float, float]]:
    """order_id → (occurred_at, enqueued, received) of reservation.* events, until `wanted` arrived or time ran out."""
    pool = make_pool(bus_url, name="bench-relay", min_size=1, max_size=2)
    await pool.open(wait=True)
    seen: dict[str, tuple[float, float, float]] = {}
    try:
        sub = subscription_queue(pool, RESERVATION_EVENTS_TOPIC, ORDER_SERVICE_SUBSCRIPTION)
        deadline = time.monotonic() + timeout_s
        while len(seen) < wanted and time.monotonic() < deadline:
            for message in await sub.receive_wait(50, max_wait_s=1.0):
                arrived = time.time()
                body = json.loads(message.body)
                if body["type"].startswith("reservation."):
                    occurred = datetime.fromisoformat(body["occurred_at"]).timestamp()
                    seen[body["order_id"]] = (occurred, message.enqueued_time_utc.timestamp(), arrived)
                await sub.complete(message.lock_token)
    finally:
        await stop_notifier(pool)
        await pool.close()
    return seen


def summary(values_ms: list[float]) -> dict[str, float]:
    values_ms.sort()
    return {"p50_ms": round(percentile(values_ms, 0.5), 1), "p99_ms": round(percentile(values_ms, 0.99), 1),
            "max_ms": round(values_ms[-1], 1) if values_ms else 0.0}


async def run(orders: int, clients: int, pace_s: float) -> dict[str, Any]:
    os.environ.pop("INVENTORY_DATABASE_URL", None)
    os.environ.pop("ORDERS_DATABASE_URL", None)
    stack = Stack(StackOptions(
        data_dir=ROOT / ".data" / "bench-relay", fresh=True, with_functions=False,
        functions_port=free_port(), grpc_port=free_port(), inventory_health_port=free_port(),
        extra_env={"GREMLIN_MODE": "false", "SCHRODINGER_CRASH_RATE": "0"},
    ))
    await stack.start()
    try:
        product = "bench-relay-1"
        async with grpc.aio.insecure_channel(stack.inventory_target) as channel:
            await inventory_stub(channel).Restock(
                pb.RestockRequest(product_id=product, quantity=orders * 2, name=product),
                metadata=((ADMIN_TOKEN_METADATA, stack.env["INVENTORY_ADMIN_TOKEN"]), *inventory_metadata()),
                timeout=10,
            )
        receiving = asyncio.create_task(receive_decisions(stack.env["LOCAL_BUS_DATABASE_URL"], orders, 120))
        await asyncio.sleep(0.5)  # the subscriber is listening
        replied = await reserve_all(stack.inventory_target, product, orders, clients, pace_s)
        seen = await receiving
    finally:
        await stack.stop()
    on_bus = [(enqueued - occurred) * 1000 for occurred, enqueued, _ in seen.values()]
    commit_to_event = [(arrived - occurred) * 1000 for occurred, _, arrived in seen.values()]
    reply_to_event = [(seen[o][2] - t) * 1000 for o, t in replied.items() if o in seen]
    return {"at": datetime.now(UTC).isoformat(timespec="seconds"), "orders": orders, "clients": clients,
            "pace_s": pace_s, "events_received": len(seen), "decision_to_bus": summary(on_bus),
            "commit_to_event": summary(commit_to_event), "reply_to_event": summary(reply_to_event)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="devstack.bench.relay_latency")
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pace-ms", type=float, default=50.0)
    args = parser.parse_args()
    load_before = tuple(round(x, 2) for x in os.getloadavg())
    result = asyncio.run(run(args.orders, args.clients, args.pace_ms / 1000))
    result["load_average_before"] = load_before
    b, c, r = result["decision_to_bus"], result["commit_to_event"], result["reply_to_event"]
    print(f"reservation events: {result['events_received']} of {args.orders} orders, {args.clients} clients, "
          f"{args.pace_ms:g} ms between a client's calls (load before: {load_before})")
    print(f"  decision -> on the bus  p50 {b['p50_ms']} ms  p99 {b['p99_ms']} ms  max {b['max_ms']} ms")
    print(f"  decision -> subscriber  p50 {c['p50_ms']} ms  p99 {c['p99_ms']} ms  max {c['max_ms']} ms")
    print(f"  reply    -> subscriber  p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  max {r['max_ms']} ms")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"relay-latency-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
