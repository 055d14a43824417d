"""The committed stubs must be exactly what grpcio-tools makes of protos/inventory.proto."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests import REPO_ROOT

ROOT = REPO_ROOT
GENERATED = ["inventory_pb2.py", "inventory_pb2.pyi", "inventory_pb2_grpc.py", "inventory_pb2_grpc.pyi"]


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    (tmp_path / "protos").mkdir()
    shutil.copy(ROOT / "protos" / "inventory.proto", tmp_path / "protos" / "inventory.proto")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I.", "--python_out=.", "--grpc_python_out=.",
         "--mypy_out=.", "--mypy_grpc_out=.", "protos/inventory.proto"],
        cwd=tmp_path, env=env, check=True, capture_output=True,
    )
    for name in GENERATED:
        fresh = (tmp_path / "protos" / name).read_text()
        committed = (ROOT / "protos" / name).read_text()
        assert fresh == committed, f"protos/{name} drifted from inventory.proto: run `make proto`"
