"""`make package`: the function app's deployment zip, built the way Flex Consumption's remote build would, then proved.

    python -m devstack.package build     # -> .artifacts/package/valerix-functions.zip

1. the app's files: the repository minus `.funcignore` (gitignore syntax, as Core Tools applies it);
2. a clean venv with `pip install -r requirements.txt` (what the remote build runs), then `pip check`;
3. the zip: the files plus that venv's site-packages under `.python_packages/lib/site-packages`, where the Python
   worker looks for dependencies (a zip deployable as is with `--build-remote false`: built on CPython 3.11 on
   Linux x86-64, as Azure runs it);
4. the proof: unpack it, import `function_app` in a fresh interpreter that sees only the unpacked tree (no site
   packages, no repository), call `app.get_functions()` once, and compare the indexed functions with every function
   the code declares with a trigger decorator.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pathspec

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".artifacts" / "package"
ZIP_NAME = "valerix-functions.zip"
SITE_PACKAGES = ".python_packages/lib/site-packages"
REQUIRED_AT_ROOT = ("function_app.py", "host.json", "requirements.txt")
NEVER_SHIPPED = (".venv", ".data", ".git", "tests", "devstack", "infra", "inventory_service", "local.settings.json")

_INDEX = """
import json, function_app
functions = function_app.app.get_functions()  # once: it validates, and a second call on one app raises
print(json.dumps({f.get_function_name(): f.get_trigger().get_binding_name() for f in functions}))
"""


def funcignore(root: Path = ROOT) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines((root / ".funcignore").read_text(encoding="utf-8").splitlines())


def app_files(root: Path = ROOT) -> list[str]:
    """Repository-relative POSIX paths of every file that ships, after `.funcignore`."""
    spec = funcignore(root)
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        rel = Path(folder).relative_to(root)
        dirs[:] = sorted(d for d in dirs if not spec.match_file(f"{(rel / d).as_posix()}/"))
        found.extend((rel / f).as_posix() for f in sorted(files) if not spec.match_file((rel / f).as_posix()))
    return found


def declared_functions(root: Path = ROOT) -> set[str]:
    """Functions the code declares: decorated with `<blueprint>.route(...)` or `<blueprint>.<something>_trigger(...)`
    (a `function_name(...)` decorator renames one, as it does for the host)."""
    names: set[str] = set()
    for path in sorted((root / "order_functions").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            decorators = {_decorator_name(d): d for d in node.decorator_list}
            if not any(n == "route" or n.endswith("_trigger") for n in decorators):
                continue
            renamed = decorators.get("function_name")
            if isinstance(renamed, ast.Call) and renamed.args and isinstance(renamed.args[0], ast.Constant):
                names.add(str(renamed.args[0].value))
            else:
                names.add(node.name)
    return names


def _decorator_name(node: ast.expr) -> str:
    target = node.func if isinstance(node, ast.Call) else node
    return target.attr if isinstance(target, ast.Attribute) else ""


def _pip(python: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check", *args]
    print("+", " ".join(cmd[3:]), flush=True)
    subprocess.run(cmd, check=True, timeout=900)


def build_venv(venv: Path) -> Path:
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    _pip(python, "install", "--quiet", "-r", str(ROOT / "requirements.txt"))
    _pip(python, "check")
    return python


def _site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True, timeout=60)
    return Path(out.stdout.strip())


def _walk(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            yield path


def write_zip(target: Path, files: list[str], site_packages: Path) -> int:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for rel in files:
            archive.write(ROOT / rel, rel)
        for path in _walk(site_packages):
            archive.write(path, f"{SITE_PACKAGES}/{path.relative_to(site_packages).as_posix()}")
        return len(archive.namelist())


def check_zip(target: Path) -> None:
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
    missing = [name for name in REQUIRED_AT_ROOT if name not in names]
    shipped = sorted({n.split("/", 1)[0] for n in names if n.split("/", 1)[0] in NEVER_SHIPPED})
    if missing or shipped:
        raise SystemExit(f"bad package: missing at the root {missing}, must not ship {shipped}")


def index_unpacked(python: Path, unpacked: Path) -> dict[str, str]:
    """function name -> trigger type, from a fresh interpreter that sees only the unpacked package."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{unpacked}:{unpacked / SITE_PACKAGES}", "PYTHONNOUSERSITE": "1"}
    result = subprocess.run([str(python), "-S", "-c", _INDEX], cwd=unpacked, env=env, capture_output=True, text=True,
                            timeout=120, check=False)
    if result.returncode != 0:
        raise SystemExit(f"importing function_app from the package failed:\n{result.stderr[-4000:]}")
    indexed: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return indexed


def build() -> int:
    started = time.monotonic()
    files = app_files()
    python = build_venv(OUT / "venv")
    target = OUT / ZIP_NAME
    entries = write_zip(target, files, _site_packages(python))
    check_zip(target)
    unpacked = OUT / "unpacked"
    shutil.rmtree(unpacked, ignore_errors=True)
    with zipfile.ZipFile(target) as archive:
        archive.extractall(unpacked)
    indexed = index_unpacked(python, unpacked)
    declared = declared_functions()
    if set(indexed) != declared:
        raise SystemExit(f"indexed {sorted(indexed)} but the code declares {sorted(declared)}: "
                         f"not indexed {sorted(declared - set(indexed))}, unexpected {sorted(set(indexed) - declared)}")
    for name, trigger in sorted(indexed.items()):
        print(f"  indexed {name:<20} {trigger}")
    size_mb = target.stat().st_size / 1e6
    print(f"{target.relative_to(ROOT)}: {size_mb:.1f} MB, {entries} entries ({len(files)} app files), "
          f"{len(indexed)} functions indexed = declared, in {time.monotonic() - started:.0f}s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.package", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "files"])
    args = parser.parse_args(argv)
    if args.command == "files":
        print("\n".join(app_files()))
        return 0
    return build()


if __name__ == "__main__":
    raise SystemExit(main())
