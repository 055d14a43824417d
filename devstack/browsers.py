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
from pathlib import Path

from devstack.apt import apt_install

CHROMIUM = Path(os.environ.get("VALERIX_CHROMIUM", "/usr/bin/chromium"))
APT_TIMEOUT_S = 900


def chromium_path() -> Path | None:
    """The Chromium executable the tests use, or None."""
    return CHROMIUM if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK) else None


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


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
    if not apt_install("chromium", APT_TIMEOUT_S):
        return 1
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
