"""Ends a start-up that hangs, so the supervisor (or Container Apps) restarts the process.

Start-up talks to PostgreSQL several times (pool, migrations, seed, relay, call counter). If the database restarts
in the middle, one of those steps can wait far longer than any caller will; a process that is neither serving nor
dead is the one state an orchestrator without a probe never repairs. A thread timer is used, not
`asyncio.wait_for`, because it fires even when the event loop itself is blocked.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

EXIT_STARTUP_TIMEOUT = 70  # EX_SOFTWARE: distinct from the Schrödinger crash (75)


class StartupWatchdog:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._timer = threading.Timer(timeout_s, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> StartupWatchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def _fire(self) -> None:
        log.critical("start-up did not finish within %.1fs: exiting with %d so the process is restarted",
                     self.timeout_s, EXIT_STARTUP_TIMEOUT)
        logging.shutdown()
        os._exit(EXIT_STARTUP_TIMEOUT)
