"""`python -m tests.support.order_service_call TARGET`: one GetReservation as the Order Service calls it.

The credential comes from the order side's own `inventory_token_from_env()` (INVENTORY_AUTH_* and, in the
compose stack, SSL_CERT_FILE for the issuer's local CA), in a process of its own so that the environment is read
at start-up exactly as in a container. Prints the gRPC status name of the answer (`NOT_FOUND` for an unknown
order means the call was authenticated and admitted; `NO_CREDENTIAL` that no token could be fetched).
"""

from __future__ import annotations

import asyncio
import sys
import uuid

import grpc

from order_functions.application.ports import InventoryUnavailable
from order_functions.infrastructure.inventory_credentials import BearerTokenInterceptor, inventory_token_from_env
from protos import inventory_pb2 as pb
from protos import inventory_stub


async def main(target: str) -> str:
    interceptor = BearerTokenInterceptor(inventory_token_from_env())
    async with grpc.aio.insecure_channel(target, interceptors=[interceptor]) as channel:
        try:
            await inventory_stub(channel).GetReservation(
                pb.GetReservationRequest(order_id=str(uuid.uuid4())), timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
        except InventoryUnavailable:  # no credential could be obtained (logged by the interceptor)
            return "NO_CREDENTIAL"
    return "OK"


if __name__ == "__main__":
    print(asyncio.run(main(sys.argv[1])), flush=True)
