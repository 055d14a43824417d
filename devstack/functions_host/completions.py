"""Completing a queue's messages in batches, as the host's message pump settles them.

A completion requested while a batch is on its way joins the next one, so under load many messages settle with
one statement (and one commit of the local bus), and a lone message is settled at once: nothing waits for a
timer. Each caller still learns its own message's fate."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from order_functions.infrastructure.local_queue import LocalQueue


class CompletionBatcher:
    def __init__(self, queue: LocalQueue) -> None:
        self.queue = queue
        self._waiting: dict[str, asyncio.Future[bool]] = {}
        self._task: asyncio.Task[None] | None = None

    async def complete(self, lock_token: str) -> bool:
        """True when the message was completed, False when its lock was lost; raises when settling failed."""
        future = self._waiting.get(lock_token)
        if future is None:
            future = self._waiting[lock_token] = asyncio.get_running_loop().create_future()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain(), name=f"complete:{self.queue.queue_name}")
        return await asyncio.shield(future)  # a cancelled caller leaves the batch (and the others') intact

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            try:
                done = await self.queue.complete_many(list(batch))
            except Exception as exc:
                for future in batch.values():
                    future.set_exception(exc)
                    future.exception()  # retrieved here: a caller that was cancelled meanwhile never reads it
                continue
            for token, future in batch.items():
                future.set_result(token in done)
