"""Six-field NCRONTAB (or TimeSpan) timer schedules, as the Functions host evaluates them (UTC)."""

from __future__ import annotations

from datetime import datetime, timedelta

from croniter import croniter  # type: ignore[import-untyped,unused-ignore]

from devstack.functions_host.settings import FunctionLoadError, parse_timespan


class TimerSchedule:
    """NCRONTAB with six fields (``{second} {minute} {hour} {day} {month} {day-of-week}``), UTC, or a TimeSpan."""

    def __init__(self, expression: str) -> None:
        self.expression = expression.strip()
        self.interval_s: float | None = None
        fields = self.expression.split()
        if len(fields) == 1 and ":" in self.expression:
            self.interval_s = parse_timespan(self.expression, 0.0)
            if self.interval_s <= 0:
                raise FunctionLoadError(f"timer schedule {expression!r}: interval must be positive")
            return
        if len(fields) != 6:
            raise FunctionLoadError(
                f"timer schedule {expression!r}: NCRONTAB needs six fields (seconds first), found {len(fields)}"
            )
        # NCRONTAB requires both day-of-month and day-of-week to match (unlike classic cron's OR).
        if not croniter.is_valid(self.expression, second_at_beginning=True):
            raise FunctionLoadError(f"timer schedule {expression!r} is not a valid NCRONTAB expression")

    def next_after(self, moment: datetime) -> datetime:
        if self.interval_s is not None:
            return moment + timedelta(seconds=self.interval_s)
        it = croniter(self.expression, moment, second_at_beginning=True, day_or=False)
        nxt: datetime = it.get_next(datetime)
        return nxt

