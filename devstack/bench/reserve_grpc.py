"""`python -m devstack.bench.reserve_grpc`: ReserveStock over gRPC against pgbench of the same SQL, same run.

Single-item reservations over `--products` products from `--clients` concurrent callers for `--duration` seconds,
then the same transaction (pgbench/reserve.sql) straight into the same PostgreSQL server; prints the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc

from devstack.bench.http_load import percentile
from devstack.bench.pg_limit import PhysicalLimit
from devstack.bench.runner import RESTOCK_MAX, load_average
from devstack.identity.clients import inventory_metadata
from devstack.stack import ROOT, Stack, StackOptions
from inventory_service.handlers import ADMIN_TOKEN_METADATA
from protos import inventory_pb2 as pb
from protos import inventory_stub
from valerix_common.embedded_pg import free_port

OUT = ROOT / ".artifacts" / "bench"


async def reserve_load(target: str, products: list[str], clients: int, duration_s: float, seed: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + duration_s
    auth = inventory_metadata()  # the inventory admits only the Order Service's identity
    async with grpc.aio.insecure_channel(target) as channel:
        stub = inventory_stub(channel)

        async def caller(index: int) -> None:
            nonlocal errors
            rng = random.Random(seed + index)
            while time.monotonic() < deadline:  # bounded by the duration
                request = pb.ReserveStockRequest(
                    order_id=str(uuid.uuid4()),
                    items=[pb.LineItem(product_id=rng.choice(products), quantity=rng.randint(1, 3))],
                )
                started = time.monotonic()
                try:
                    await stub.ReserveStock(request, timeout=5, metadata=auth)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                latencies.append((time.monotonic() - started) * 1000)

        started = time.monotonic()
        await asyncio.gather(*(caller(i) for i in range(clients)))
        elapsed = time.monotonic() - started
    latencies.sort()
    return {"rate": round(len(latencies) / elapsed, 1), "calls": len(latencies), "errors": errors,
            "p50_ms": round(percentile(latencies, 0.5), 2), "p99_ms": round(percentile(latencies, 0.99), 2)}


async def run(clients: int, duration_s: float, nproducts: int, seed: int) -> dict[str, Any]:
    os.environ.pop("INVENTORY_DATABASE_URL", None)
    os.environ.pop("ORDERS_DATABASE_URL", None)
    stack = Stack(StackOptions(
        data_dir=ROOT / ".data" / "bench-reserve", fresh=True, with_functions=False,
        functions_port=free_port(), grpc_port=free_port(), inventory_health_port=free_port(),
        extra_env={"GREMLIN_MODE": "false", "SCHRODINGER_CRASH_RATE": "0"},
    ))
    await stack.start()
    try:
        assert stack.pg is not None
        products = [f"bench-{n}" for n in range(1, nproducts + 1)]
        metadata = ((ADMIN_TOKEN_METADATA, stack.env["INVENTORY_ADMIN_TOKEN"]), *inventory_metadata())
        async with grpc.aio.insecure_channel(stack.inventory_target) as channel:
            stub = inventory_stub(channel)
            for product in products:
                await stub.Restock(pb.RestockRequest(product_id=product, quantity=RESTOCK_MAX, name=product),
                                   metadata=metadata, timeout=10)
        await reserve_load(stack.inventory_target, products, clients, 2.0, seed + 1)  # warm-up, not measured
        load_before = load_average()
        grpc_result = await reserve_load(stack.inventory_target, products, clients, duration_s, seed)
        limit = PhysicalLimit(stack.pg, products=nproducts, scripts=stack.options.data_dir / "pgbench")
        await limit.prepare()
        try:
            await limit.checkpoint()
            pg_run = await limit.run("reserve.sql", clients=clients, duration_s=duration_s, nproducts=nproducts)
            sql = pg_run.summary()
        finally:
            await limit.drop()
    finally:
        await stack.stop()
    return {"at": datetime.now(UTC).isoformat(timespec="seconds"), "clients": clients, "duration_s": duration_s,
            "products": nproducts, "load_average_before": load_before, "grpc_reserve": grpc_result,
            "pgbench_reserve": sql, "ratio": round(grpc_result["rate"] / sql["rate"], 3) if sql["rate"] else None}


def main() -> None:
    parser = argparse.ArgumentParser(prog="devstack.bench.reserve_grpc")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = asyncio.run(run(args.clients, args.duration, args.products, args.seed))
    g, s = result["grpc_reserve"], result["pgbench_reserve"]
    print(f"ReserveStock over gRPC, single item, {args.clients} clients, {args.duration:g} s "
          f"(load before: {result['load_average_before']})")
    print(f"  gRPC     {g['rate']:>8.1f} reservations/s  p50 {g['p50_ms']} ms  p99 {g['p99_ms']} ms"
          f"  errors {g['errors']}")
    print(f"  pgbench  {s['rate']:>8.1f} tx/s            p50 {s['p50_ms']} ms  p99 {s['p99_ms']} ms  (same SQL)")
    print(f"  ratio    {result['ratio']}x of the raw PostgreSQL rate")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"reserve-grpc-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
