"""Server plumbing a grpcurl user relies on: reflection and the standard health service."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support.inventory import InventoryHarness


async def test_reflection_lists_the_inventory_service_and_describes_it(inventory: InventoryHarness) -> None:
    async with grpc.aio.insecure_channel(inventory.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="valerix.inventory.v1.InventoryService"),
        ]
        responses = [r async for r in stub.ServerReflectionInfo(iter(requests))]
    services = {s.name for s in responses[0].list_services_response.service}
    assert {"valerix.inventory.v1.InventoryService", "grpc.health.v1.Health"} <= services
    descriptors = responses[1].file_descriptor_response.file_descriptor_proto
    assert any(b"ReserveStock" in d for d in descriptors)


async def test_health_reports_serving_for_the_named_service(inventory: InventoryHarness) -> None:
    async with grpc.aio.insecure_channel(inventory.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "valerix.inventory.v1.InventoryService"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
