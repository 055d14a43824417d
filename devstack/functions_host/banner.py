"""The function list `make up` prints, read from the app's own metadata (as `func start` lists what it indexed), so a
new function shows up without anyone editing a list."""

from __future__ import annotations

from collections.abc import Mapping

from devstack.functions_host.metadata import read_functions
from devstack.functions_host.settings import ROOT, HostConfig

NOTES = {  # what a newcomer needs next to a route
    "latency_stats": "(rolling 30 s; the dashboard's 1 s alert)",
    "admin_chaos": "(ops role; ADMIN_API_ENABLED=true)",
    "ship_order": "(ops role)",
}


def function_lines(base: str, env: Mapping[str, str] | None = None, skip: tuple[str, ...] = ()) -> list[str]:
    """One line per function (but those named in `skip`): HTTP routes with their methods and URL, then bus and
    timer triggers."""
    from order_functions.interface.app import build_app

    functions = read_functions(build_app(), HostConfig.from_host_json(ROOT / "host.json"), env)
    lines = []
    for fn in sorted((f for f in functions.http if f.name not in skip), key=lambda f: f.route.template):
        methods = "|".join(sorted(fn.methods)) if fn.methods else "ANY"
        path = fn.route.template.removeprefix("api").lstrip("/")
        lines.append(f"{fn.name + ':':<24}{methods:<9}{base}/{path} {NOTES.get(fn.name, '')}".rstrip())
    lines += [f"{fn.name + ':':<24}serviceBusTrigger (local bus '{fn.queue_name}')" for fn in functions.queues]
    # no schedule here: it is read from the environment when the app is imported, and the Functions host's
    # environment is not this process's
    lines += [f"{fn.name + ':':<24}timerTrigger" for fn in functions.timers]
    return lines
