"""Deadline: one point in time, shared by every step; within(): the deadline is kept even when the cancelled
operation takes its time to unwind."""

from __future__ import annotations

import asyncio

import pytest

from order_functions.application.deadline import Deadline, within


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_deadline_counts_from_the_arrival_not_from_when_it_is_made() -> None:
    clock = Clock()
    arrived = clock.now
    clock.now += 0.5  # authentication and parsing took half a second
    deadline = Deadline.after(2.0, started_at=arrived, clock=clock)
    assert deadline.at == arrived + 2.0 and deadline.left() == 1.5
    assert Deadline.after(2.0, clock=clock).left() == 2.0  # without an arrival: from now


def test_every_step_gets_only_what_is_left() -> None:
    clock = Clock()
    deadline = Deadline.after(2.0, clock=clock)
    assert deadline.share(0.25) == 0.5  # a capped step: its share of the budget ...
    clock.now += 1.8
    assert deadline.share(0.25) == pytest.approx(0.2)  # ... but never more than is left
    assert not deadline.passed
    clock.now += 0.5
    assert deadline.passed and deadline.left() == pytest.approx(-0.3)
    assert deadline.share(0.25, 0.02) == 0.02 and deadline.left_at_least(0.02) == 0.02  # the floors


async def test_result_in_time_is_returned() -> None:
    async def quick() -> str:
        await asyncio.sleep(0)
        return "done"

    assert await within(quick(), 1.0, "quick") == "done"


async def test_the_answer_does_not_wait_for_a_slow_cancellation() -> None:
    unwinding = asyncio.Event()
    finished_unwinding = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            unwinding.set()
            await asyncio.sleep(0.2)  # as a driver cancelling the query on the server would
            finished_unwinding.set()
            raise

    with pytest.raises(TimeoutError):
        await within(stubborn(), 0.01, "stubborn")
    await asyncio.wait_for(unwinding.wait(), 5)  # it was cancelled ...
    assert not finished_unwinding.is_set()  # ... and the caller got its answer before the unwinding ended
    await asyncio.wait_for(finished_unwinding.wait(), 5)


async def test_errors_in_time_propagate() -> None:
    async def broken() -> None:
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        await within(broken(), 1.0, "broken")
