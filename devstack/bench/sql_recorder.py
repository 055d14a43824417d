"""Records the SQL a repository method really sends: every statement with its parameters, and BEGIN/COMMIT/ROLLBACK.

The benchmark's pgbench scripts are generated from these recordings (``sql_scripts``), so the physical limit always
runs the product's own statements in the product's own order, whatever the repositories look like today. A real
pool of real connections (the product's connection settings, `valerix_common.db.connection_kwargs`) with a cursor
and a ``transaction()`` that write down what they are asked to do before they do it.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Self

from psycopg import AsyncConnection, AsyncCursor, AsyncTransaction, sql
from psycopg.abc import Params, Query
from psycopg_pool import AsyncConnectionPool

from valerix_common.db import connection_kwargs


@dataclass(frozen=True)
class Recorded:
    """One round trip: a statement with its parameters, or a transaction command (``params`` is None then)."""

    query: str
    params: Params | None = None

    @property
    def is_command(self) -> bool:
        return self.query in ("BEGIN", "COMMIT", "ROLLBACK")


_journal: contextvars.ContextVar[list[Recorded] | None] = contextvars.ContextVar("bench_sql_journal", default=None)


def _write(entry: Recorded) -> None:
    journal = _journal.get()
    if journal is not None:
        journal.append(entry)


class RecordingCursor(AsyncCursor[Any]):
    async def execute(
        self, query: Query, params: Params | None = None, *, prepare: bool | None = None,
        binary: bool | None = None,
    ) -> Self:
        if isinstance(query, sql.Composable):
            text = query.as_string(self.connection)
        elif isinstance(query, str | bytes):
            text = query.decode() if isinstance(query, bytes) else query
        else:
            raise NotImplementedError("template strings are not recorded for pgbench")
        _write(Recorded(text, params if params is not None else ()))
        return await super().execute(query, params, prepare=prepare, binary=binary)


class RecordingConnection(AsyncConnection[Any]):
    _depth = 0

    @asynccontextmanager
    async def transaction(
        self, savepoint_name: str | None = None, force_rollback: bool = False
    ) -> AsyncIterator[AsyncTransaction]:
        if self._depth:
            raise NotImplementedError("nested transactions (savepoints) are not recorded for pgbench")
        _write(Recorded("BEGIN"))
        self._depth += 1
        try:
            async with super().transaction(savepoint_name, force_rollback) as tx:
                yield tx
        except BaseException:
            _write(Recorded("ROLLBACK"))
            raise
        else:
            _write(Recorded("ROLLBACK" if force_rollback else "COMMIT"))
        finally:
            self._depth -= 1


def recording_pool(conninfo: str) -> AsyncConnectionPool[Any]:
    """An unopened pool like the product's (same connection settings), whose connections record what they send."""
    product_kwargs = connection_kwargs("password")

    def kwargs() -> dict[str, Any]:
        return {**product_kwargs(), "cursor_factory": RecordingCursor}

    return AsyncConnectionPool(
        conninfo, connection_class=RecordingConnection, kwargs=kwargs(), min_size=1, max_size=1, open=False
    )


@asynccontextmanager
async def recording() -> AsyncIterator[list[Recorded]]:
    """Everything the recording connections send inside this block lands in the yielded list."""
    journal: list[Recorded] = []
    token = _journal.set(journal)
    try:
        yield journal
    finally:
        _journal.reset(token)
