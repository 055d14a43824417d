"""within(): the deadline is kept even when the cancelled operation takes its time to unwind."""

from __future__ import annotations

import asyncio

import pytest

from order_functions.application.deadline import within


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
