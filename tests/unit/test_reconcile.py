"""The reconciler on fakes: gives up, finishes cancellations, re-sends VerifyOrder, purges keys, refreshes gauges."""

from __future__ import annotations

import uuid

import pytest

from order_functions.application.ports import InventoryUnavailable, OutgoingMessage, ReleaseOutcome, ReservationStatus
from order_functions.domain.models import OrderStatus, SettledVia
from tests.unit.conftest import World, build_world
from tests.unit.fakes import config, request


async def test_nothing_to_do_still_refreshes_the_gauges(world: World) -> None:
    report = await world.services.reconcile()
    assert (report.reenqueued, report.gave_up, report.cancelled, report.keys_purged) == (0, 0, 0, 0)
    assert world.metrics.gauge_refreshes == 1


async def test_stale_pending_order_gets_a_new_verify_message() -> None:
    world = build_world(config(stale_after_s=5.0))
    stale = world.store.add(uuid.uuid4(), request(), age_s=10)
    fresh = world.store.add(uuid.uuid4(), request(), age_s=1)
    report = await world.services.reconcile()
    assert report.reenqueued == 1 and [m.message_id for m in world.bus.sent] == [f"verify-{stale.order_id}"]
    again = await world.services.reconcile()  # just re-sent: not stale again yet
    assert again.reenqueued == 0 and fresh.order_id not in {o for o, *_ in world.store.events}


async def test_second_attempt_has_its_own_message_id() -> None:
    world = build_world(config(stale_after_s=5.0))
    order = world.store.add(uuid.uuid4(), request(), age_s=10)
    await world.store.mark_verify_enqueued(order.order_id)
    world.store.verify_enqueued_at[order.order_id] = order.created_at  # that send was long ago
    await world.services.reconcile()
    assert [m.message_id for m in world.bus.sent] == [f"verify-{order.order_id}-r2"]


async def test_order_pending_too_long_is_given_up_and_cancelled_with_a_release() -> None:
    world = build_world(config(give_up_after_s=60.0))
    order = world.store.add(uuid.uuid4(), request(), age_s=120)
    report = await world.services.reconcile()
    assert report.gave_up == 1 and report.cancelled == 1 and world.inventory.released == [order.order_id]
    settled = world.store.orders[order.order_id]
    assert settled.status is OrderStatus.CANCELLED and settled.settled_via is SettledVia.RECONCILER
    assert world.bus.sent == []


async def test_failed_release_is_reported_and_retried_next_run() -> None:
    world = build_world(config(give_up_after_s=60.0))
    order = world.store.add(uuid.uuid4(), request(), age_s=120)
    world.inventory.release_answer = InventoryUnavailable("UNAVAILABLE")
    report = await world.services.reconcile()
    assert report.cancelled == 0 and len(report.errors) == 1 and str(order.order_id) in report.errors[0]
    assert world.store.orders[order.order_id].status is OrderStatus.PENDING
    world.inventory.release_answer = ReleaseOutcome(ReservationStatus.RELEASED, True, True)
    retried = await world.services.reconcile()
    assert retried.cancelled == 1 and world.store.orders[order.order_id].status is OrderStatus.CANCELLED


async def test_expired_keys_are_purged_in_bounded_batches(world: World) -> None:
    world.store.expired_keys = 1500
    assert (await world.services.reconcile()).keys_purged == 1000
    assert (await world.services.reconcile()).keys_purged == 500


async def test_one_failing_order_does_not_stop_the_run_for_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world(config(give_up_after_s=60.0, stale_after_s=5.0))
    broken = world.store.add(uuid.uuid4(), request(), age_s=120)
    healthy = world.store.add(uuid.uuid4(), request(), age_s=121)
    stale = [world.store.add(uuid.uuid4(), request(), age_s=10) for _ in range(2)]
    release, send = world.inventory.release, world.bus.send

    async def release_failing_for_one(order_id: uuid.UUID, reason: str, timeout_s: float) -> ReleaseOutcome:
        if order_id == broken.order_id:
            raise RuntimeError("a bug or a surprise answer for this one order")
        return await release(order_id, reason, timeout_s)

    async def send_failing_for_one(message: OutgoingMessage) -> None:
        if str(stale[0].order_id) in message.message_id:
            raise OSError("bus refused this one message")
        await send(message)

    monkeypatch.setattr(world.inventory, "release", release_failing_for_one)
    monkeypatch.setattr(world.bus, "send", send_failing_for_one)
    report = await world.services.reconcile()
    assert world.store.orders[healthy.order_id].status is OrderStatus.CANCELLED
    assert world.store.orders[broken.order_id].status is OrderStatus.PENDING  # retried next run
    assert report.cancelled == 1 and any(str(broken.order_id) in e for e in report.errors)
    assert [m.message_id for m in world.bus.sent] == [f"verify-{stale[1].order_id}"]
    assert world.metrics.gauge_refreshes == 1  # the run finished
