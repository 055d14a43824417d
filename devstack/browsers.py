"""Makes a headless browser available for the dashboard's end-to-end tests, from Debian's own packages.

    python -m devstack.browsers ensure   # install Debian chromium when /usr/bin/chromium is missing (root only)
    python -m devstack.browsers path     # print the executable, exit 1 when there is none

Playwright is used with the system executable only; it never downloads a browser of its own.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CHROMIUM = Path(os.environ.get("VALERIX_CHROMIUM", "/usr/bin/chromium"))
APT_TIMEOUT_S = 900
APT_ATTEMPTS = 3


def chromium_path() -> Path | None:
    """The Chromium executable the tests use, or None."""
    return CHROMIUM if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK) else None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _run(command: list[str]) -> int:
    print("+", " ".join(command), flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        return subprocess.run(command, env=env, timeout=APT_TIMEOUT_S, check=False).returncode
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"{command[0]} failed: {exc}", file=sys.stderr)
        return 1


def ensure() -> int:
    found = chromium_path()
    if found is not None:
        print(f"chromium already available: {found}")
        return 0
    if not _is_root():
        print(f"{CHROMIUM} is missing and this is not root: install it with `sudo apt-get install -y chromium`",
              file=sys.stderr)
        return 2
    if shutil.which("apt-get") is None:
        print(f"{CHROMIUM} is missing and apt-get is not available on this system", file=sys.stderr)
        return 2
    print(f"{CHROMIUM} is missing: installing Debian's chromium package")
    for attempt in range(1, APT_ATTEMPTS + 1):  # a registry hiccup should not fail a whole CI run
        if _run(["apt-get", "update"]) == 0 and _run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
        ) == 0:
            break
        print(f"apt-get attempt {attempt}/{APT_ATTEMPTS} failed", file=sys.stderr)
        if attempt == APT_ATTEMPTS:
            return 1
        time.sleep(10 * attempt)
    found = chromium_path()
    if found is None:
        print(f"chromium was installed but {CHROMIUM} is still missing", file=sys.stderr)
        return 1
    version = subprocess.run([str(found), "--version"], capture_output=True, text=True, timeout=30, check=False)
    print(f"installed: {found} ({version.stdout.strip() or 'version unknown'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.browsers", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["ensure", "path"])
    args = parser.parse_args(argv)
    if args.command == "path":
        found = chromium_path()
        if found is None:
            print(f"no chromium at {CHROMIUM}", file=sys.stderr)
            return 1
        print(found)
        return 0
    return ensure()


if __name__ == "__main__":
    sys.exit(main())
