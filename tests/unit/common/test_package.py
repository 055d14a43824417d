"""What `make package` ships (the repository minus .funcignore) and how it knows every declared function.
`make package` itself (clean venv, zip, import, index) runs in CI after `make test`."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

from devstack.package import NEVER_SHIPPED, REQUIRED_AT_ROOT, _decorator_name, app_files, declared_functions
from order_functions.interface.app import build_app
from tests import REPO_ROOT

ROOT = REPO_ROOT


def test_funcignore_keeps_the_app_and_drops_everything_else() -> None:
    files = set(app_files())
    for required in (*REQUIRED_AT_ROOT, "order_functions/interface/app.py", "protos/inventory_pb2_grpc.py",
                     "valerix_common/db.py", "order_functions/infrastructure/migrations/001_orders.sql",
                     "order_functions/interface/static/index.html"):
        assert required in files, required
    tops = {f.split("/", 1)[0] for f in files}
    assert not tops & set(NEVER_SHIPPED), tops & set(NEVER_SHIPPED)
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc") or f.endswith(".md")]
    assert tops <= {*REQUIRED_AT_ROOT, "order_functions", "protos", "valerix_common"}, tops


def test_funcignore_drops_local_data_even_when_present(tmp_path: Path) -> None:
    (tmp_path / ".funcignore").write_text((ROOT / ".funcignore").read_text())
    for rel in ("function_app.py", ".venv/lib/x.py", ".data/pg/PG_VERSION", "tests/test_x.py",
                "order_functions/__pycache__/a.cpython-311.pyc", "local.settings.json", "order_functions/a.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert app_files(tmp_path) == ["function_app.py", "order_functions/a.py"]


def test_declared_functions_are_what_the_app_indexes() -> None:
    indexed = {f.get_function_name() for f in build_app().get_functions()}
    declared = declared_functions()
    assert declared == indexed
    assert {"create_order", "verify_order", "reconcile_orders", "health"} <= declared


def test_declared_functions_scanner_sees_triggers_and_renames(tmp_path: Path) -> None:
    source = textwrap.dedent("""
        @bp.route(route="a")
        async def plain(req): ...
        @bp.function_name("renamed")
        @bp.service_bus_topic_trigger(arg_name="m", topic_name="t", subscription_name="s", connection="C")
        async def topic_consumer(m): ...
        @other_decorator
        def helper(): ...
    """)
    (tmp_path / "order_functions").mkdir()
    (tmp_path / "order_functions" / "x.py").write_text(source)
    assert declared_functions(tmp_path) == {"plain", "renamed"}
    assert _decorator_name(ast.parse("@a.b\ndef f(): ...").body[0].decorator_list[0]) == "b"  # type: ignore[attr-defined]
