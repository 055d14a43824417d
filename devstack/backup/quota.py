"""At most one call a day to the backup service, remembered across runs.

The attempt is recorded *before* the call: when a call fails half-way we cannot know whether the service counted
it, and a second call the same day could be refused or worse. So an ambiguous failure waits for tomorrow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

DAY = timedelta(hours=24)


@dataclass(frozen=True)
class QuotaDecision:
    allowed: bool
    next_allowed_at: datetime | None


class DailyQuota:
    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path

    def last_call(self) -> datetime | None:
        try:
            raw = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return None
        return datetime.fromisoformat(raw["last_call_at"])

    def decide(self, now: datetime) -> QuotaDecision:
        last = self.last_call()
        if last is None or now - last >= DAY:
            return QuotaDecision(True, None)
        return QuotaDecision(False, last + DAY)

    def record_call(self, now: datetime, note: str = "") -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"last_call_at": now.isoformat(), "note": note}))
        tmp.replace(self.state_path)  # atomic: a crash never leaves a half-written state
