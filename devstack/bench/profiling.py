"""Sampling profiles of the running services with py-spy, summarised into what the CPU was spent on.

py-spy (``pip install py-spy``) attaches to a PID from outside, so the services run exactly as in the measured
steps. Idle samples (the event loop waiting in epoll) are left out, so every sample is CPU time. The summary gives
the share of samples per *bucket* (a stack counts for a bucket if any frame is in it: logging, JSON, psycopg,
gRPC, aiohttp, azure.functions, ...), the top functions by self time, and the project's own functions by
inclusive time; the raw collapsed stacks are kept beside the JSON for a flame graph (e.g. speedscope.app).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent

# (bucket, pattern on a frame's file path); a sample counts once per bucket however many frames match. (No aiohttp
# bucket: every request handler runs under aiohttp's frames, so "any frame in aiohttp" would say nothing.)
BUCKETS: tuple[tuple[str, str], ...] = (
    ("logging", r"/logging/"),
    ("json", r"/json/"),
    ("psycopg (driver + pool)", r"/site-packages/psycopg(_pool|_binary)?/"),
    ("grpc", r"/site-packages/grpc/"),
    ("protobuf", r"/site-packages/google/protobuf/"),
    ("azure.functions", r"/site-packages/azure/functions/"),
    ("opentelemetry", r"/site-packages/opentelemetry/"),
    ("uuid", r"/uuid\.py$"),
    ("traceback", r"/traceback\.py$"),
)

# Glue: a sample whose innermost frames are here is attributed to the first caller outside it
_GLUE = {"stdlib:asyncio", "stdlib:selectors", "stdlib:threading", "stdlib:contextlib", "stdlib:functools",
         "stdlib:weakref", "stdlib:typing", "stdlib:abc", "stdlib:_weakrefset"}
_BASE_FRAMES = {"BaseEventLoop._run_once", "Thread.run"}
_LIBRARIES = {
    "psycopg": "psycopg", "psycopg_pool": "psycopg", "psycopg_binary": "psycopg",
    "grpc": "grpc", "google": "protobuf",
    "aiohttp": "aiohttp", "multidict": "aiohttp", "yarl": "aiohttp",
    "azure.functions": "azure.functions", "opentelemetry": "opentelemetry",
}

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True)
class Frame:
    function: str
    file: str
    line: int

    @property
    def label(self) -> str:
        return f"{self.function} ({short_path(self.file)}:{self.line})"

    @property
    def package(self) -> str:
        return package_of(self.file)


def short_path(file: str) -> str:
    for marker in ("/site-packages/", "/lib/python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    root = str(ROOT) + "/"
    return file[len(root):] if file.startswith(root) else file


def package_of(file: str) -> str:
    if "/site-packages/" in file:
        rest = file.split("/site-packages/", 1)[1]
        parts = rest.split("/")
        if parts[0] == "azure" and len(parts) > 1:
            return f"azure.{parts[1]}"
        return parts[0].removesuffix(".py")
    if "/lib/python3." in file:
        rest = re.split(r"/lib/python3\.\d+/", file, maxsplit=1)[1]
        return "stdlib:" + rest.split("/")[0].removesuffix(".py")
    root = str(ROOT) + "/"
    if file.startswith(root):
        return "project:" + file[len(root):].split("/")[0].removesuffix(".py")
    return file or "?"


def parse_frame(text: str) -> Frame:
    match = _FRAME.match(text)
    if not match:
        return Frame(text, "", 0)
    return Frame(match["func"], match["file"], int(match["line"] or 0))


def parse_collapsed(text: str) -> list[tuple[list[Frame], int]]:
    """py-spy ``--format raw``: one ``frame;frame;...;frame count`` line per distinct stack (root first)."""
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [parse_frame(part) for part in stack.split(";")]
        stacks.append(([f for f in frames if f.file], int(count)))
    return stacks


def attribute(frames: list[Frame]) -> str:
    """Who did the work in one sample: the innermost frame outside event-loop glue, named by its library
    (``psycopg``, ``grpc``, ``aiohttp``, ``logging``, ``json``, ``app:order_functions`` ...). A sample entirely in
    glue is the event loop itself (including C callbacks such as grpc's Cython code and C task steps), or a thread
    running a C target (grpc's completion-queue poller)."""
    base = max((i for i, f in enumerate(frames) if f.function in _BASE_FRAMES), default=-1)
    below = frames[base + 1 :]  # the callback the loop (or thread) is running, without the process's entry frames
    for frame in reversed(below):
        package = frame.package
        if package in _GLUE:
            continue
        if package.startswith("project:"):
            return "app:" + package.removeprefix("project:")
        if package.startswith("stdlib:"):
            return package.removeprefix("stdlib:")
        return _LIBRARIES.get(package, package)
    if base >= 0 and frames[base].function == "Thread.run":
        return "thread running C code (grpc poller)"
    return "event loop (asyncio, selectors, C callbacks)"


def summarise(text: str, top: int = 15) -> dict[str, Any]:
    stacks = parse_collapsed(text)
    total = sum(count for _, count in stacks)
    buckets: Counter[str] = Counter()
    attributed: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    self_package: Counter[str] = Counter()
    project_inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        if not frames:
            continue
        files = [f.file for f in frames]
        for name, pattern in BUCKETS:
            if any(re.search(pattern, file) for file in files):
                buckets[name] += count
        attributed[attribute(frames)] += count
        leaf = frames[-1]
        self_time[leaf.label] += count
        self_package[leaf.package] += count
        seen = set()
        for frame in frames:
            name = f"{frame.function} ({short_path(frame.file)})"
            if frame.package.startswith("project:") and name not in seen and not frame.function.startswith(
                ("<module>", "main", "serve")
            ):
                seen.add(name)
                project_inclusive[name] += count

    def share(counter: Counter[str], limit: int) -> list[dict[str, Any]]:
        return [
            {"name": name, "samples": n, "share": round(n / total, 4) if total else 0.0}
            for name, n in counter.most_common(limit)
        ]

    return {
        "samples": total,
        "attributed": share(attributed, 30),
        "buckets": share(buckets, len(BUCKETS)),
        "self_by_package": share(self_package, top),
        "self_top": share(self_time, top),
        "project_inclusive_top": share(project_inclusive, top),
    }


def find_py_spy(explicit: str | None) -> str | None:
    if explicit:
        return explicit if Path(explicit).exists() else shutil.which(explicit)
    return shutil.which("py-spy")


async def record(
    py_spy: str, targets: dict[str, int], duration_s: float, out_dir: Path, rate: int = 100
) -> dict[str, dict[str, Any]]:
    """Records every target PID at once for `duration_s`; returns a summary per target (raw stacks kept)."""
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    seconds = max(1, round(duration_s))
    procs: dict[str, tuple[asyncio.subprocess.Process, Path]] = {}
    for name, pid in targets.items():
        raw = out_dir / f"{name}.collapsed.txt"
        procs[name] = (
            await asyncio.create_subprocess_exec(
                py_spy, "record", "-p", str(pid), "-d", str(seconds), "-r", str(rate), "-f", "raw",
                "-o", str(raw), "--nonblocking", "--full-filenames",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            ),
            raw,
        )  # fmt: skip
    results: dict[str, dict[str, Any]] = {}
    for name, (proc, raw) in procs.items():
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=seconds + 60)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            results[name] = {"error": "py-spy did not finish"}
            continue
        if proc.returncode != 0 or not raw.exists():
            results[name] = {"error": out.decode(errors="replace")[-1500:]}
            continue
        summary = summarise(raw.read_text())
        summary["rate_hz"] = rate
        summary["duration_s"] = seconds
        summary["cpu_share_of_one_core"] = round(summary["samples"] / (rate * seconds), 3)
        summary["collapsed_stacks"] = str(raw)
        results[name] = summary
    return results


def render(results: dict[str, dict[str, Any]], top: int = 10) -> str:
    lines: list[str] = []
    for name, summary in results.items():
        if "error" in summary:
            lines.append(f"  {name}: profile failed: {summary['error']}")
            continue
        per_order = summary.get("cpu_us_per_order")

        def us(row: dict[str, Any], per_order: float | None = per_order) -> str:
            return f"{row['share'] * per_order:7.0f} µs/order" if per_order else ""

        lines.append(
            f"  {name}: {summary['samples']} CPU samples at {summary['rate_hz']} Hz over {summary['duration_s']} s"
            f" (≈{summary['cpu_share_of_one_core']:.2f} of one core busy in Python threads)"
            + (f"; the process spent {per_order:.0f} µs of CPU per order (all threads)" if per_order else "")
        )
        lines.append("    who did the work (innermost frame outside event-loop glue; sums to 100%):")
        for row in summary["attributed"][:top + 5]:
            lines.append(f"      {row['share'] * 100:5.1f}% {us(row)}  {row['name']}")
        lines.append("    inclusive buckets (a sample counts if any frame is in the bucket):")
        for row in summary["buckets"]:
            lines.append(f"      {row['share'] * 100:5.1f}% {us(row)}  {row['name']}")
        lines.append("    self time by package:")
        for row in summary["self_by_package"][:top]:
            lines.append(f"      {row['share'] * 100:5.1f}%  {row['name']}")
        lines.append("    top functions by self time:")
        for row in summary["self_top"][:top]:
            lines.append(f"      {row['share'] * 100:5.1f}%  {row['name']}")
        lines.append("    project functions by inclusive time:")
        for row in summary["project_inclusive_top"][:top]:
            lines.append(f"      {row['share'] * 100:5.1f}% {us(row)}  {row['name']}")
    return "\n".join(lines)
