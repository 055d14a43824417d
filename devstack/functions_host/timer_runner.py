"""Timer triggers: fire on the schedule (``runOnStartup`` too), flag late runs as past due, and never run two
invocations of one timer at a time (a due occurrence is skipped while the last one still runs)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.functions.timer import TimerRequest

from devstack.functions_host.invocation import invoke, log_failed, log_succeeded
from devstack.functions_host.metadata import TimerFunction
from devstack.functions_host.schedules import TimerSchedule

log = logging.getLogger("devstack.functions_host")

PAST_DUE_AFTER_S = 1.0


class TimerRunner:
    def __init__(self, fn: TimerFunction, track: Callable[[asyncio.Task[Any]], None] | None = None) -> None:
        self.fn = fn
        self.schedule = TimerSchedule(fn.schedule)
        self.track = track or (lambda _task: None)
        self._running: asyncio.Task[None] | None = None
        self._last: datetime | None = None

    async def run(self, stopping: asyncio.Event) -> None:
        now = datetime.now(UTC)
        if self.fn.run_on_startup:
            self.fire(now, False, self.schedule.next_after(now))
        due = self.schedule.next_after(now)
        while not stopping.is_set():
            for _ in range(1000):  # the loop clock may wake a hair early: sleep again rather than fire early
                delay = (due - datetime.now(UTC)).total_seconds()
                if delay <= 0:
                    break
                await asyncio.sleep(delay)
            now = datetime.now(UTC)
            late = (now - due).total_seconds()
            nxt = self.schedule.next_after(max(now, due))  # strictly after this occurrence
            self.fire(due, late > PAST_DUE_AFTER_S, nxt)
            due = nxt

    def fire(self, due: datetime, past_due: bool, nxt: datetime) -> None:
        if self._running is not None and not self._running.done():
            log.warning("%s: previous run still in progress; skipping the occurrence due %s",
                        self.fn.name, due.isoformat())
            return
        status = {
            "Last": (self._last or datetime.min.replace(tzinfo=UTC)).isoformat(),
            "Next": nxt.isoformat(),
            "LastUpdated": datetime.now(UTC).isoformat(),
        }
        request = TimerRequest(past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True})
        self._running = asyncio.create_task(self._invoke(request), name=f"timer-run:{self.fn.name}")
        self.track(self._running)
        self._last = due

    async def _invoke(self, request: TimerRequest) -> None:
        invocation_id = str(uuid.uuid4())
        started = time.monotonic()
        try:
            await invoke(self.fn.user_function, {self.fn.arg_name: request})
        except Exception as exc:
            log_failed(self.fn.name, invocation_id, started, exc)
            return
        log_succeeded(self.fn.name, invocation_id, started)
