"""The chaos switches: the Gremlin (latency) and Schrödinger's Warehouse (crash after commit).

Settings start from the environment and can be changed at run time through the admin SetChaos RPC.
"""

from __future__ import annotations

import logging
import os
import random
import re
import sys
import threading
from dataclasses import dataclass

from inventory_service.metrics import CRASHES
from valerix_common.env import SettingError, env_bool, env_float, env_int, env_str

log = logging.getLogger(__name__)

_EVERY = re.compile(r"^every:([1-9][0-9]{0,5})$")
CRASH_EXIT_CODE = 75


@dataclass(frozen=True)
class ChaosSettings:
    gremlin_enabled: bool = False
    min_delay_s: float = 2.0
    max_delay_s: float = 5.0
    pattern: str = ""
    crash_rate: float = 0.0

    def validated(self) -> ChaosSettings:
        if not 0 <= self.min_delay_s <= self.max_delay_s <= 60:
            raise SettingError("need 0 <= gremlin min delay <= max delay <= 60 s")
        if self.pattern not in ("", "random") and not _EVERY.match(self.pattern):
            raise SettingError(f"gremlin pattern {self.pattern!r}: use 'random' or 'every:N'")
        if not 0 <= self.crash_rate <= 1:
            raise SettingError("crash rate must be within 0..1")
        return self

    @classmethod
    def from_env(cls) -> ChaosSettings:
        return cls(
            gremlin_enabled=env_bool("GREMLIN_MODE"),
            min_delay_s=env_float("GREMLIN_MIN_DELAY_S", 2.0, minimum=0),
            max_delay_s=env_float("GREMLIN_MAX_DELAY_S", 5.0, minimum=0),
            pattern=env_str("GREMLIN_PATTERN"),
            crash_rate=env_float("SCHRODINGER_CRASH_RATE", 0.0, minimum=0, maximum=1),
        ).validated()


class Chaos:
    """Shared by the Gremlin interceptor and the ReserveStock handler; thread-safe counters."""

    def __init__(self, settings: ChaosSettings, seed: int | None = None) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._calls = 0
        seed = seed if seed is not None else (env_int("GREMLIN_SEED", 0) or None)
        self._rng = random.Random(seed)
        self.delays_injected = 0

    @property
    def settings(self) -> ChaosSettings:
        return self._settings

    def update(self, settings: ChaosSettings) -> ChaosSettings:
        with self._lock:
            self._settings = settings.validated()
            self._calls = 0
        log.warning("chaos settings changed: %s", self._settings)
        return self._settings

    def next_delay(self) -> float:
        """Seconds to hold this call; 0 when the Gremlin is off or the pattern skips it."""
        with self._lock:
            s = self._settings
            if not s.gremlin_enabled:
                return 0.0
            self._calls += 1
            match = _EVERY.match(s.pattern)
            if match and self._calls % int(match.group(1)) != 0:
                return 0.0
            self.delays_injected += 1
            return self._rng.uniform(s.min_delay_s, s.max_delay_s)

    def should_crash(self) -> bool:
        with self._lock:
            rate = self._settings.crash_rate
            return rate > 0 and self._rng.random() < rate

    def crash(self, order_id: str) -> None:
        """Schrödinger's Warehouse: the reservation is committed, the reply never leaves."""
        CRASHES.add(1)  # the process ends below: this point is seldom exported, the log line is the record
        log.critical("SCHRODINGER: exiting after committing reservation %s, before replying", order_id)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)
