"""The end-of-run report: text summary, JSON artefact, and the CI slow-path table."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.chaos.invariants import InvariantResult


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"


@dataclass
class SlowPathRow:
    order_id: str
    client_status: int
    client_latency_s: float
    final_status: str
    settled_via: str
    settle_s: float | None


@dataclass
class Report:
    seed: int
    profile: str
    settings: dict[str, Any]
    timings_s: dict[str, float]
    orders_by_state: dict[str, int]
    http_status: dict[str, int]
    post_latencies_s: list[float]
    settle_after_202_s: list[float]
    queue_stats: dict[str, int]
    dead_letters: list[dict[str, Any]]
    faults: list[dict[str, Any]]
    inventory_restarts: int
    inventory_exit_codes: list[int]
    invariants: list[InvariantResult]
    slow_path: list[SlowPathRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fault_windows: list[dict[str, Any]] = field(default_factory=list)  # POST /orders answer times per window

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.invariants)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "profile": self.profile,
            "ok": self.ok,
            "settings": self.settings,
            "timings_s": {k: round(v, 2) for k, v in self.timings_s.items()},
            "orders_by_state": self.orders_by_state,
            "http_status": dict(sorted(self.http_status.items())),
            "client_latency_ms": {
                "count": len(self.post_latencies_s),
                "p50": _round_ms(percentile(self.post_latencies_s, 50)),
                "p99": _round_ms(percentile(self.post_latencies_s, 99)),
            },
            "settle_after_202_ms": {
                "count": len(self.settle_after_202_s),
                "p50": _round_ms(percentile(self.settle_after_202_s, 50)),
                "p99": _round_ms(percentile(self.settle_after_202_s, 99)),
                "max": _round_ms(max(self.settle_after_202_s) if self.settle_after_202_s else None),
            },
            "queue": self.queue_stats,
            "dead_letters": [
                {k: (str(v) if k.endswith("_utc") else v) for k, v in d.items() if k != "application_properties"}
                for d in self.dead_letters
            ],
            "faults": self.faults,
            "faults_by_kind": dict(Counter(f["kind"] for f in self.faults)),
            "inventory": {"restarts": self.inventory_restarts, "exit_codes": self.inventory_exit_codes},
            "invariants": [r.to_json() for r in self.invariants],
            "slow_path": [vars(r) for r in self.slow_path],
            "notes": self.notes,
            "post_orders_by_fault_window": self.fault_windows,
        }

    def summary(self) -> str:
        lines = [
            "",
            f"=== chaos report: seed {self.seed}, profile {self.profile} — {'PASS' if self.ok else 'FAIL'} ===",
            "timings:        " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings_s.items()),
            "orders:         " + ", ".join(f"{k} {v}" for k, v in sorted(self.orders_by_state.items())),
            "http:           " + ", ".join(f"{k}: {v}" for k, v in sorted(self.http_status.items())),
            f"client latency: POST /orders p50 {_ms(percentile(self.post_latencies_s, 50))}, "
            f"p99 {_ms(percentile(self.post_latencies_s, 99))} (n={len(self.post_latencies_s)})",
            f"202 → settled:  p50 {_ms(percentile(self.settle_after_202_s, 50))}, "
            f"p99 {_ms(percentile(self.settle_after_202_s, 99))}, "
            f"max {_ms(max(self.settle_after_202_s) if self.settle_after_202_s else None)} "
            f"(n={len(self.settle_after_202_s)})",
            "verify queue:   " + ", ".join(f"{k} {v}" for k, v in self.queue_stats.items())
            + " (active includes locked messages)",
            f"dead letters:   {len(self.dead_letters)}"
            + "".join(f"\n                {d['message_id']} {d['reason']} after {d['delivery_count']} deliveries"
                      for d in self.dead_letters[:5]),
            "faults:         " + (", ".join(f"{k} x{v}" for k, v in Counter(f["kind"] for f in self.faults).items())
                                  or "none"),
            f"inventory:      {self.inventory_restarts} restarts, exit codes {self.inventory_exit_codes}",
            *[f"note:           {n}" for n in self.notes],
            "invariants:",
        ]
        for r in self.invariants:
            lines.append(f"  {'PASS' if r.ok else 'FAIL'}  {r.name:34s} checked {r.checked}"
                         + ("" if r.ok else f", {r.violation_count} violation(s)"))
            lines.extend(f"        e.g. {v}" for v in r.violations)
        return "\n".join(lines)

    def slow_path_table(self) -> str:
        head = [
            f"### Slow path (answered 202) — seed {self.seed}, {len(self.slow_path)} orders",
            "",
            "| order id | client saw | settled as | settled via | 202 → settled |",
            "|---|---|---|---|---|",
        ]
        rows = [
            f"| {r.order_id} | {r.client_status} in {r.client_latency_s * 1000:.0f} ms | {r.final_status} "
            f"| {r.settled_via} | {'-' if r.settle_s is None else f'{r.settle_s:.1f} s'} |"
            for r in self.slow_path
        ]
        return "\n".join(head + rows) + "\n"

    def write(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / f"report-{self.seed}.json"]
        paths[0].write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
        if self.profile == "ci":
            md = directory / f"slow-path-{self.seed}.md"
            md.write_text(self.slow_path_table())
            paths.append(md)
        return paths


def _round_ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 1)
