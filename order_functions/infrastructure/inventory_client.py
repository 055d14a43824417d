"""The inventory gRPC client: one channel per worker process, a deadline on every call."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from uuid import UUID

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from order_functions.application.ports import (
    ChaosSwitches,
    InventoryRefused,
    InventoryUnavailable,
    ProductView,
    ReleaseOutcome,
    ReservationOutcome,
    ReservationStatus,
)
from order_functions.domain.models import LineItem
from protos import ADMIN_TOKEN_METADATA, chaos_from_pb, chaos_to_pb, inventory_stub
from protos import inventory_pb2 as pb

log = logging.getLogger(__name__)

_STATUS = {
    pb.RESERVATION_STATUS_RESERVED: ReservationStatus.RESERVED,
    pb.RESERVATION_STATUS_REJECTED: ReservationStatus.REJECTED,
    pb.RESERVATION_STATUS_RELEASED: ReservationStatus.RELEASED,
}
# The request itself is wrong: retrying cannot help. Everything else leaves the outcome unknown.
_REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
}
# The inventory did not accept *our* credential: our misconfiguration, never a verdict on the customer's order,
# so for order calls it is "inventory unavailable" (the slow path retries). Admin calls report it as a refusal.
_AUTH_FAILURES = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


class GrpcInventory:
    def __init__(
        self, target: str, *, tls: bool = False, admin_token: str = "",
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
    ) -> None:
        options = [
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            # reconnect quickly after an inventory restart (Schrödinger), instead of the default 20 s+ backoff
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1_000),
        ]
        self.channel = (
            grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(), options=options,
                                    interceptors=list(interceptors))
            if tls
            else grpc.aio.insecure_channel(target, options=options, interceptors=list(interceptors))
        )
        self.stub = inventory_stub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.admin_metadata = ((ADMIN_TOKEN_METADATA, admin_token),) if admin_token else ()

    async def reserve(self, order_id: UUID, items: tuple[LineItem, ...], timeout_s: float) -> ReservationOutcome:
        request = pb.ReserveStockRequest(
            order_id=str(order_id),
            items=[pb.LineItem(product_id=i.product_id, quantity=i.quantity) for i in items],
        )
        try:
            # wait_for_ready: a restarting inventory is waited for within the deadline, not failed at once
            reply = await self.stub.ReserveStock(request, timeout=timeout_s, wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "ReserveStock", order_id) from exc
        return ReservationOutcome(_STATUS[reply.status], reply.reason, reply.replayed)

    async def release(self, order_id: UUID, reason: str, timeout_s: float) -> ReleaseOutcome:
        try:
            reply = await self.stub.ReleaseReservation(
                pb.ReleaseReservationRequest(order_id=str(order_id), reason=reason[:500]),
                timeout=timeout_s,
                wait_for_ready=True,
            )
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "ReleaseReservation", order_id) from exc
        return ReleaseOutcome(_STATUS[reply.status], reply.restored, reply.tombstone)

    async def ship(self, order_id: UUID, timeout_s: float) -> bool:
        """Turns the order's reservation into SHIPPED (idempotent); returns True when it had already shipped.

        Raises InventoryRefused for NOT_FOUND (no reservation) or FAILED_PRECONDITION (rejected or released),
        InventoryUnavailable when the outcome is unknown (retry with the same order id: it is safe).
        """
        try:
            reply = await self.stub.ShipReservation(
                pb.ShipReservationRequest(order_id=str(order_id)), timeout=timeout_s, wait_for_ready=True
            )
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "ShipReservation", order_id) from exc
        return bool(reply.replayed)

    async def list_products(self, timeout_s: float) -> list[ProductView]:
        try:
            reply = await self.stub.ListProducts(pb.ListProductsRequest(), timeout=timeout_s, wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "ListProducts", None) from exc
        return [
            ProductView(p.product_id, p.name, p.price_cents, p.available, p.reserved, p.shipped, p.version)
            for p in reply.products
        ]

    async def check(self, timeout_s: float) -> None:
        try:
            reply = await self.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise InventoryUnavailable(exc.code().name, str(exc.details())) from exc
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise InventoryUnavailable("NOT_SERVING", "inventory reports it cannot serve (its database?)")

    async def get_chaos(self, timeout_s: float = 2.0) -> ChaosSwitches:
        try:
            reply = await self.stub.GetChaos(pb.GetChaosRequest(), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "GetChaos", None, admin=True) from exc
        return ChaosSwitches(**chaos_from_pb(reply))

    async def set_chaos(self, switches: ChaosSwitches, timeout_s: float = 2.0) -> ChaosSwitches:
        request = chaos_to_pb(**dataclasses.asdict(switches))
        try:
            reply = await self.stub.SetChaos(request, timeout=timeout_s, metadata=self.admin_metadata)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, "SetChaos", None, admin=True) from exc
        return ChaosSwitches(**chaos_from_pb(reply))

    async def close(self) -> None:
        await self.channel.close()


def _translate(exc: grpc.aio.AioRpcError, method: str, order_id: UUID | None, *, admin: bool = False) -> Exception:
    code = exc.code()
    detail = str(exc.details() or "")
    if code in _AUTH_FAILURES and not admin:
        log.error("%s for order %s: the inventory refused our credential (%s %s): check INVENTORY_AUTH_*",
                  method, order_id, code.name, detail)
        return InventoryUnavailable(code.name, detail)
    if code in _REFUSALS or code in _AUTH_FAILURES:
        log.info("%s refused for order %s: %s %s", method, order_id, code.name, detail)
        return InventoryRefused(code.name, detail)
    log.warning("%s for order %s: outcome unknown (%s %s)", method, order_id, code.name, detail)
    return InventoryUnavailable(code.name, detail)
