"""gRPC server interceptors: the Gremlin delay, and completion of calls whose caller gave up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from inventory_service.metrics import GREMLIN_DELAY
from inventory_service.middleware.chaos import Chaos

log = logging.getLogger(__name__)

# Health probes and reflection must stay fast, or the orchestrator would restart a merely slow service.
_UNDELAYED_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class GremlinInterceptor(grpc.aio.ServerInterceptor):
    """Delays each call, then runs it to completion even if the caller's deadline has passed.

    grpc.aio cancels a handler when its client goes away. A slow network does not: the late request still
    reaches the server and still commits. Shielding the delayed work reproduces that, which is exactly the late
    write the tombstone must fence; a started decision is never cut off half-way either.
    """

    def __init__(self, chaos: Chaos) -> None:
        self.chaos = chaos

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method: str = handler_call_details.method
        handler = await continuation(handler_call_details)
        if method.startswith(_UNDELAYED_PREFIXES) or handler is None or handler.unary_unary is None:
            return handler
        if not self.chaos.settings.gremlin_enabled:
            # Off (the usual case): the call runs as registered, with no wrapper, task or shield per call. Every
            # decision is one transaction, so a call cut off by its caller's deadline commits all or nothing.
            return handler
        inner = handler.unary_unary
        chaos = self.chaos

        async def delayed_then_completed(request: Any, context: Any) -> Any:
            async def run() -> Any:
                delay = await chaos.delay_for(method)
                if delay > 0:
                    log.info("gremlin: delaying %s by %.2fs", method, delay)
                    GREMLIN_DELAY.record(delay, {"rpc.method": method})
                    await asyncio.sleep(delay)
                return await inner(request, context)

            return await asyncio.shield(asyncio.ensure_future(run()))

        return grpc.unary_unary_rpc_method_handler(
            delayed_then_completed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
