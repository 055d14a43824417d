"""The naive design against Valerix on the same seeded workload and faults: anomalies a customer would suffer.

Pure functions over what each run left behind (its orders, the inventory's reservations and stock) and what its
clients were told, so the same yardstick measures both.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from devstack.chaos.invariants import ProductRow, ReservationRow
from devstack.chaos.report import percentile
from devstack.chaos.workload import Observations

FAILED_TO_CUSTOMER = {"failed", "rejected", "cancelled"}


@dataclass(frozen=True)
class RunOrder:
    order_id: str
    key: tuple[str, str] | None  # (customer, Idempotency-Key) of the request that made it
    status: str
    settle_s: float | None  # created → settled, when the run records it


@dataclass
class RunFacts:
    mode: str
    obs: Observations
    orders: list[RunOrder]
    reservations: list[ReservationRow]
    products: list[ProductRow]


@dataclass
class Figures:
    mode: str
    intents: int = 0
    failed_but_taken: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    held_twice: int = 0  # of the duplicates: intents holding stock under more than one order
    stuck_or_lost: list[str] = field(default_factory=list)
    oversold_units: int = 0
    anomalous: set[int] = field(default_factory=set)  # planned-order indexes with any anomaly
    settle_s: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"mode": self.mode, "intents": self.intents, "anomalous_orders": len(self.anomalous),
                "failed_but_stock_taken": len(self.failed_but_taken), "duplicate_orders": len(self.duplicates),
                "duplicates_holding_stock_twice": self.held_twice,
                "stuck_or_lost": len(self.stuck_or_lost), "oversold_units": self.oversold_units,
                "settle_p50_s": _r(percentile(self.settle_s, 50)), "settle_p95_s": _r(percentile(self.settle_s, 95)),
                "settle_max_s": _r(max(self.settle_s) if self.settle_s else None),
                "examples": {"failed_but_taken": self.failed_but_taken[:3], "duplicates": self.duplicates[:3],
                             "stuck_or_lost": self.stuck_or_lost[:3]}}


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def oversold(products: list[ProductRow], reservations: list[ReservationRow]) -> int:
    held: dict[str, int] = defaultdict(int)
    for r in reservations:
        if r.status == "RESERVED":
            for product, qty in r.items.items():
                held[product] += qty
    return sum(max(0, held[p.product_id] - p.received, -p.available) for p in products)


def analyse(facts: RunFacts) -> Figures:
    fig = Figures(facts.mode, intents=len(facts.obs.outcomes))
    by_id = {o.order_id: o for o in facts.orders}
    by_key: dict[tuple[str, str], set[str]] = defaultdict(set)
    for o in facts.orders:
        if o.key is not None:
            by_key[o.key].add(o.order_id)
    reservation = {r.order_id: r for r in facts.reservations}
    for idx, out in sorted(facts.obs.outcomes.items()):
        key = (out.planned.customer_id, out.planned.idem_key)
        ids = by_key[key] | set(facts.obs.client_keys.get(key, []))
        told_order = by_id.get(out.order_id) if out.order_id else None
        told = told_order.status if told_order else ("failed" if not out.order_id else "lost")
        held = sorted(i for i in ids if reservation.get(i) and reservation[i].status == "RESERVED")
        tag = f"#{idx} {out.planned.customer_id}"
        found = 0
        if told in FAILED_TO_CUSTOMER and held:
            fig.failed_but_taken.append(f"{tag}: told {told}, stock held by {', '.join(held)}")
            found += 1
        if len(ids) > 1:
            fig.duplicates.append(f"{tag}: one request, {len(ids)} orders ({len(held)} holding stock)")
            fig.held_twice += len(held) > 1
            found += 1
        stuck = sorted(i for i in ids if i in by_id and by_id[i].status == "pending")
        if told == "lost" or stuck or (told == "confirmed" and out.order_id not in held):
            fig.stuck_or_lost.append(f"{tag}: told {told}; pending {stuck or '-'}")
            found += 1
        if found:
            fig.anomalous.add(idx)
        if out.started_at is not None and out.answered_at is not None:
            extra = told_order.settle_s if (told_order and out.first_status == 202 and told_order.settle_s) else 0.0
            fig.settle_s.append(out.answered_at - out.started_at + extra)
    fig.oversold_units = oversold(facts.products, facts.reservations)
    return fig


def side_by_side(naive: Figures, valerix: Figures) -> str:
    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} s"

    rows = [
        ("planned orders (customer intents)", naive.intents, valerix.intents),
        ('told failed/rejected/cancelled, stock taken', len(naive.failed_but_taken), len(valerix.failed_but_taken)),
        ("duplicate orders on retry", len(naive.duplicates), len(valerix.duplicates)),
        ("  of which holding stock twice or more", naive.held_twice, valerix.held_twice),
        ("oversold units", naive.oversold_units, valerix.oversold_units),
        ("orders stuck or lost", len(naive.stuck_or_lost), len(valerix.stuck_or_lost)),
        ("settle time p50 (request → outcome)", s(percentile(naive.settle_s, 50)), s(percentile(valerix.settle_s, 50))),
        ("settle time p95", s(percentile(naive.settle_s, 95)), s(percentile(valerix.settle_s, 95))),
        ("settle time max", s(max(naive.settle_s) if naive.settle_s else None),
         s(max(valerix.settle_s) if valerix.settle_s else None)),
        ("orders with any anomaly", len(naive.anomalous), len(valerix.anomalous)),
    ]
    lines = [f"  {'':40s} {'naive':>10} {'valerix':>10}"]
    lines += [f"  {label:40s} {a!s:>10} {b!s:>10}" for label, a, b in rows]
    for fig in (naive, valerix):
        for name, examples in (("failed but taken", fig.failed_but_taken), ("duplicate", fig.duplicates),
                               ("stuck or lost", fig.stuck_or_lost)):
            lines += [f"  {fig.mode} e.g. {name}: {e}" for e in examples[:2]]
    return "\n".join(lines)
