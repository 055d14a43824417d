"""The chaos switches: the Gremlin (latency) and Schrödinger's Warehouse (crash after commit).

Settings start from the environment and can be changed at run time through the admin SetChaos RPC. The control
channel itself (GetChaos, SetChaos, Restock) is never delayed, so "chaos off" acts at once. `every:N` counts calls
in a sequence in the inventory database, shared by every replica on it, so the pattern holds across replicas.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg_pool import AsyncConnectionPool

from inventory_service.metrics import CRASHES
from valerix_common.env import SettingError, env_bool, env_float, env_int, env_str

log = logging.getLogger(__name__)

_EVERY = re.compile(r"^every:([1-9][0-9]{0,5})$")
CRASH_EXIT_CODE = 75
# The control channel: an operator switching chaos off must not wait out the Gremlin first.
CONTROL_METHODS = frozenset(
    f"/valerix.inventory.v1.InventoryService/{name}" for name in ("GetChaos", "SetChaos", "Restock")
)


class CallCounter(Protocol):
    """Numbers Gremlin-eligible calls 1, 2, 3, … across every replica; `reset` starts again from 1."""

    async def next(self) -> int: ...

    async def reset(self) -> None: ...


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
        self._shared: CallCounter | None = None
        self._shared_reset_due = False

    def share_counter(self, counter: CallCounter) -> None:
        """From now on `every:N` counts on `counter` (which the caller has just restarted)."""
        with self._lock:
            self._shared = counter

    @property
    def settings(self) -> ChaosSettings:
        return self._settings

    def update(self, settings: ChaosSettings) -> ChaosSettings:
        with self._lock:
            self._settings = settings.validated()
            self._calls = 0
            self._shared_reset_due = True
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

    async def delay_for(self, method: str) -> float:
        """`next_delay` for one RPC: control calls are never held; `every:N` counts on the shared counter."""
        if method in CONTROL_METHODS:
            return 0.0
        with self._lock:
            s, shared, reset = self._settings, self._shared, self._shared_reset_due
            self._shared_reset_due = False
        match = _EVERY.match(s.pattern)
        if not (s.gremlin_enabled and match and shared is not None):
            return self.next_delay()
        try:
            if reset:
                await shared.reset()
            n = await shared.next()
        except Exception as exc:  # the database may be restarting: count locally until it is back
            log.warning("gremlin: shared call counter unavailable (%r); counting in this process", exc)
            with self._lock:
                self._shared_reset_due = self._shared_reset_due or reset
            return self.next_delay()
        if n % int(match.group(1)) != 0:
            return 0.0
        with self._lock:
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


class PgCallCounter:
    """`CallCounter` on a PostgreSQL sequence: nextval is atomic and outside transactions, so replicas share it."""

    SEQUENCE = "gremlin_call_seq"

    def __init__(self, pool: AsyncConnectionPool[Any], timeout_s: float = 1.0) -> None:
        self.pool = pool
        self.timeout_s = timeout_s  # a database that is down must not stall the call past its own delay

    async def start(self) -> None:
        """Creates the sequence if needed and restarts the count: a replica that starts begins the pattern anew."""
        async with asyncio.timeout(self.timeout_s * 20), self.pool.connection(timeout=self.timeout_s * 10) as conn:
            try:
                await conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {self.SEQUENCE}")
            except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
                log.info("gremlin call sequence created by another replica meanwhile")
        await self.reset()

    async def next(self) -> int:
        async with asyncio.timeout(self.timeout_s * 2), self.pool.connection(timeout=self.timeout_s) as conn:
            cur = await conn.execute(f"SELECT nextval('{self.SEQUENCE}') AS n")
            row = await cur.fetchone()
        assert row is not None
        return int(row["n"] if isinstance(row, dict) else row[0])

    async def reset(self) -> None:
        async with asyncio.timeout(self.timeout_s * 2), self.pool.connection(timeout=self.timeout_s) as conn:
            await conn.execute(f"SELECT setval('{self.SEQUENCE}', 1, false)")
