"""The `Authenticator` adapter: bearer tokens validated by the shared JWT code (signature via JWKS, iss, aud, exp).

Settings: `AUTH_ISSUER` (e.g. `https://login.microsoftonline.com/<tenant>/v2.0`, or an External ID tenant's
`https://<tenant-id>.ciamlogin.com/<tenant-id>/v2.0`, or the devstack issuer), `AUTH_AUDIENCE` (the API's
application id URI and/or client id, comma-separated), optional `AUTH_JWKS_URL` (default: `jwks_uri` of the
issuer's OpenID configuration), `AUTH_ALGORITHMS` (default `RS256,ES256`), `AUTH_LEEWAY_SECONDS` (60).
Without issuer and audience the app refuses to start: there is no setting that turns validation off.
"""

from __future__ import annotations

import logging

from order_functions.application.identity import AuthenticationFailed, Principal
from order_functions.domain.identifiers import is_customer_id
from valerix_common.jwt_auth import InvalidToken, JwtSettings, JwtValidator, bearer_token, claim_strings

log = logging.getLogger(__name__)


def auth_settings_from_env() -> JwtSettings:
    return JwtSettings.from_env("AUTH_")


class JwtAuthenticator:
    def __init__(self, validator: JwtValidator) -> None:
        self.validator = validator

    @classmethod
    def from_env(cls) -> JwtAuthenticator:
        return cls(JwtValidator(auth_settings_from_env()))

    async def authenticate(self, authorization: str | None) -> Principal:
        try:
            claims = await self.validator.validate_async(bearer_token(authorization))
        except InvalidToken as exc:
            if not exc.missing:
                log.info("bearer token rejected: %s", exc.reason)
            raise AuthenticationFailed(exc.reason, missing=exc.missing) from exc
        if not is_customer_id(claims["sub"]):  # the subject becomes the customer id stored with each order
            log.info("bearer token rejected: subject %r is not a usable customer id", str(claims["sub"])[:80])
            raise AuthenticationFailed("subject is not a usable customer id")
        tenant = claims.get("tid")
        return Principal(
            subject=str(claims["sub"]),
            roles=claim_strings(claims, "roles"),
            issuer=str(claims["iss"]),
            tenant_id=tenant if isinstance(tenant, str) else "",
        )
