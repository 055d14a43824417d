"""Tables for the terminal, the JSON artefact, and the comparison with an earlier run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devstack.bench import profiling

GROUPS = ("functions", "inventory", "postgres", "client", "pgbench")


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def _load(step: dict[str, Any] | None) -> str:
    if not step:
        return "-"
    return "/".join(f"{x:.2f}" for x in step["load_before"])


def results_table(result: dict[str, Any]) -> str:
    steps = result["steps"]
    sql = {(s["case"], s["clients"]): s for s in steps if s["kind"] == "pgbench"}
    opts = result["options"]
    lines = [
        "",
        f"Valerix checkout benchmark  {result['started_at']}  label={result.get('label') or '-'}",
        f"{result['machine']['cpus']} CPUs · {opts['duration_s']:g} s per step · {opts['products']} bench products"
        f" · pgbench -M {opts['protocol']}"
        f"{' · Idempotency-Key on every order' if opts.get('idempotency_keys') else ''} · load average at start"
        f" {'/'.join(str(x) for x in result['machine']['load_average_at_start'])}",
        "",
        "HTTP = POST /api/orders over keep-alive (201 confirmed counted); SQL = pgbench"
        f" {'checkout-idempotent.sql' if opts.get('idempotency_keys') else 'checkout.sql'}, the same SQL per order on"
        " the same server;",
        "reserve = pgbench reserve.sql (the reservation transaction alone). ratio = HTTP ÷ SQL at the same clients.",
        "",
        f"{'case':<7}{'clients':>8} | {'HTTP/s':>8}{'p50 ms':>8}{'p99 ms':>9}{'non201':>7}"
        f" | {'SQL/s':>8}{'p50 ms':>8}{'p99 ms':>9} | {'ratio':>6} | {'reserve/s':>9}"
        f" | {'load 1/5/15 (HTTP step)':>24}",
        "-" * 128,
    ]
    seen: set[tuple[str, int]] = set()
    for step in steps:
        key = (step["case"], step["clients"])
        if step["case"] == "reserve" or key in seen:
            continue
        seen.add(key)
        http = next((s for s in steps if s["kind"] == "http" and (s["case"], s["clients"]) == key), None)
        limit = sql.get(key)
        reserve = sql.get(("reserve", step["clients"])) if step["case"] == "random" else None
        non201 = None
        if http:
            non201 = sum(v for k, v in http["statuses"].items() if k != "201") + sum(http["errors"].values())
        ratio = http["rate"] / limit["rate"] if http and limit and limit["rate"] else None
        lines.append(
            f"{step['case']:<7}{step['clients']:>8} | {_fmt(http and http['rate']):>8}"
            f"{_fmt(http and http['p50_ms'], '.2f'):>8}{_fmt(http and http['p99_ms'], '.2f'):>9}"
            f"{_fmt(non201, 'd'):>7}"
            f" | {_fmt(limit and limit['rate']):>8}{_fmt(limit and limit['p50_ms'], '.2f'):>8}"
            f"{_fmt(limit and limit['p99_ms'], '.2f'):>9}"
            f" | {_fmt(ratio, '.2f') + ('×' if ratio is not None else ''):>6}"
            f" | {_fmt(reserve and reserve['rate']):>9} | {_load(http or limit):>24}"
        )
    lines.append("")
    for row in result.get("ratios", []):
        if row["ratio"] is None:
            continue
        what = "every order for one product" if row["case"] == "hot" else "random products"
        lines.append(
            f"HTTP {row['clients']} clients ({what}) = {row['http_rate']:.1f} orders/s = {row['ratio']:.2f}× of"
            f" pgbench checkout SQL at {row['clients']} clients ({row['sql_rate']:.1f}/s)"
        )
    return "\n".join(lines)


def cpu_table(result: dict[str, Any]) -> str:
    lines = [
        "",
        "CPU per order (ms of CPU time per confirmed order or pgbench transaction) and busy cores during the step",
        f"{'step':<26}" + "".join(f"{g:>10}" for g in GROUPS) + f"{'total':>9} | {'ours':>5}{'others':>7}",
        "-" * 112,
    ]
    for step in result["steps"]:
        per = step.get("cpu_ms_per_order") or {}
        name = f"{step['kind']} {step['case']} c={step['clients']}"
        total = sum(per.values())
        busy = step.get("busy_cores", {})
        lines.append(
            f"{name:<26}" + "".join(f"{_fmt(per.get(g), '.3f'):>10}" for g in GROUPS) + f"{total:>9.3f}"
            f" | {_fmt(busy.get('ours'), '.2f'):>5}{_fmt(busy.get('others'), '.2f'):>7}"
        )
    lines.append("(others = CPU the rest of the machine used meanwhile: other people's work is noise in these numbers)")
    return "\n".join(lines)


def memory_table(result: dict[str, Any]) -> str:
    memory = result.get("memory") or {}
    lines = [
        "",
        f"Peak memory (MiB), sampled every {memory.get('interval_s', '?')} s ({memory.get('samples', 0)} samples,"
        f" {memory.get('sampling_cpu_s', 0)} s of client CPU). Postgres: RSS summed over the postmaster and its"
        " backends counts shared_buffers once per backend; PSS shares it out.",
    ]
    for phase, groups in (memory.get("phases") or {}).items():
        lines.append(f"  under {phase} load:")
        for group, peak in groups.items():
            if group == "postgres":
                lines.append(
                    f"    {group:<10} RSS sum {peak['peak_rss_mib']:8.1f}  PSS sum {peak['peak_pss_mib']:8.1f}"
                    f"  (up to {peak['max_processes']} processes; largest VmHWM {peak['max_vmhwm_mib']:.1f})"
                )
            else:
                lines.append(
                    f"    {group:<10} RSS {peak['peak_rss_mib']:8.1f}  VmHWM {peak['max_vmhwm_mib']:8.1f}"
                )
    return "\n".join(lines)


def profile_text(result: dict[str, Any]) -> str:
    profile = result.get("profile")
    if not profile:
        return ""
    if "targets" not in profile:
        return f"\nProfile: {profile.get('error', 'not taken')}"
    http = profile["http_under_profiler"]
    head = (
        f"\nProfile (py-spy, {profile['clients']} clients; under the profiler HTTP ran {http['rate']:.1f} orders/s,"
        f" p99 {http['p99_ms']:.2f} ms; load {'/'.join(str(x) for x in profile['load_before'])}):"
    )
    return head + "\n" + profiling.render(profile["targets"]) + f"\n  raw stacks: {profile['out_dir']}"


def write_json(result: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"bench-{stamp}.json"
    text = json.dumps(result, indent=2, sort_keys=False) + "\n"
    path.write_text(text)
    (out_dir / "latest.json").write_text(text)
    return path


def _get(step: dict[str, Any] | None, key: str) -> float | None:
    return None if step is None or step.get(key) is None else float(step[key])


def _delta(old: float | None, new: float | None, spec: str = ".1f") -> str:
    if old is None or new is None:
        return f"{_fmt(old, spec)} → {_fmt(new, spec)}"
    change = f" ({(new - old) / old * 100:+.0f}%)" if old else ""
    return f"{format(old, spec)} → {format(new, spec)}{change}"


def compare(old: dict[str, Any], new: dict[str, Any]) -> str:
    """Per step (kind, case, clients): rate, p50 and p99 before → after; per HTTP step: the ratio before → after."""
    def index(result: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
        return {(s["kind"], s["case"], s["clients"]): s for s in result.get("steps", [])}

    before, after = index(old), index(new)
    old_ratios = {(r["case"], r["clients"]): r for r in old.get("ratios", [])}
    new_ratios = {(r["case"], r["clients"]): r for r in new.get("ratios", [])}
    lines = [
        "",
        f"Compared with {old.get('started_at')} (label={old.get('label') or '-'}, load at start"
        f" {old.get('machine', {}).get('load_average_at_start')}) → now (label={new.get('label') or '-'})",
        f"{'step':<24}{'rate':>30}{'p50 ms':>26}{'p99 ms':>28}{'ratio to SQL':>24}",
        "-" * 132,
    ]
    for key in sorted(set(before) | set(after), key=lambda k: (k[0], k[1], k[2])):
        b, a = before.get(key), after.get(key)
        ratio = ""
        if key[0] == "http":
            rb, ra = old_ratios.get(key[1:]), new_ratios.get(key[1:])
            ratio = _delta(_get(rb, "ratio"), _get(ra, "ratio"), ".3f")
        lines.append(
            f"{key[0] + ' ' + key[1] + ' c=' + str(key[2]):<24}"
            f"{_delta(_get(b, 'rate'), _get(a, 'rate')):>30}"
            f"{_delta(_get(b, 'p50_ms'), _get(a, 'p50_ms'), '.2f'):>26}"
            f"{_delta(_get(b, 'p99_ms'), _get(a, 'p99_ms'), '.2f'):>28}{ratio:>24}"
        )
    return "\n".join(lines)


# --- issue 14's targets, from one run --------------------------------------------------------------------------
TARGET_CLIENTS = 16
TARGET_RATIO = 0.5  # HTTP checkout ÷ pgbench of the same SQL at 16 clients
TARGET_P99_MS = 50.0
TARGET_CPU_RATIO = 1.5  # (functions + inventory + postgres) per order ÷ postgres per pgbench checkout
TARGET_HOT_RATIO = 0.9  # hot product orders/s at the most clients ÷ at the fewest
PRODUCT = ("functions", "inventory", "postgres")


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _step(result: dict[str, Any], kind: str, case: str, clients: int) -> dict[str, Any] | None:
    return next((s for s in result["steps"] if (s["kind"], s["case"], s["clients"]) == (kind, case, clients)), None)


def targets(result: dict[str, Any]) -> str:
    """The figures issue 14 asks for, each with its same-run ratio and whether the target is met."""
    c = TARGET_CLIENTS
    http, sql = _step(result, "http", "random", c), _step(result, "pgbench", "random", c)
    lines = ["", f"Targets (issue 14), all from this run at {c} clients unless said otherwise:"]
    if http and sql and sql["rate"]:
        ratio = http["rate"] / sql["rate"]
        lines.append(
            f"  throughput  HTTP {http['rate']:.1f} orders/s (p50 {http['p50_ms']:.1f} ms, p99 {http['p99_ms']:.1f} ms)"
            f" ÷ pgbench checkout SQL {sql['rate']:.1f}/s (p50 {sql['p50_ms']:.1f}, p99 {sql['p99_ms']:.1f} ms)"
            f" = {ratio:.2f}× (target ≥ {TARGET_RATIO}×: {_verdict(ratio >= TARGET_RATIO)});"
            f" p99 target ≤ {TARGET_P99_MS:g} ms: {_verdict(http['p99_ms'] <= TARGET_P99_MS)}"
        )
    else:
        lines.append(f"  throughput  needs the HTTP and pgbench steps at {c} clients (--clients ...,{c})")
    if http and sql and http.get("cpu_ms_per_order") and sql.get("cpu_ms_per_order"):
        per = http["cpu_ms_per_order"]
        product = sum(per.get(g, 0.0) for g in PRODUCT)
        pg_alone = sql["cpu_ms_per_order"].get("postgres", 0.0)
        cpu_ratio = product / pg_alone if pg_alone else float("inf")
        services = per.get("functions", 0.0) + per.get("inventory", 0.0)
        lines.append(
            "  CPU/order   product " + " + ".join(f"{g} {per.get(g, 0.0):.2f}" for g in PRODUCT)
            + f" = {product:.2f} ms ÷ PostgreSQL per pgbench checkout {pg_alone:.2f} ms = {cpu_ratio:.2f}×"
            f" (target ≤ {TARGET_CPU_RATIO}×: {_verdict(cpu_ratio <= TARGET_CPU_RATIO)});"
            f" the services alone: {services:.2f} ms"
        )
        pg_asked = per.get("postgres", 0.0)
        if pg_asked:
            # everything an order makes PostgreSQL do (checkout, outboxes, relays, consumers, the local bus) against
            # what the two services spend asking for it: how much the Python side costs per unit of database work
            lines.append(f"              the services ÷ the PostgreSQL work they asked for in the same step: "
                         f"{services:.2f} ÷ {pg_asked:.2f} ms = {services / pg_asked:.2f}×")
        kernel = http.get("kernel_ms_per_order") or {}
        if kernel:
            lines.append("              of which in the kernel (syscalls: sockets, epoll): " + ", ".join(
                f"{g} {v:.2f} ms ({v / per[g] * 100:.0f}%)" for g, v in kernel.items() if per.get(g)
            ))
    hot = sorted((s for s in result["steps"] if s["kind"] == "http" and s["case"] == "hot"),
                 key=lambda s: s["clients"])
    if len(hot) >= 2 and hot[0]["rate"]:
        few, many = hot[0], hot[-1]
        hot_ratio = many["rate"] / few["rate"]
        lines.append(
            f"  hot product {many['clients']} clients {many['rate']:.1f} orders/s ÷ {few['clients']} clients"
            f" {few['rate']:.1f} = {hot_ratio:.2f}"
            f" (target ≥ {TARGET_HOT_RATIO}: {_verdict(hot_ratio >= TARGET_HOT_RATIO)})"
        )
    peaks = (result.get("memory") or {}).get("phases", {}).get("http", {})
    if peaks:
        lines.append("  peak memory under HTTP load: " + ", ".join(
            f"{g} PSS {p['peak_pss_mib']:.0f} MiB (RSS sum {p['peak_rss_mib']:.0f})" if g == "postgres"
            else f"{g} RSS {p['peak_rss_mib']:.0f} MiB" for g, p in peaks.items() if g != "client"
        ))
    soak = result.get("soak")
    if soak:
        lines.append(f"  soak        {soak['duration_s']:.0f} s at {soak['clients']} clients: " + "; ".join(
            f"{g} {m['start_mib']}→{m['end_mib']} MiB, {m['slope_mib_per_min']:+.2f} MiB/min"
            for g, m in soak["memory"].items() if m and g != "client"
        ))
    else:
        lines.append('  soak        not run (make bench ARGS="--soak 60")')
    return "\n".join(lines)


def soak_table(result: dict[str, Any]) -> str:
    soak = result.get("soak")
    if not soak:
        return ""
    lines = [
        "",
        f"Soak: {soak['duration_s']:.0f} s of HTTP at {soak['clients']} clients: {soak['rate']:.1f} orders/s,"
        f" p50 {soak['p50_ms']:.2f} ms, p99 {soak['p99_ms']:.2f} ms, max {soak['max_ms']:.0f} ms;"
        " memory over time (RSS; postgres: PSS sum of postmaster + backends); slope leaves out the first 10%",
        f"  {'process':<10}{'samples':>8}{'start MiB':>11}{'end MiB':>9}{'min':>8}{'max':>8}{'slope MiB/min':>15}",
    ]
    for group, m in soak["memory"].items():
        if not m:
            continue
        lines.append(
            f"  {group:<10}{m['samples']:>8}{m['start_mib']:>11.1f}{m['end_mib']:>9.1f}{m['min_mib']:>8.1f}"
            f"{m['max_mib']:>8.1f}{m['slope_mib_per_min']:>+15.3f}"
        )
    per = soak.get("cpu_ms_per_order") or {}
    if per:
        lines.append("  CPU ms/order over the soak: " + ", ".join(f"{g} {v:.3f}" for g, v in per.items() if v))
    return "\n".join(lines)
