"""Which restore points to keep: pure, so the policy is tested without a database or a clock.

Kept: every point of the last `recent` period (several a day), every point not yet uploaded (nothing leaves this
machine's disk before it is safely off it), the newest point of each of the last `daily` days and the newest of
each of the last `weekly` ISO weeks. The same set, sent with the next upload, tells the service what to keep.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta


@dataclass(frozen=True)
class RetentionPolicy:
    recent: timedelta = timedelta(hours=24)
    daily: int = 7
    weekly: int = 4


def retained(points: Iterable[tuple[str, datetime]], now: datetime, not_uploaded: set[str],
             policy: RetentionPolicy | None = None) -> set[str]:
    policy = policy or RetentionPolicy()
    ordered = sorted(points, key=lambda p: (p[1], p[0]), reverse=True)  # newest first
    keep = {pid for pid, at in ordered if now - at <= policy.recent or pid in not_uploaded}
    days: dict[date, str] = {}
    weeks: dict[tuple[int, int], str] = {}
    for pid, at in ordered:
        days.setdefault(at.date(), pid)
        iso = at.isocalendar()
        weeks.setdefault((iso.year, iso.week), pid)
    keep |= {pid for day, pid in days.items() if (now.date() - day).days < policy.daily}
    keep |= {weeks[w] for w in sorted(weeks, reverse=True)[: policy.weekly]}
    return keep
