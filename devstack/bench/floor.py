"""`python -m devstack.bench.floor`: the least CPU the checkout's shape costs in Python on this machine.

Issue 14 asks for the product's CPU per order (Functions host + inventory + PostgreSQL) to be at most 1.5× what
PostgreSQL spends per checkout under pgbench: the two services together may then spend half of the database's
work. This measures what the bare shape costs with the product's own libraries and none of its work, so a target
can be checked against what is physically possible before code is changed to chase it. Cases, each loaded by the
bench's closed-loop client (`http_load`, keep-alive, 16 clients by default):

* ``http`` — an aiohttp server whose POST handler parses the JSON body and answers 201 with a small JSON body;
* ``http+grpc`` — the same handler makes one grpc.aio unary ``ReserveStock`` call (the product's stubs) to a
  grpc.aio server in its own process that answers at once;
* ``http+grpc+sql`` — as above with one ``SELECT 1`` round trip on a psycopg pool (the product's connection
  settings) in each service: the order written before the inventory is asked, the inventory's one call.

The servers are processes of their own (as the product's are); their CPU is read from /proc at the window's edges
and divided by the requests answered in the window. The figures are the services' only: PostgreSQL's share of
``SELECT 1`` is printed apart. Every loop is bounded by the load's duration and request cap.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from aiohttp import web

from devstack.bench.http_load import OrderMix, run_load
from devstack.bench.memory import ProcessGroups
from protos import inventory_pb2 as pb
from protos import inventory_pb2_grpc as pb_grpc
from valerix_common.db import Pool, make_pool
from valerix_common.embedded_pg import EmbeddedPostgres

ROOT = Path(__file__).resolve().parent.parent.parent
CASES = ("http", "http+grpc", "http+grpc+sql")
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


# --- the servers (each run as `python -m devstack.bench.floor --serve ...` in a process of its own) -------------
SERVICE = "valerix.inventory.v1.InventoryService"


async def serve_grpc(port: int, db_url: str | None) -> None:
    pool = await _open_pool(db_url, "floor-grpc")

    async def reserve_stock(request: pb.ReserveStockRequest, context: Any) -> pb.Reservation:
        """The gRPC hop and nothing else (after one round trip when given a pool)."""
        if pool is not None:
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
        return pb.Reservation(order_id=request.order_id, status=pb.RESERVATION_STATUS_RESERVED,
                              items=request.items)

    server = grpc.aio.server()
    handler = grpc.unary_unary_rpc_method_handler(
        reserve_stock, request_deserializer=pb.ReserveStockRequest.FromString,
        response_serializer=pb.Reservation.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"ReserveStock": handler}),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await _until_terminated()
    await server.stop(grace=1.0)
    if pool is not None:
        await pool.close()


async def serve_http(port: int, grpc_port: int | None, db_url: str | None) -> None:
    pool = await _open_pool(db_url, "floor-http")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") if grpc_port else None
    stub = pb_grpc.InventoryServiceStub(channel) if channel is not None else None

    async def checkout(request: web.Request) -> web.Response:
        order = json.loads(await request.read())
        item = order["items"][0]
        if pool is not None:
            async with pool.connection() as conn:
                await conn.execute("SELECT 1")
        status = "confirmed"
        if stub is not None:
            reply = await stub.ReserveStock(pb.ReserveStockRequest(
                order_id="5eb1a7c1-0000-4000-8000-00000000f100",
                items=[pb.LineItem(product_id=item["product_id"], quantity=item["quantity"])],
            ), timeout=2.0)
            status = "confirmed" if reply.status == pb.RESERVATION_STATUS_RESERVED else "rejected"
        body = {"customer_id": order["customer_id"], "status": status, "items": order["items"]}
        return web.json_response(body, status=201)

    app = web.Application()
    app.router.add_post("/api/orders", checkout)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await _until_terminated()
    await runner.cleanup()
    if channel is not None:
        await channel.close()
    if pool is not None:
        await pool.close()


async def _open_pool(db_url: str | None, name: str) -> Pool | None:
    if db_url is None:
        return None
    pool = make_pool(db_url, name=name, min_size=4, max_size=16, mode="password")
    await pool.open(wait=True, timeout=READY_TIMEOUT_S)
    return pool


async def _until_terminated() -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


# --- the measurement ---------------------------------------------------------------------------------------------
@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{server.name} did not listen on 127.0.0.1:{port} within {READY_TIMEOUT_S:.0f}s")


def spawn(name: str, *args: str) -> Server:
    command = [sys.executable, "-m", "devstack.bench.floor", "--serve", name, *args]
    return Server(name, subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}))


def start_case(case: str, db_url: str | None) -> tuple[int, list[Server]]:
    """The case's servers, listening; the HTTP port to load."""
    servers: list[Server] = []
    sql = ["--db", db_url] if case == "http+grpc+sql" and db_url else []
    try:
        grpc_args: list[str] = []
        if case != "http":
            grpc_port = free_port()
            servers.append(spawn("grpc", "--port", str(grpc_port), *sql))
            wait_listening(grpc_port, servers[-1])
            grpc_args = ["--grpc-port", str(grpc_port)]
        http_port = free_port()
        servers.append(spawn("http", "--port", str(http_port), *grpc_args, *sql))
        wait_listening(http_port, servers[-1])
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return http_port, servers


async def measure_case(case: str, db_url: str | None, clients: int, duration_s: float,
                       postmaster: int | None) -> dict[str, Any]:
    port, servers = start_case(case, db_url)
    pids = {server.name: server.process.pid for server in servers}
    groups = ProcessGroups(pids.get("http"), pids.get("grpc"), postmaster if case.endswith("sql") else None)
    marks: dict[str, dict[str, float]] = {}

    def window(edge: str) -> None:
        marks[edge] = groups.cpu_seconds()

    try:
        result = await run_load(f"http://127.0.0.1:{port}/api/orders", order_mix(), clients=clients,
                                duration_s=duration_s, on_window=window)
    finally:
        for server in servers:
            server.stop()
    answered = max(result.orders, 1)
    names = {"functions": "http", "inventory": "grpc", "postgres": "postgres"}
    cpu_us = {names[group]: (marks["end"][group] - marks["start"][group]) * 1e6 / answered
              for group in names if group in marks.get("start", {}) and group in marks.get("end", {})}
    summary = result.summary()
    return {"case": case, "rate": summary["rate"], "p50_ms": summary["p50_ms"], "p99_ms": summary["p99_ms"],
            "non201": summary["responses"] - result.orders, "errors": summary["errors"], "cpu_us": cpu_us}


def order_mix() -> OrderMix:
    """Single-item checkouts as the bench sends them, without tokens (these servers check none)."""
    bodies = tuple(
        json.dumps({"customer_id": f"floor-cust-{n % 1000}",
                    "items": [{"product_id": f"floor-{n % 200 + 1}", "quantity": n % 3 + 1}]},
                   separators=(",", ":")).encode()
        for n in range(512)
    )
    return OrderMix(bodies)


def print_rows(rows: list[dict[str, Any]], pg_per_checkout_ms: float | None) -> None:
    print(f"{'case':<16}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non201':>8} | "
          f"{'http µs':>9}{'grpc µs':>9}{'services µs':>12}{'postgres µs':>12}")
    for row in rows:
        cpu = row["cpu_us"]
        services = cpu.get("http", 0.0) + cpu.get("grpc", 0.0)
        grpc_us = f"{cpu['grpc']:>9.0f}" if "grpc" in cpu else f"{'-':>9}"
        pg_us = f"{cpu['postgres']:>12.0f}" if "postgres" in cpu else f"{'-':>12}"
        print(f"{row['case']:<16}{row['rate']:>9.1f}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['non201']:>8} | "
              f"{cpu.get('http', float('nan')):>9.0f}{grpc_us}{services:>12.0f}{pg_us}")
        if row["errors"]:
            print(f"  client errors: {row['errors']}")
    if pg_per_checkout_ms is not None:
        allowed_us = 0.5 * pg_per_checkout_ms * 1000.0
        print(f"\nissue 14's CPU target leaves the services 0.5 × PostgreSQL per pgbench checkout "
              f"({pg_per_checkout_ms:.2f} ms, from .artifacts/bench/latest.json) = {allowed_us:.0f} µs per order")


def last_pgbench_checkout_ms() -> float | None:
    """PostgreSQL CPU per pgbench checkout at 16 clients in the last `make bench` run, if there is one."""
    latest = ROOT / ".artifacts" / "bench" / "latest.json"
    try:
        steps = json.loads(latest.read_text())["steps"]
        return next(float(step["cpu_ms_per_order"]["postgres"]) for step in steps
                    if step["kind"] == "pgbench" and step["script"] == "checkout.sql" and step["clients"] == 16)
    except (FileNotFoundError, KeyError, TypeError, ValueError, StopIteration, json.JSONDecodeError):
        return None


async def measure(cases: list[str], clients: int, duration_s: float,
                  datadir: Path = ROOT / ".data" / "bench-floor") -> list[dict[str, Any]]:
    pg = EmbeddedPostgres(datadir).start() if "http+grpc+sql" in cases else None
    try:
        db_url = pg.url() if pg else None
        postmaster = pg.pid if pg else None
        return [await measure_case(case, db_url, clients, duration_s, postmaster) for case in cases]
    finally:
        if pg is not None:
            pg.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.bench.floor", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per case (8)")
    parser.add_argument("--clients", type=int, default=16, help="closed-loop clients (16)")
    parser.add_argument("--case", action="append", choices=CASES, help="run only this case (repeatable)")
    parser.add_argument("--serve", choices=("http", "grpc"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--grpc-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve == "grpc":
        asyncio.run(serve_grpc(args.port, args.db))
        return
    if args.serve == "http":
        asyncio.run(serve_http(args.port, args.grpc_port, args.db))
        return
    if not 1 <= args.clients <= 256 or not 0.5 <= args.duration <= 600:
        parser.error("--clients must be in [1, 256] and --duration in [0.5, 600]")
    rows = asyncio.run(measure(args.case or list(CASES), args.clients, args.duration))
    print_rows(rows, last_pgbench_checkout_ms())


if __name__ == "__main__":
    main()
