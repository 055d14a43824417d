"""Request latency over a rolling time window (the dashboard's 1-second alert). No I/O, no clock of its own."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class WindowStats:
    window_s: float
    count: int
    average_s: float | None
    p50_s: float | None
    p95_s: float | None
    max_s: float | None
    threshold_s: float

    @property
    def slow(self) -> bool:
        """Red when the average is above the threshold; an empty window is not slow."""
        return self.average_s is not None and self.average_s > self.threshold_s

    def to_json(self) -> dict[str, object]:
        def ms(v: float | None) -> float | None:
            return None if v is None else round(v * 1000, 1)

        return {
            "window_s": self.window_s,
            "count": self.count,
            "average_ms": ms(self.average_s),
            "p50_ms": ms(self.p50_s),
            "p95_ms": ms(self.p95_s),
            "max_ms": ms(self.max_s),
            "threshold_ms": ms(self.threshold_s),
            "state": "SLOW" if self.slow else "OK",
        }


class RollingWindow:
    """Keeps (finished_at, duration) samples younger than the window: each record drops what has aged out, so what
    is held is one window's worth even when nobody reads the stats. `max_samples` bounds it under extreme load
    (past it the oldest samples go first, which only shortens the window). Samples arrive in finishing order."""

    def __init__(self, window_s: float = 30.0, threshold_s: float = 1.0, max_samples: int = 100_000) -> None:
        self.window_s = window_s
        self.threshold_s = threshold_s
        self._samples: deque[tuple[float, float]] = deque(maxlen=max_samples)
        self._sum = 0.0

    def record(self, finished_at: float, duration_s: float) -> None:
        self._expire(finished_at)
        if len(self._samples) == self._samples.maxlen:
            self._sum -= self._samples[0][1]
        self._samples.append((finished_at, duration_s))
        self._sum += duration_s

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s
        while self._samples and self._samples[0][0] <= horizon:
            self._sum -= self._samples.popleft()[1]
        if not self._samples:
            self._sum = 0.0  # no float drift carried into the next burst

    def __len__(self) -> int:
        return len(self._samples)

    def stats(self, now: float) -> WindowStats:
        self._expire(now)
        count = len(self._samples)
        if count == 0:
            return WindowStats(self.window_s, 0, None, None, None, None, self.threshold_s)
        durations = sorted(d for _, d in self._samples)
        return WindowStats(
            self.window_s,
            count,
            max(self._sum, 0.0) / count,
            _percentile(durations, 0.50),
            _percentile(durations, 0.95),
            durations[-1],
            self.threshold_s,
        )


def _percentile(sorted_values: list[float], q: float) -> float:
    index = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[index]
