"""One live progress line: `\\r`-refreshed ~2/s on a TTY, a plain line every ~5 s otherwise (CI logs)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import TextIO

from devstack.supervisor import cancel_task


class Progress:
    def __init__(self, render: Callable[[], str], stream: TextIO | None = None) -> None:
        self.render = render
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.interval_s = 0.5 if self.tty else 5.0
        self.started = time.monotonic()
        self._line_open = False
        self._task: asyncio.Task[None] | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def _draw(self) -> None:
        text = f"[{self.elapsed():6.1f}s] {self.render()}"
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
            self._line_open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def say(self, message: str) -> None:
        """A permanent line (fault, phase) that does not garble the live line."""
        if self._line_open:
            self.stream.write("\r\x1b[2K")
            self._line_open = False
        self.stream.write(message + "\n")
        self.stream.flush()
        if self.tty and self._task is not None:
            self._draw()

    async def _loop(self) -> None:
        while True:
            self._draw()
            await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="chaos-progress")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None
        self._draw()
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False
        self.stream.flush()
