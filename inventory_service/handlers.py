"""The InventoryService servicer: protobuf in, domain call, protobuf out. Errors become gRPC status codes."""

from __future__ import annotations

import dataclasses
import functools
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import psycopg
from google.protobuf.timestamp_pb2 import Timestamp
from psycopg_pool import PoolTimeout

from inventory_service.domain import errors
from inventory_service.domain.models import LineItem, Product, Reservation, Status
from inventory_service.domain.rules import (
    parse_order_id,
    validate_items,
    validate_product_id,
    validate_restock,
)
from inventory_service.middleware.chaos import Chaos, ChaosSettings
from inventory_service.repository import StockRepository
from protos import ADMIN_TOKEN_METADATA as ADMIN_TOKEN_METADATA  # the contract owns it; re-exported for tools
from protos import chaos_from_pb
from protos import chaos_to_pb as pb_chaos
from protos import inventory_pb2 as pb
from protos import inventory_pb2_grpc as pb_grpc
from valerix_common.env import SettingError

log = logging.getLogger(__name__)

_STATUS_TO_PB = {
    Status.RESERVED: pb.RESERVATION_STATUS_RESERVED,
    Status.REJECTED: pb.RESERVATION_STATUS_REJECTED,
    Status.RELEASED: pb.RESERVATION_STATUS_RELEASED,
    Status.SHIPPED: pb.RESERVATION_STATUS_SHIPPED,
}

_CODES: list[tuple[type[Exception], grpc.StatusCode]] = [
    (errors.ValidationError, grpc.StatusCode.INVALID_ARGUMENT),
    (SettingError, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.UnknownProducts, grpc.StatusCode.NOT_FOUND),
    (errors.ReservationNotFound, grpc.StatusCode.NOT_FOUND),
    (errors.ItemsMismatch, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.InvalidTransition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
]

Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, Req, grpc.aio.ServicerContext[Any, Any]], Awaitable[Resp]]


def grpc_errors(handler: Handler[Req, Resp]) -> Handler[Req, Resp]:
    """Maps domain and database errors to status codes; anything unexpected is logged and INTERNAL."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext[Any, Any]) -> Resp:
        method = handler.__name__
        try:
            return await handler(self, request, context)
        except (errors.InventoryError, SettingError) as exc:
            code = next(code for kind, code in _CODES if isinstance(exc, kind))
            log.info("%s rejected: %s %s", method, code.name, exc)
            await context.abort(code, str(exc))
        except (psycopg.OperationalError, PoolTimeout) as exc:
            log.warning("%s: database unavailable: %s", method, exc, exc_info=True)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "inventory database unavailable")
        except Exception:
            log.exception("%s failed unexpectedly for %s", method, request)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        raise AssertionError("unreachable: context.abort raises")

    return wrapper


def to_pb_reservation(reservation: Reservation) -> pb.Reservation:
    message = pb.Reservation(
        order_id=str(reservation.order_id),
        status=_STATUS_TO_PB[reservation.status],
        items=[pb.LineItem(product_id=i.product_id, quantity=i.quantity) for i in reservation.items],
        short_product_id=reservation.short_product_id,
        reason=reservation.reason,
        replayed=reservation.replayed,
    )
    if reservation.decided_at is not None:
        stamp = Timestamp()
        stamp.FromDatetime(reservation.decided_at)
        message.decided_at.CopyFrom(stamp)
    return message


def to_pb_product(product: Product) -> pb.Product:
    return pb.Product(
        product_id=product.product_id,
        name=product.name,
        price_cents=product.price_cents,
        available=product.available,
        reserved=product.reserved,
        shipped=product.shipped,
        version=product.version,
    )


def chaos_to_pb(settings: ChaosSettings) -> pb.ChaosSettings:
    return pb_chaos(**dataclasses.asdict(settings))


class InventoryServicer(pb_grpc.InventoryServiceServicer):
    def __init__(self, repository: StockRepository, chaos: Chaos, admin_token: str) -> None:
        self.repository = repository
        self.chaos = chaos
        self.admin_token = admin_token

    @grpc_errors
    async def ReserveStock(
        self, request: pb.ReserveStockRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Reservation:
        order_id = parse_order_id(request.order_id)
        items = validate_items(LineItem(i.product_id, i.quantity) for i in request.items)
        reservation = await self.repository.reserve(order_id, items)
        if not reservation.replayed and self.chaos.should_crash():
            self.chaos.crash(str(order_id))
        return to_pb_reservation(reservation)

    @grpc_errors
    async def GetReservation(
        self, request: pb.GetReservationRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Reservation:
        return to_pb_reservation(await self.repository.get(parse_order_id(request.order_id)))

    @grpc_errors
    async def ReleaseReservation(
        self, request: pb.ReleaseReservationRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ReleaseReservationResponse:
        if len(request.reason) > 500:
            raise errors.ValidationError([("reason", "at most 500 characters")])
        release = await self.repository.release(parse_order_id(request.order_id), request.reason)
        return pb.ReleaseReservationResponse(
            order_id=str(release.order_id),
            status=_STATUS_TO_PB[release.status],
            restored=release.restored,
            tombstone=release.tombstone,
        )

    @grpc_errors
    async def ShipReservation(
        self, request: pb.ShipReservationRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Reservation:
        reservation = await self.repository.ship(parse_order_id(request.order_id))
        if not reservation.replayed:
            log.info("shipped order %s", reservation.order_id)
        return to_pb_reservation(reservation)

    @grpc_errors
    async def ListProducts(
        self, request: pb.ListProductsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListProductsResponse:
        ids = list(request.product_ids)
        problems = [p for i, pid in enumerate(ids) for p in validate_product_id(pid, f"product_ids[{i}]")]
        if problems or len(ids) > 500:
            raise errors.ValidationError(problems or [("product_ids", "at most 500 ids")])
        products = await self.repository.list_products(ids)
        return pb.ListProductsResponse(products=[to_pb_product(p) for p in products])

    @grpc_errors
    async def Restock(
        self, request: pb.RestockRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.Product:
        self._require_admin(context)
        validate_restock(request.product_id, request.quantity, request.name, request.price_cents)
        product = await self.repository.restock(
            request.product_id, request.quantity, request.name, request.price_cents
        )
        log.info("restocked %s by %d", request.product_id, request.quantity)
        return to_pb_product(product)

    @grpc_errors
    async def GetChaos(
        self, request: pb.GetChaosRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ChaosSettings:
        return chaos_to_pb(self.chaos.settings)

    @grpc_errors
    async def SetChaos(
        self, request: pb.ChaosSettings, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ChaosSettings:
        self._require_admin(context)
        return chaos_to_pb(self.chaos.update(ChaosSettings(**chaos_from_pb(request))))

    def _require_admin(self, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        if not self.admin_token:
            raise errors.PermissionDenied("admin RPCs are disabled (INVENTORY_ADMIN_TOKEN is not set)")
        metadata = dict(context.invocation_metadata() or ())
        presented = str(metadata.get(ADMIN_TOKEN_METADATA, ""))
        if not hmac.compare_digest(presented.encode(), self.admin_token.encode()):
            raise errors.PermissionDenied("admin token missing or wrong")
