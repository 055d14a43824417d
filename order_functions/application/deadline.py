"""Awaiting within a deadline without waiting for the cancellation itself.

`asyncio.wait_for` returns only once the cancelled operation has finished unwinding; a database driver that, on
cancellation, asks the server to cancel the query (psycopg does) can take far longer than the deadline when the
server is the slow part. `within` answers at the deadline and lets the cancellation finish in the background."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


async def within(operation: Awaitable[T], timeout_s: float, what: str) -> T:
    """The operation's result, or TimeoutError at `timeout_s` (the operation is cancelled, not awaited)."""
    task = asyncio.ensure_future(operation)
    try:
        done, _ = await asyncio.wait({task}, timeout=max(timeout_s, 0.0))
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        return task.result()
    task.cancel()
    task.add_done_callback(lambda t: _log_late(t, what))
    raise TimeoutError(f"{what} did not finish within {timeout_s:.3f}s")


def _log_late(task: asyncio.Future[Any], what: str) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.warning("%s failed after its deadline had passed: %r", what, exc)
    else:
        log.info("%s finished after its deadline had passed", what)
