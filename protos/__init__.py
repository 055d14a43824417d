"""The inventory gRPC contract (inventory.proto) and its generated stubs, shared by both services."""

from __future__ import annotations

import grpc

from protos import inventory_pb2_grpc


def inventory_stub(channel: grpc.aio.Channel) -> inventory_pb2_grpc.InventoryServiceAsyncStub:
    return inventory_pb2_grpc.InventoryServiceStub(channel)
