"""The naive order front: an aiohttp app on its own table in the orders database."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import grpc
from aiohttp import web
from psycopg_pool import AsyncConnectionPool

from protos import inventory_pb2 as pb
from protos import inventory_pb2_grpc as pb_grpc
from protos import inventory_stub

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS naive_orders (
    order_id uuid PRIMARY KEY,
    customer_id text NOT NULL,
    items jsonb NOT NULL,
    status text NOT NULL,           -- pending | confirmed | rejected | failed | cancelled
    request_key text,               -- the client's Idempotency-Key, recorded for the comparison only, never used
    created_at timestamptz NOT NULL DEFAULT now(),
    settled_at timestamptz
)"""


class NaiveFront:
    def __init__(self, pool: AsyncConnectionPool[Any], stub: pb_grpc.InventoryServiceAsyncStub,
                 timeout_s: float | None, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.pool = pool
        self.stub = stub
        self.timeout_s = timeout_s  # None: wait on the inventory for as long as it takes
        self.metadata = metadata  # its credential: the inventory admits only the Order Service's identity

    async def _set(self, order_id: str, status: str) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("UPDATE naive_orders SET status = %s, settled_at = now() WHERE order_id = %s",
                               (status, order_id))

    async def create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            items = [(str(i["product_id"]), int(i["quantity"])) for i in body["items"]]
            customer = str(body["customer_id"])
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"title": "bad request", "detail": str(exc)}, status=400)
        order_id = str(uuid.uuid4())  # every request is a new order: no idempotency
        async with self.pool.connection() as conn:
            await conn.execute(
                "INSERT INTO naive_orders (order_id, customer_id, items, status, request_key)"
                " VALUES (%s, %s, %s, 'pending', %s)",
                (order_id, customer, json.dumps(items), request.headers.get("Idempotency-Key")),
            )
        req = pb.ReserveStockRequest(order_id=order_id, items=[pb.LineItem(product_id=p, quantity=q)
                                                               for p, q in items])
        try:
            reply = await self.stub.ReserveStock(req, timeout=self.timeout_s, metadata=self.metadata)
        except grpc.aio.AioRpcError as exc:  # the naive belief: no answer means it did not happen
            log.warning("order %s failed: inventory %s", order_id, exc.code().name)
            await self._set(order_id, "failed")
            return web.json_response({"status": "failed", "title": f"inventory {exc.code().name}"}, status=503)
        status = "confirmed" if reply.status == pb.RESERVATION_STATUS_RESERVED else "rejected"
        await self._set(order_id, status)
        return web.json_response({"order_id": order_id, "status": status}, status=201 if status == "confirmed"
                                 else 409)

    async def get(self, request: web.Request) -> web.Response:
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT status FROM naive_orders WHERE order_id = %s",
                                     (request.match_info["order_id"],))
            row = await cur.fetchone()
        if row is None:
            return web.json_response({"title": "not found"}, status=404)
        return web.json_response({"order_id": request.match_info["order_id"], "status": _first(row)})

    async def cancel(self, request: web.Request) -> web.Response:
        order_id = request.match_info["order_id"]
        try:
            await self.stub.ReleaseReservation(pb.ReleaseReservationRequest(order_id=order_id, reason="cancel"),
                                               timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            log.warning("cancel %s failed: inventory %s", order_id, exc.code().name)
            return web.json_response({"order_id": order_id, "status": "failed"}, status=503)
        await self._set(order_id, "cancelled")
        return web.json_response({"order_id": order_id, "status": "cancelled"})

    async def products(self, request: web.Request) -> web.Response:
        try:
            reply = await self.stub.ListProducts(pb.ListProductsRequest(), timeout=self.timeout_s)
        except grpc.aio.AioRpcError as exc:
            log.warning("list products failed: inventory %s", exc.code().name)
            return web.json_response({"title": "inventory unavailable"}, status=503)
        return web.json_response({"products": [{"product_id": p.product_id, "available": p.available}
                                               for p in reply.products]})


def _first(row: Any) -> Any:
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def naive_app(pool: AsyncConnectionPool[Any], inventory_target: str, timeout_s: float | None,
              metadata: tuple[tuple[str, str], ...] = ()) -> web.Application:
    front = NaiveFront(pool, None, timeout_s, metadata)  # type: ignore[arg-type]  # the stub comes with the loop

    async def lifecycle(app: web.Application) -> Any:
        channel = grpc.aio.insecure_channel(inventory_target)  # bound to the running loop
        front.stub = inventory_stub(channel)
        await pool.open(wait=True, timeout=30)
        async with pool.connection() as conn:
            await conn.execute(SCHEMA)
        yield
        await channel.close()
        await pool.close()

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/api/health", health)
    app.router.add_post("/api/orders", front.create)
    app.router.add_get("/api/orders/{order_id}", front.get)
    app.router.add_post("/api/orders/{order_id}/cancel", front.cancel)
    app.router.add_get("/api/products", front.products)
    return app
