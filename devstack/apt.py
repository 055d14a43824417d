"""Installs a Debian package for the test tooling, retrying so a registry hiccup does not fail a whole CI run."""

from __future__ import annotations

import os
import subprocess
import sys
import time

APT_ATTEMPTS = 3


def _run(command: list[str], timeout_s: float) -> int:
    print("+", " ".join(command), flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        return subprocess.run(command, env=env, timeout=timeout_s, check=False).returncode
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"{command[0]} failed: {exc}", file=sys.stderr)
        return 1


def apt_install(package: str, timeout_s: float) -> bool:
    """`apt-get update` + `install` of one package, up to APT_ATTEMPTS times with a growing pause."""
    for attempt in range(1, APT_ATTEMPTS + 1):
        if _run(["apt-get", "update"], timeout_s) == 0 and _run(
            ["apt-get", "install", "-y", "--no-install-recommends", package], timeout_s
        ) == 0:
            return True
        print(f"apt-get attempt {attempt}/{APT_ATTEMPTS} failed", file=sys.stderr)
        if attempt < APT_ATTEMPTS:
            time.sleep(10 * attempt)
    return False
