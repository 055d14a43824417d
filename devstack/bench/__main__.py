"""`python -m devstack.bench [options]` (`make bench ARGS="..."`): run the benchmark, print it, save it as JSON.

    make bench                                   # 8 s per step; clients 1,4,16,64; hot product at 4 and 64
    make bench ARGS="--duration 3 --clients 1,16 --hot-clients 4"
    make bench ARGS="--profile"                  # plus a py-spy profile of the functions host and the inventory
    make bench ARGS="--soak 60"                  # plus 60 s at 16 clients with memory over time per process
    make bench ARGS="--idempotency-keys"         # every order with an Idempotency-Key (the recommended path)
    make bench ARGS="--compare .artifacts/bench/bench-20260101T000000Z.json"
    python -m devstack.bench --compare-only OLD.json NEW.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from devstack.bench import report, statements
from devstack.bench.pg_limit import PROTOCOLS
from devstack.bench.runner import Bench, BenchOptions


def _counts(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated client counts, e.g. 1,4,16") from None
    if any(not 1 <= v <= 256 for v in values):
        raise argparse.ArgumentTypeError("client counts must be between 1 and 256")
    return values


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=VALUE")
    return name, value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measured step (default 8)")
    parser.add_argument("--clients", type=_counts, default=[1, 4, 16, 64], help="client counts (default 1,4,16,64)")
    parser.add_argument("--hot-clients", type=_counts, default=[4, 64], help="hot-product client counts (4,64)")
    parser.add_argument("--products", type=int, default=200, help="bench products for the random mix (200)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured HTTP load first (3)")
    parser.add_argument("--ramp", type=float, default=1.0, help="unmeasured seconds at the start of each HTTP step")
    parser.add_argument("--protocol", choices=("auto", *PROTOCOLS), default="auto",
                        help="pgbench -M (default auto: as the product connects — extended = unnamed statements,"
                             " prepared with POSTGRES_PREPARED_STATEMENTS=true)")
    parser.add_argument("--scripts", type=Path, default=None,
                        help="run this folder's reserve.sql / checkout.sql / checkout-idempotent.sql instead of"
                             " generating them from the repositories' statements (e.g. an old version from git)")
    parser.add_argument("--idempotency-keys", action="store_true",
                        help="send an Idempotency-Key with every order (limit: pgbench checkout-idempotent.sql)")
    parser.add_argument("--no-http", action="store_true", help="physical limit only")
    parser.add_argument("--statements", action="store_true",
                        help="count the statements each order makes PostgreSQL run, per database"
                             " (pg_stat_statements over the 16-client random HTTP step)")
    parser.add_argument("--no-pgbench", action="store_true", help="HTTP only")
    parser.add_argument("--no-reserve", action="store_true", help="skip the reservation-only pgbench steps")
    parser.add_argument("--profile", action="store_true", help="also profile both services with py-spy")
    parser.add_argument("--profile-clients", type=int, default=16, help="client count of the profiled step (16)")
    parser.add_argument("--soak", type=float, default=0.0, metavar="SECONDS",
                        help="also a soak of SECONDS at --soak-clients with memory over time (e.g. 60)")
    parser.add_argument("--soak-clients", type=int, default=16, help="clients of the soak (16)")
    parser.add_argument("--py-spy", default=None, help="path of the py-spy executable (default: on PATH)")
    parser.add_argument("--env", type=_env_pair, action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment for the stack, e.g. ORDERS_DB_POOL_SIZE=32 (repeatable)")
    parser.add_argument("--label", default="", help="a name for this run, stored in the JSON")
    parser.add_argument("--out", type=Path, default=None, help="where JSON goes (default .artifacts/bench)")
    parser.add_argument("--compare", type=Path, default=None, help="print deltas against an earlier JSON")
    parser.add_argument("--compare-only", nargs=2, type=Path, metavar=("OLD", "NEW"),
                        help="compare two saved runs without running anything")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.duration > 600:
        parser.error("--duration must be in (0, 600] seconds")
    if not 0 <= args.soak <= 3600:
        parser.error("--soak must be in [0, 3600] seconds")
    if not 1 <= args.soak_clients <= 256:
        parser.error("--soak-clients must be between 1 and 256")
    if not 1 <= args.products <= 100_000:
        parser.error("--products must be between 1 and 100000")
    return args


def _read(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.compare_only:
        old, new = (_read(p) for p in args.compare_only)
        print(report.results_table(new))
        print(report.compare(old, new))
        return 0
    earlier = _read(args.compare) if args.compare else None  # fail before a long run, not after it
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = BenchOptions(
        duration_s=args.duration,
        clients=args.clients,
        hot_clients=args.hot_clients,
        products=args.products,
        warmup_s=args.warmup,
        ramp_s=args.ramp,
        protocol=args.protocol,
        scripts=args.scripts.resolve() if args.scripts else None,
        idempotency_keys=args.idempotency_keys,
        http=not args.no_http,
        pgbench=not args.no_pgbench,
        reserve_only=not args.no_reserve,
        profile=args.profile,
        profile_clients=args.profile_clients,
        soak_s=args.soak,
        soak_clients=args.soak_clients,
        py_spy=args.py_spy,
        extra_env=dict(args.env),
        label=args.label,
        statements=args.statements,
    )
    if args.out is not None:
        options.out_dir = args.out
    result = asyncio.run(Bench(options).run())
    path = report.write_json(result, options.out_dir)
    print(report.results_table(result))
    print(report.cpu_table(result))
    print(report.memory_table(result))
    print(report.soak_table(result))
    text = report.profile_text(result)
    if text:
        print(text)
    if result.get("statements"):
        print(statements.table(result["statements"]))
    print(report.targets(result))
    if earlier is not None:
        print(report.compare(earlier, result))
    print(f"\nsaved {path} (and latest.json beside it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
