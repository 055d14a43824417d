"""When the current HTTP request arrived: stamped by the outermost wrapper every guarded HTTP function runs in
(before authentication, body parsing and the rate limiter), so the checkout's deadline counts the whole answer."""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import azure.functions as func

Handler = Callable[..., Awaitable[func.HttpResponse]]

_arrived_at: contextvars.ContextVar[float | None] = contextvars.ContextVar("valerix_arrived_at", default=None)


def stamped_on_arrival(handler: Handler) -> Handler:
    """The handler, with the moment its request arrived readable through `arrived_at()` while it runs."""

    @functools.wraps(handler)
    async def stamped(req: func.HttpRequest, *args: Any, **kwargs: Any) -> func.HttpResponse:
        token = _arrived_at.set(time.monotonic())
        try:
            return await handler(req, *args, **kwargs)
        finally:
            _arrived_at.reset(token)

    return stamped


def arrived_at() -> float:
    """The monotonic time the current request arrived (now, outside a stamped request)."""
    stamped = _arrived_at.get()
    return time.monotonic() if stamped is None else stamped
