"""Calling a user function as the Python worker does, and the host's failure line."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

log = logging.getLogger("devstack.functions_host")


async def invoke(user_function: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """As the Python worker: await coroutine functions, run plain functions in the thread pool."""
    if inspect.iscoroutinefunction(user_function):
        return await user_function(**kwargs)
    result = await asyncio.to_thread(user_function, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


def elapsed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def log_failed(name: str, invocation_id: str, started: float, exc: BaseException, context: str = "") -> None:
    """The host's failure line, with the traceback (the exception is not swallowed: it is the invocation's result)."""
    log.error(
        "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms)%s\n%s",
        name,
        invocation_id,
        elapsed_ms(started),
        context,
        "".join(traceback.format_exception(exc)),
    )


def log_succeeded(name: str, invocation_id: str, started: float, context: str = "", level: int = logging.INFO) -> None:
    log.log(level, "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)%s", name, invocation_id,
            elapsed_ms(started), context)
