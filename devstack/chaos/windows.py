"""Answer times of `POST /orders` per fault window: requests started during each fault, and outside any."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devstack.chaos.report import percentile


@dataclass(frozen=True)
class WindowStats:
    label: str
    count: int
    p50_s: float | None
    p95_s: float | None
    p99_s: float | None
    max_s: float | None

    def to_json(self) -> dict[str, Any]:
        ms = {k: None if v is None else round(v * 1000, 1)
              for k, v in (("p50_ms", self.p50_s), ("p95_ms", self.p95_s), ("p99_ms", self.p99_s),
                           ("max_ms", self.max_s))}
        return {"window": self.label, "count": self.count, **ms}


def by_fault_window(calls: list[tuple[float, float]], faults: list[dict[str, Any]],
                    started: float) -> list[WindowStats]:
    """`calls` are (monotonic start, seconds); `faults` carry at_s/duration_s since `started`. A request belongs
    to the first fault window its start falls in, else to "no fault"."""
    windows = [(f"{f['kind']} @+{f['at_s']:.1f}s ({f['duration_s']:.1f}s)", f["at_s"], f["at_s"] + f["duration_s"])
               for f in faults]
    buckets: dict[str, list[float]] = {label: [] for label, _, _ in windows}
    outside: list[float] = []
    for start, seconds in calls:
        at = start - started
        label = next((w for w, lo, hi in windows if lo <= at <= hi), None)
        (buckets[label] if label is not None else outside).append(seconds)
    rows = [("no fault", outside), *((label, buckets[label]) for label, _, _ in windows)]
    return [WindowStats(label, len(v), percentile(v, 50), percentile(v, 95), percentile(v, 99),
                        max(v) if v else None) for label, v in rows]


def window_table(rows: list[WindowStats]) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v * 1000:.0f} ms"

    lines = ["POST /orders answer time by fault window (requests started in it):",
             f"  {'window':40s} {'n':>5} {'p50':>9} {'p95':>9} {'p99':>9} {'max':>9}"]
    lines += [f"  {r.label:40s} {r.count:>5} {ms(r.p50_s):>9} {ms(r.p95_s):>9} {ms(r.p99_s):>9} {ms(r.max_s):>9}"
              for r in rows]
    return "\n".join(lines)
