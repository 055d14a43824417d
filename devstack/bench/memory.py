"""Memory and CPU of the processes under test, read from /proc (Linux).

Groups: ``functions`` (the Functions host), ``inventory`` (the gRPC service), ``postgres`` (the postmaster and all
its backends, summed) and ``client`` (this process: the load generator). Memory is sampled on a timer: VmRSS, and
every few samples Pss for the postgres sum (the backends share ``shared_buffers``, which their RSS counts once per
backend). VmHWM is each process's own kernel-kept peak. CPU is read at the start and end of every step, so each
result carries the CPU seconds every group spent on it. Sampling runs in this process: its cost is reported.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.supervisor import cancel_task

KIB = 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PSS_EVERY = 8  # samples


def children_of(pid: int) -> list[int]:
    """Direct children of `pid` (all threads' children lists; the postmaster's backends are direct children)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return found
    for task in tasks:
        try:
            found.extend(int(x) for x in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue
    return found


def cpu_times(pid: int) -> tuple[float, float] | None:
    """(own user+system, reaped children's user+system) CPU seconds of `pid` from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text.rpartition(")")[2].split()  # after "pid (comm)": state is fields[0], utime is fields[11]
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / CLOCK_TICKS, (cutime + cstime) / CLOCK_TICKS


def system_time(pid: int) -> float | None:
    """Kernel-mode CPU seconds of `pid` (stime): syscalls, e.g. the loopback socket path of every round trip."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return int(text.rpartition(")")[2].split()[12]) / CLOCK_TICKS


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy so far (all cores, all processes), from /proc/stat."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def _status_kib(pid: int, keys: tuple[str, ...]) -> dict[str, int]:
    """VmRSS / VmHWM (kB) from /proc/<pid>/status; empty when the process is gone."""
    found: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return found
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in keys:
            found[name] = int(rest.split()[0])
    return found


def _pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


@dataclass
class GroupPeak:
    """Peak figures of one group, in MiB."""

    rss_mib: float = 0.0  # max over samples of the summed VmRSS
    pss_mib: float = 0.0  # max over samples of the summed Pss (postgres only: shared memory counted once)
    hwm_mib: float = 0.0  # max VmHWM of any single process in the group (the kernel's own peak)
    processes: int = 0  # max number of processes seen at once

    def to_json(self) -> dict[str, float | int]:
        return {
            "peak_rss_mib": round(self.rss_mib, 1),
            "peak_pss_mib": round(self.pss_mib, 1),
            "max_vmhwm_mib": round(self.hwm_mib, 1),
            "max_processes": self.processes,
        }


@dataclass
class ProcessGroups:
    """The pids to watch; the postgres group is the postmaster plus whatever children it has at each sample."""

    functions_pid: int | None
    inventory_pid: int | None
    postmaster_pid: int | None
    client_pid: int = field(default_factory=os.getpid)

    def pids(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {"client": [self.client_pid]}
        if self.functions_pid:
            groups["functions"] = [self.functions_pid]
        if self.inventory_pid:
            groups["inventory"] = [self.inventory_pid]
        if self.postmaster_pid:
            groups["postgres"] = [self.postmaster_pid, *children_of(self.postmaster_pid)]
        return groups

    def cpu_seconds(self) -> dict[str, float]:
        """Cumulative CPU seconds per group. For postgres, the postmaster's reaped-children times hold the CPU
        of backends that already exited, so backends that come and go within a step are still counted."""
        totals: dict[str, float] = {}
        for group, pids in self.pids().items():
            total = 0.0
            for pid in pids:
                times = cpu_times(pid)
                if times is None:
                    continue
                total += times[0]
                if group == "postgres" and pid == self.postmaster_pid:
                    total += times[1]
            totals[group] = total
        for group, service_pid in (("functions", self.functions_pid), ("inventory", self.inventory_pid)):
            kernel = system_time(service_pid) if service_pid else None
            if kernel is not None:
                totals[f"{group}.kernel"] = kernel  # a part of the group's total, listed apart
        # pgbench runs as our child: its CPU shows up in our reaped-children times once it exits
        client = cpu_times(self.client_pid)
        if client is not None:
            totals["pgbench"] = client[1]
        return totals


class MemorySampler:
    """Samples the groups every `interval_s` while running; peaks are kept per phase (``http``, ``pgbench``)."""

    def __init__(self, groups: ProcessGroups, interval_s: float = 0.5) -> None:
        self.groups = groups
        self.interval_s = interval_s
        self.phase = "idle"
        self.peaks: dict[str, dict[str, GroupPeak]] = {}
        self.samples = 0
        self.sampling_cpu_s = 0.0  # what sampling itself cost (it runs in this process: the client's CPU)
        # (seconds since the series started, MiB) per group while a series is on (the soak): RSS, and for
        # postgres its PSS sum (its RSS sum grows with every backend that touches shared_buffers: no leak)
        self.series: dict[str, list[tuple[float, float]]] | None = None
        self._series_started = 0.0
        self._task: asyncio.Task[None] | None = None

    def start_series(self) -> None:
        self.series = {}
        self._series_started = time.monotonic()

    def stop_series(self) -> dict[str, list[tuple[float, float]]]:
        series, self.series = self.series or {}, None
        return series

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="bench-memory-sampler")

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None
        self.sample()  # a last look, for VmHWM

    async def _run(self, max_duration_s: float = 6 * 3600) -> None:
        until = time.monotonic() + max_duration_s  # bounded even if nobody stops us
        while time.monotonic() < until:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(self.interval_s)

    def sample(self) -> None:
        started = time.thread_time()
        self.samples += 1
        phase_peaks = self.peaks.setdefault(self.phase, {})
        for group, pids in self.groups.pids().items():
            rss = hwm = 0
            alive: list[int] = []
            for pid in pids:
                status = _status_kib(pid, ("VmRSS", "VmHWM"))
                if not status:
                    continue
                alive.append(pid)
                rss += status.get("VmRSS", 0)
                hwm = max(hwm, status.get("VmHWM", 0))
            peak = phase_peaks.setdefault(group, GroupPeak())
            at = round(time.monotonic() - self._series_started, 2)
            if group == "postgres" and self.samples % PSS_EVERY == 1:
                # Pss walks every mapping (shared_buffers in each backend), ~0.3 ms a process: not every sample
                pss = sum(_pss_kib(pid) for pid in alive) / KIB
                peak.pss_mib = max(peak.pss_mib, pss)
                if self.series is not None:
                    self.series.setdefault(group, []).append((at, round(pss, 2)))
            elif group != "postgres" and self.series is not None:
                self.series.setdefault(group, []).append((at, round(rss / KIB, 2)))
            peak.rss_mib = max(peak.rss_mib, rss / KIB)
            peak.hwm_mib = max(peak.hwm_mib, hwm / KIB)
            peak.processes = max(peak.processes, len(alive))
        self.sampling_cpu_s += time.thread_time() - started

    def to_json(self) -> dict[str, Any]:
        return {
            "interval_s": self.interval_s,
            "samples": self.samples,
            "sampling_cpu_s": round(self.sampling_cpu_s, 3),
            "phases": {
                phase: {group: peak.to_json() for group, peak in sorted(groups.items())}
                for phase, groups in sorted(self.peaks.items())
                if phase != "idle"
            },
        }


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {group: round(max(0.0, after.get(group, 0.0) - value), 3) for group, value in before.items()}


def growth(points: list[tuple[float, float]], settle_fraction: float = 0.1) -> dict[str, float]:
    """Start, end, min, max and the least-squares slope (MiB per minute) of a memory series; the slope leaves out
    the first `settle_fraction` of the time (pools and caches filling up), start/end average three samples."""
    if len(points) < 2:
        return {}
    first, last = points[0][0], points[-1][0]
    settled = [p for p in points if p[0] >= first + settle_fraction * (last - first)] or points
    n = len(settled)
    mean_t = sum(t for t, _ in settled) / n
    mean_v = sum(v for _, v in settled) / n
    var = sum((t - mean_t) ** 2 for t, _ in settled)
    slope = sum((t - mean_t) * (v - mean_v) for t, v in settled) / var if var else 0.0
    values = [v for _, v in points]
    return {
        "samples": len(points),
        "seconds": round(last - first, 1),
        "start_mib": round(sum(values[:3]) / len(values[:3]), 1),
        "end_mib": round(sum(values[-3:]) / len(values[-3:]), 1),
        "min_mib": round(min(values), 1),
        "max_mib": round(max(values), 1),
        "slope_mib_per_min": round(slope * 60, 3),
    }
