"""When the current HTTP request arrived: stamped by the outermost wrapper every HTTP function runs in (before
authentication, body parsing and the rate limiter), so the checkout's deadline counts the whole answer."""

from __future__ import annotations

import contextvars
import time

_arrived_at: contextvars.ContextVar[float | None] = contextvars.ContextVar("valerix_arrived_at", default=None)


def mark_arrival() -> contextvars.Token[float | None]:
    """Stamps now as the arrival of the request being handled; reset with the token when it is answered."""
    return _arrived_at.set(time.monotonic())


def end_of_request(token: contextvars.Token[float | None]) -> None:
    _arrived_at.reset(token)


def arrived_at() -> float:
    """The monotonic time the current request arrived (now, outside a stamped request)."""
    stamped = _arrived_at.get()
    return time.monotonic() if stamped is None else stamped
