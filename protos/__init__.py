"""The inventory gRPC contract (inventory.proto) and its generated stubs, shared by both services, plus the two
contract details that are not in the .proto: the admin-token metadata key and the named chaos fields."""

from __future__ import annotations

from typing import Any

import grpc

from protos import inventory_pb2 as pb
from protos import inventory_pb2_grpc

# Admin RPCs (Restock, SetChaos) carry the shared admin token in this gRPC metadata key.
ADMIN_TOKEN_METADATA = "x-valerix-admin-token"


def inventory_stub(channel: grpc.aio.Channel) -> inventory_pb2_grpc.InventoryServiceAsyncStub:
    return inventory_pb2_grpc.InventoryServiceStub(channel)


def chaos_to_pb(
    *, gremlin_enabled: bool, min_delay_s: float, max_delay_s: float, pattern: str, crash_rate: float
) -> pb.ChaosSettings:
    """The chaos switches by their short names (as services and the admin API name them) as the wire message."""
    return pb.ChaosSettings(
        gremlin_enabled=gremlin_enabled,
        gremlin_min_delay_s=min_delay_s,
        gremlin_max_delay_s=max_delay_s,
        gremlin_pattern=pattern,
        schrodinger_crash_rate=crash_rate,
    )


def chaos_from_pb(message: pb.ChaosSettings) -> dict[str, Any]:
    """The inverse of `chaos_to_pb`: keyword arguments for a settings object with the short names."""
    return {
        "gremlin_enabled": bool(message.gremlin_enabled),
        "min_delay_s": float(message.gremlin_min_delay_s),
        "max_delay_s": float(message.gremlin_max_delay_s),
        "pattern": str(message.gremlin_pattern),
        "crash_rate": float(message.schrodinger_crash_rate),
    }
