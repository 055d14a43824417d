"""One deadline per answer, and awaiting within it without waiting for the cancellation itself.

A `Deadline` is fixed when the request arrives (the interface starts it, before authentication and body parsing)
and handed down; every awaited step of the answer gets what is left of it, never a budget of its own.

`asyncio.wait_for` returns only once the cancelled operation has finished unwinding; a database driver that, on
cancellation, asks the server to cancel the query (psycopg does) can take far longer than the deadline when the
server is the slow part. `within` answers at the deadline and lets the cancellation finish in the background."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

Clock = Callable[[], float]


@dataclass(frozen=True)
class Deadline:
    """When an answer must leave: a point on the monotonic clock, `budget_s` after the request arrived."""

    at: float
    budget_s: float
    clock: Clock = field(default=time.monotonic, compare=False, repr=False)

    @classmethod
    def after(cls, budget_s: float, *, started_at: float | None = None, clock: Clock = time.monotonic) -> Deadline:
        """The deadline `budget_s` after `started_at` (the request's arrival; now when not given)."""
        start = clock() if started_at is None else started_at
        return cls(start + budget_s, budget_s, clock)

    def left(self) -> float:
        """Seconds until the deadline; negative once it has passed."""
        return self.at - self.clock()

    def left_at_least(self, floor_s: float) -> float:
        """What is left, but never below `floor_s` (a step that must run, e.g. releasing a claimed key)."""
        return max(self.left(), floor_s)

    def share(self, fraction: float, floor_s: float = 0.0) -> float:
        """At most `fraction` of the whole budget, and never more than what is left (nor below `floor_s`)."""
        return max(min(self.budget_s * fraction, self.left()), floor_s)

    @property
    def passed(self) -> bool:
        return self.left() <= 0.0


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
