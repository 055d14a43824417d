"""A local OpenID Connect token issuer: the same validation path as Entra ID, with keys that never leave `.data/`."""

from devstack.identity.issuer import LocalIssuer
from devstack.identity.keys import KeyStore
from devstack.identity.tokens import ORDER_SERVICE_CLIENT_ID, TokenMinter

__all__ = ["ORDER_SERVICE_CLIENT_ID", "KeyStore", "LocalIssuer", "TokenMinter"]
