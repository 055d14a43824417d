"""Whose notifications a caller reads, by the same rules as the core's orders (application/ownership.py): a
customer reads only their own; reading another customer's needs the `ops` role. Pure decisions, no I/O."""

from __future__ import annotations

from order_functions.application.identity import OPS_ROLE, Principal, require_role


def order_reader(principal: Principal) -> str | None:
    """The customer whose notifications of an order the caller may read; None: anybody's (an operator)."""
    return None if principal.is_ops else principal.subject


def listed_customer(principal: Principal, requested: str | None) -> str:
    """The customer to list: the caller when none is named; a name other than the caller's needs `ops`."""
    if requested is None or requested == principal.subject:
        return principal.subject
    require_role(principal, OPS_ROLE)  # Forbidden (403) otherwise
    return requested
