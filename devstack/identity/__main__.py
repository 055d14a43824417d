"""`python -m devstack.identity serve|token`: the local issuer as a process of its own (docker-compose's `issuer`).

`serve` binds loopback (`127.0.0.1:7072`) unless `--bind` says otherwise; beyond loopback it needs `--tls-dir`
and `--public-url` (the https URL the other containers use, which becomes the tokens' `iss`). `token` is
`python -m devstack token`: inside the compose issuer, `docker compose exec issuer python -m devstack.identity
token alice` prints a token for that stack.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import threading
import urllib.parse
from pathlib import Path

from devstack.identity.cli import add_token_parser, run_token
from devstack.identity.issuer import LocalIssuer
from devstack.identity.settings import issuer_port
from devstack.identity.tls import ensure_tls

log = logging.getLogger("devstack.identity")


def add_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the local token issuer until SIGTERM / Ctrl-C")
    serve.add_argument("--bind", default="127.0.0.1", help="address to listen on (default loopback)")
    serve.add_argument("--port", type=int, default=issuer_port(), help="port (DEVSTACK_ISSUER_PORT, 7072)")
    serve.add_argument("--public-url", default="", help="the issuer URL others use (the tokens' iss)")
    serve.add_argument("--tls-dir", type=Path, help="serve https with a local CA kept in this directory")


def issuer_from_args(args: argparse.Namespace) -> LocalIssuer:
    """Refuses anything but loopback unless given TLS and the public URL (the only way to bind beyond it)."""
    loopback = ipaddress.ip_address(args.bind).is_loopback
    if not loopback and not (args.tls_dir and args.public_url):
        raise SystemExit(f"--bind {args.bind} is beyond loopback: it needs --tls-dir and an https --public-url")
    tls = None
    if args.tls_dir:
        host = urllib.parse.urlsplit(args.public_url).hostname if args.public_url else None
        names = tuple(dict.fromkeys(n for n in (host, "localhost", "127.0.0.1") if n))
        tls = ensure_tls(args.tls_dir, names).server_context()
    return LocalIssuer(host=args.bind, port=args.port, public_url=args.public_url, tls=tls)


def run_serve(args: argparse.Namespace) -> int:
    issuer = issuer_from_args(args).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    print(f"local token issuer {issuer.url} listening on {args.bind}:{issuer.port}", flush=True)
    while not stop.wait(1.0):  # a timed wait: signals are handled between waits
        pass
    issuer.stop()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="devstack.identity")
    sub = parser.add_subparsers(dest="command", required=True)
    add_serve_parser(sub)
    add_token_parser(sub)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    raise SystemExit(run_serve(args) if args.command == "serve" else run_token(args))


if __name__ == "__main__":
    main()
