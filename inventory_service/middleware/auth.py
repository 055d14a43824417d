"""Only the Order Service may change or read reservations: a bearer token checked by a server interceptor.

The token is the Order Service's own (its managed identity in Azure, the devstack issuer locally), for the
audience `INVENTORY_AUTH_AUDIENCE`, validated by the same code as the Order Service's API tokens. A valid token
of anybody else is `PERMISSION_DENIED`; no token or a bad one is `UNAUTHENTICATED`.

Every InventoryService method needs it except the open list below (the read-only catalogue, and the admin
RPCs, which need the admin token instead): a method added later is protected without anyone remembering to.
gRPC health checking and reflection are other services and stay open: read-only, for probes and tools.

Settings: `INVENTORY_AUTH_ISSUER` (default `AUTH_ISSUER`), `INVENTORY_AUTH_AUDIENCE`, `INVENTORY_AUTH_JWKS_URL`
(optional), `INVENTORY_ALLOWED_CALLERS` (comma-separated ids matched against `azp`, `appid`, `oid`, `sub`: the
managed identity's client id or object id). The server refuses to start without them, wherever it binds: locally
the devstack issuer plays Entra ID, so there is one mechanism and no exemption.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from valerix_common.env import SettingError, env_str
from valerix_common.jwt_auth import InvalidToken, JwtSettings, JwtValidator, bearer_token

log = logging.getLogger(__name__)

SERVICE_PREFIX = "/valerix.inventory.v1.InventoryService/"
OPEN_METHODS = frozenset({"ListProducts", "Restock", "GetChaos", "SetChaos"})
CALLER_CLAIMS = ("azp", "appid", "oid", "sub")


@dataclass(frozen=True)
class CallerAuthSettings:
    jwt: JwtSettings
    allowed_callers: frozenset[str]

    def __post_init__(self) -> None:
        if not self.allowed_callers or not all(self.allowed_callers):
            raise SettingError("INVENTORY_ALLOWED_CALLERS must name the Order Service's identity")

    @classmethod
    def from_env(cls) -> CallerAuthSettings:
        """`SettingError` when anything is missing: there is no unauthenticated inventory."""
        return cls(
            jwt=JwtSettings.from_env("INVENTORY_AUTH_", issuer_fallback="AUTH_ISSUER"),
            allowed_callers=frozenset(c.strip() for c in env_str("INVENTORY_ALLOWED_CALLERS").split(",") if c.strip()),
        )


def caller_of(claims: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(v for name in CALLER_CLAIMS if isinstance(v := claims.get(name), str) and v)


def _metadata_value(details: grpc.HandlerCallDetails, key: str) -> str | None:
    for entry in details.invocation_metadata or ():
        name, value = entry[0], entry[1]
        if name == key:
            return value if isinstance(value, str) else None
    return None


def _aborting(
    handler: grpc.RpcMethodHandler[Any, Any], code: grpc.StatusCode, message: str
) -> grpc.RpcMethodHandler[Any, Any]:
    async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(
        refuse, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer
    )


class CallerAuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, validator: JwtValidator, allowed_callers: frozenset[str]) -> None:
        self.validator = validator
        self.allowed_callers = allowed_callers

    @classmethod
    def from_settings(cls, settings: CallerAuthSettings) -> CallerAuthInterceptor:
        return cls(JwtValidator(settings.jwt), settings.allowed_callers)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method
        handler = await continuation(handler_call_details)
        if handler is None or not method.startswith(SERVICE_PREFIX) or method[len(SERVICE_PREFIX):] in OPEN_METHODS:
            return handler
        try:
            token = bearer_token(_metadata_value(handler_call_details, "authorization"))
            claims = await self.validator.validate_async(token)
        except InvalidToken as exc:
            log.warning("inventory caller rejected on %s: %s", method, exc.reason)
            return _aborting(handler, grpc.StatusCode.UNAUTHENTICATED, "a valid bearer token is required")
        callers = caller_of(claims)
        if not callers & self.allowed_callers:
            log.warning("inventory caller %s may not call %s", sorted(callers), method)
            return _aborting(handler, grpc.StatusCode.PERMISSION_DENIED, "this caller may not use this method")
        return handler


def caller_auth_interceptors(settings: CallerAuthSettings) -> list[grpc.aio.ServerInterceptor]:
    """Outermost interceptors for the server: refused calls are not delayed by the Gremlin nor shielded."""
    return [CallerAuthInterceptor.from_settings(settings)]
