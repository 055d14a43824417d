"""`python -m devstack token CUSTOMER [--role ops] [--ttl S]`: a token for the API; the token is the last line."""

from __future__ import annotations

import argparse
import re
import time

from devstack.identity.keys import KeyStore
from devstack.identity.settings import ORDERS_AUDIENCE, issuer_url
from devstack.identity.tokens import DEFAULT_TTL_S, MAX_TTL_S, TokenMinter
from order_functions.domain.identifiers import check_customer_id

_ROLE = re.compile(r"[a-z][a-z0-9_.-]{0,31}", re.ASCII)


def add_token_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="print a bearer token for a customer (last line of the output)")
    token.add_argument("customer", help="the customer id: the token's subject")
    token.add_argument("--role", action="append", default=[], help="an app role, e.g. ops (repeatable)")
    token.add_argument("--ttl", type=int, default=DEFAULT_TTL_S, help=f"lifetime in seconds (1..{MAX_TTL_S})")
    token.add_argument("--audience", default=ORDERS_AUDIENCE, help="the API the token is for")


def run_token(args: argparse.Namespace) -> int:
    problems = check_customer_id(args.customer, "CUSTOMER")
    bad_roles = [r for r in args.role if not _ROLE.fullmatch(r)]
    if problems or bad_roles or not 1 <= args.ttl <= MAX_TTL_S:
        for p in problems:
            print(f"error: {p['field']}: {p['message']}")
        for role in bad_roles:
            print(f"error: role {role!r}: lower-case letters, digits and _ . -")
        if not 1 <= args.ttl <= MAX_TTL_S:
            print(f"error: --ttl must be 1..{MAX_TTL_S}")
        return 2
    minter = TokenMinter(KeyStore(), issuer_url())
    token = minter.mint(args.customer, args.audience, roles=tuple(args.role), ttl_s=args.ttl)
    expires = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(time.time() + args.ttl))
    print(f"# issuer {minter.issuer}, audience {args.audience}, subject {args.customer}, "
          f"roles {','.join(args.role) or '-'}, expires {expires}")
    print("# use: curl -H \"Authorization: Bearer $TOKEN\" …")
    print(token)
    return 0
