"""When the order outbox relay runs in this process: the `Outbox` port.

* `kick()` (after a transition, or when a pending order's verify intent falls due) starts a pass in a background
  task and returns at once; kicks while a pass runs coalesce into one more pass. The task starts in an empty
  context, so nothing it does belongs to the request that kicked it.
* A pass that fails is retried with bounded backoff (0.2 s doubling to 2 s, 20 times: about half a minute, the
  length of a bus or database outage worth riding out); after that the reconciler's tick (every 5 s) is the
  backstop, as it is for rows a recycled instance left behind.
* After a pass, the next verify intent due within FOLLOW_DUE_S is followed with a timed kick, so a process that
  took orders keeps handing them on without a timer of its own.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging

from order_functions.application.ports import RelayReport
from order_functions.infrastructure.order_outbox import OrderOutboxRelay

log = logging.getLogger(__name__)

FOLLOW_DUE_S = 30.0
_SAME_MOMENT_S = 0.02  # timed kicks closer than this share one pass


class RelayRunner:
    def __init__(
        self, relay: OrderOutboxRelay, *, max_retries: int = 20, initial_backoff_s: float = 0.2,
        max_backoff_s: float = 2.0,
    ) -> None:
        self.relay_pass = relay
        self.max_retries = max_retries
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.passes = 0
        self.failures = 0
        self.last_error = ""
        self._lock = asyncio.Lock()  # one pass at a time per process (bus senders are not for concurrent use)
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._timers: set[asyncio.TimerHandle] = set()
        self._closed = False

    def kick(self, delay_s: float = 0.0) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a synchronous caller): the reconciler's pass sends it
        if self._closed:
            return
        if delay_s <= 0:
            loop.call_soon(self._start, context=contextvars.Context())
            return
        at = loop.time() + delay_s
        if any(abs(h.when() - at) < _SAME_MOMENT_S for h in self._timers if not h.cancelled()):
            return  # a pass is already due then
        self._timers.add(loop.call_at(at, self._fire, context=contextvars.Context()))

    async def relay(self, timeout_s: float) -> RelayReport:
        """One pass now, waiting for a kicked pass in progress first; the whole wait is bounded."""
        return await asyncio.wait_for(self._locked_pass(), timeout_s)

    async def _locked_pass(self) -> RelayReport:
        async with self._lock:
            return await self.relay_pass.relay_once()

    async def close(self) -> None:
        self._closed = True
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _fire(self) -> None:
        self._timers = {h for h in self._timers if not h.cancelled() and h.when() > asyncio.get_running_loop().time()}
        self._start()

    def _start(self) -> None:
        if self._closed:
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._drain(), name="order-outbox-relay")

    async def _drain(self) -> None:
        for _ in range(1000):  # bounded; a kick that lands while the next due time is read asks for one more round
            if not await self._passes():
                return
            self._again = False
            await self._follow_due()
            if not self._again or self._closed:
                return

    async def _passes(self) -> bool:
        """Passes until nothing more is waiting; False when they kept failing (the reconciler's tick retries)."""
        failures = 0
        backoff = self.initial_backoff_s
        while not self._closed:
            self._again = False
            try:
                report = await self._locked_pass()
                self.passes += 1
            except Exception as exc:
                failures += 1
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"[:500]
                if failures > self.max_retries:
                    log.warning("order outbox relay: %d failed passes (%s); the reconciler's tick retries",
                                failures, self.last_error)
                    return False
                log.warning("order outbox relay failed (%s); retrying in %.1fs", self.last_error, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            full = max(report.events, report.verifies + report.skipped) >= self.relay_pass.batch_size
            if not (full or self._again):
                break
        return True

    async def _follow_due(self) -> None:
        try:
            due_in = await self.relay_pass.next_due_in()
        except Exception as exc:
            log.warning("order outbox relay: cannot read the next due verify intent (%r)", exc)
            return
        if due_in is not None and due_in <= FOLLOW_DUE_S:
            # due already (it fell due after the pass claimed, or another process holds it): look again shortly
            self.kick(max(due_in, 0.09) + 0.01)
