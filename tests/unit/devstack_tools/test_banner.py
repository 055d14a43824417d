"""`make up` lists every function the app declares, read from the app itself (a hand-kept list had drifted: it
lacked shipping, the notifications routes, the event and catalogue triggers)."""

from __future__ import annotations

from devstack.functions_host.banner import function_lines
from devstack.functions_host.metadata import read_functions
from devstack.functions_host.settings import HostConfig
from order_functions.interface.app import build_app

BASE = "http://localhost:7071/api"


def test_every_declared_function_is_listed_with_its_route() -> None:
    lines = function_lines(BASE)
    declared = read_functions(build_app(), HostConfig())
    names = [line.split(":", 1)[0] for line in lines]
    expected = {f.name for f in declared.http} | {f.name for f in declared.queues} | {f.name for f in declared.timers}
    assert sorted(names) == sorted(expected) and len(names) == len(set(names))
    [ship] = [line for line in lines if line.startswith("ship_order:")]
    assert "POST" in ship and f"{BASE}/orders/{{order_id}}/ship" in ship and "ops role" in ship
    [events] = [line for line in lines if line.startswith("reservation_events:")]
    assert "reservation-events/subscriptions/order-service" in events


def test_skipped_functions_are_left_out() -> None:
    names = [line.split(":", 1)[0] for line in function_lines(BASE, skip=("dashboard", "dashboard_asset"))]
    assert "dashboard" not in names and "dashboard_asset" not in names and "create_order" in names
