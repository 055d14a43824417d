"""A fresh local-bus database per use, on the session's embedded PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from valerix_common.embedded_pg import EmbeddedPostgres


def new_bus_db(pg_server: EmbeddedPostgres | None) -> str:
    if pg_server is None:
        pytest.skip("local bus tests need the embedded PostgreSQL server")
    return pg_server.create_database(f"localbus_test_{uuid.uuid4().hex[:8]}", "localbus_svc")
