"""PgBouncer's start-up is retried when the binary dies of a signal before it listens (Debian's 1.18 was seen to
die of SIGSEGV at start-up during a loaded `make test`). The real binary, behind a wrapper that crashes the first
start; any other exit is not retried."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import pgbouncer as pgb
from tests import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Under .data, like the other PgBouncer tests: the user it runs as (when we are root) can reach it."""
    path = REPO_ROOT / ".data" / f"pgbouncer-start-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def wrapper(tmp_path: Path, first_run: str) -> Path:
    real = pgb.pgbouncer_path()
    if real is None:
        pytest.skip("pgbouncer is not installed (make test installs it)")
    script = tmp_path / "bin" / "pgbouncer"
    script.parent.mkdir()
    script.write_text(
        "#!/bin/sh\n"
        'marker="$(dirname "$0")/started-once"\n'
        f'if [ ! -e "$marker" ]; then touch "$marker"; {first_run}; fi\n'
        f'exec {real} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    if os.geteuid() == 0:  # pgbouncer runs as the embedded PostgreSQL user: let it write the marker
        user = pwd.getpwnam(pgb.RUN_AS_WHEN_ROOT)
        for path in (tmp_path, script.parent, script):
            os.chown(path, user.pw_uid, user.pw_gid)
    return script


def test_a_start_killed_by_a_signal_is_tried_again(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = wrapper(workdir, "kill -SEGV $$")
    monkeypatch.setattr(pgb, "pgbouncer_path", lambda: script)
    bouncer = pgb.PgBouncer(workdir / "work", server_port=1, users=("nobody",)).start()
    try:
        assert (script.parent / "started-once").exists()  # the first start did crash
        socket.create_connection(("127.0.0.1", bouncer.port), timeout=2).close()
    finally:
        bouncer.stop()


def test_a_start_that_exits_on_its_own_is_not_retried(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = wrapper(workdir, "exit 3")
    monkeypatch.setattr(pgb, "pgbouncer_path", lambda: script)
    with pytest.raises(RuntimeError, match="exited with 3") as failed:
        pgb.PgBouncer(workdir / "work", server_port=1, users=("nobody",)).start()
    assert not isinstance(failed.value, pgb.PgBouncerCrashed)
