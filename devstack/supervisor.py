"""Runs a child process and restarts it when it dies, as a container orchestrator would."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass
class Supervised:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    restart: bool = True
    restart_delay_s: float = 0.3
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False

    async def start(self) -> None:
        await self._spawn()
        self._task = asyncio.create_task(self._watch(), name=f"supervise-{self.name}")

    async def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.log_path.open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.argv, env=self.env, cwd=self.cwd, stdout=out, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop children in order
            )
        finally:
            out.close()
        log.info("%s started (pid %s)", self.name, self.process.pid)

    async def _watch(self) -> None:
        while not self._stopping:
            assert self.process is not None
            code = await self.process.wait()
            if self._stopping:
                return
            self.exit_codes.append(code)
            log.warning("%s exited with %s; log: %s", self.name, code, self.log_path)
            if not self.restart:
                return
            await asyncio.sleep(self.restart_delay_s)
            if self._stopping:
                return
            self.restarts += 1
            await self._spawn()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process and self.process.returncode is None else None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Chaos: kill the current child by PID; the watcher restarts it."""
        if self.pid:
            os.kill(self.pid, sig)

    async def stop(self, timeout_s: float = 15.0) -> None:
        self._stopping = True
        proc = self.process
        if proc and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                log.error("%s ignored SIGTERM for %.0fs; killing pid %s", self.name, timeout_s, proc.pid)
                proc.kill()
                await proc.wait()
        await cancel_task(self._task)


async def cancel_task(task: asyncio.Task[None] | None) -> None:
    """Cancels a background loop and waits until it has ended (its CancelledError is the expected way out)."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def python_argv(module: str) -> list[str]:
    return [sys.executable, "-m", module]


async def wait_for(predicate_name: str, check: object, timeout_s: float = 30.0, interval_s: float = 0.1) -> None:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(interval_s)
    raise TimeoutError(f"{predicate_name} not ready after {timeout_s:.0f}s")
