from __future__ import annotations

from dataclasses import dataclass

import pytest

from order_functions.bootstrap import OrderServices, wire
from order_functions.config import OrderConfig
from tests.unit.fakes import FakeBus, FakeInventory, FakeMetrics, FakeStore, config


@dataclass
class World:
    """The use cases wired by the composition root on in-memory fakes of every port."""

    store: FakeStore
    inventory: FakeInventory
    bus: FakeBus
    metrics: FakeMetrics
    services: OrderServices


def build_world(cfg: OrderConfig | None = None) -> World:
    store, inventory, bus, metrics = FakeStore(), FakeInventory(), FakeBus(), FakeMetrics()
    services = wire(
        cfg or config(), orders=store, inventory=inventory, chaos=inventory, bus=bus, metrics=metrics,
        bus_kind="fake", queue_stats=bus,
    )
    return World(store, inventory, bus, metrics, services)


@pytest.fixture
def world() -> World:
    return build_world()
