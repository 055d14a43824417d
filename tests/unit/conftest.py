from __future__ import annotations

from dataclasses import dataclass

import pytest

from order_functions.bootstrap import OrderServices, wire
from order_functions.config import OrderConfig
from tests.unit.fakes import (
    FakeBus,
    FakeCatalogue,
    FakeConsumed,
    FakeInventory,
    FakeMetrics,
    FakeOutbox,
    FakeStore,
    config,
)


@dataclass
class World:
    """The use cases wired by the composition root on in-memory fakes of every port."""

    store: FakeStore
    inventory: FakeInventory
    bus: FakeBus
    events_bus: FakeBus
    outbox: FakeOutbox
    metrics: FakeMetrics
    services: OrderServices
    catalogue: FakeCatalogue
    consumed: FakeConsumed


def build_world(cfg: OrderConfig | None = None) -> World:
    store, inventory, bus, events_bus, metrics = FakeStore(), FakeInventory(), FakeBus(), FakeBus(), FakeMetrics()
    outbox = FakeOutbox(store, bus, events_bus)
    consumed = FakeConsumed(store)
    catalogue = FakeCatalogue(consumed)
    services = wire(
        cfg or config(), orders=store, inventory=inventory, chaos=inventory, bus=bus, outbox=outbox,
        metrics=metrics, bus_kind="fake", queue_stats=bus, catalogue=catalogue, consumed=consumed,
    )
    return World(store, inventory, bus, events_bus, outbox, metrics, services, catalogue, consumed)


@pytest.fixture
def world() -> World:
    return build_world()
