"""Who is calling: the authenticated principal, the port that establishes it, and the two ways that can fail.

`AuthenticationFailed` is a 401 (no credential, or one we do not accept); `Forbidden` is a 403 (we know who you
are, and you may not). The interface maps them; use cases raise `Forbidden` when ownership or a role is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from order_functions.application.errors import ApplicationError

OPS_ROLE = "ops"
REALM = "valerix"


@dataclass(frozen=True)
class Principal:
    subject: str  # the token's `sub`: the customer id of everything this caller orders
    roles: frozenset[str]
    issuer: str
    tenant_id: str = ""  # Entra `tid`; empty when the issuer has no tenants

    @property
    def is_ops(self) -> bool:
        return OPS_ROLE in self.roles

    def has_role(self, role: str) -> bool:
        return role in self.roles


class Authenticator(Protocol):
    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an `Authorization` header value; raises `AuthenticationFailed`."""
        ...


def _quoted(value: str) -> str:
    # RFC 6750 §3: auth-param values are quoted-strings; keep them to safe printable ASCII
    return '"' + "".join(c for c in value if 0x20 <= ord(c) < 0x7F and c not in '"\\') + '"'


def bearer_challenge(error: str | None = None, description: str | None = None, *, scope: str | None = None) -> str:
    """The `WWW-Authenticate` value for a 401/403 (RFC 6750 §3)."""
    params = [f"realm={_quoted(REALM)}"]
    if error:
        params.append(f"error={_quoted(error)}")
    if description:
        params.append(f"error_description={_quoted(description[:200])}")
    if scope:
        params.append(f"scope={_quoted(scope)}")
    return "Bearer " + ", ".join(params)


class AuthenticationFailed(ApplicationError):
    """401. `reason` is logged, never returned: it would tell a forger which check caught them."""

    status = 401

    def __init__(self, reason: str, *, missing: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.missing = missing

    @property
    def www_authenticate(self) -> str:
        # RFC 6750 §3.1: a request without credentials gets no error code; any other failure is invalid_token
        if self.missing:
            return bearer_challenge()
        return bearer_challenge("invalid_token", "the access token is not valid")

    @property
    def detail(self) -> str:
        return "Send a valid bearer token." if self.missing else "The access token is missing, expired or not valid."


class Forbidden(ApplicationError):
    """403: authenticated, but not allowed (a missing role, or a body that names another customer)."""

    status = 403

    def __init__(self, detail: str, *, required_role: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.required_role = required_role

    @property
    def www_authenticate(self) -> str | None:
        return bearer_challenge("insufficient_scope", scope=self.required_role) if self.required_role else None


def require_role(principal: Principal, role: str) -> None:
    if not principal.has_role(role):
        raise Forbidden(f"This needs the {role} role.", required_role=role)
