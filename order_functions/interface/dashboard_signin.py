"""How the dashboard page signs its user in, from app settings: Entra ID through MSAL.js in Azure.

`DASHBOARD_SIGNIN_CLIENT_ID` (the dashboard's single-page-application registration), `DASHBOARD_SIGNIN_AUTHORITY`
(`https://login.microsoftonline.com/<tenant-id>`) and `DASHBOARD_SIGNIN_SCOPE` (the Order API's delegated scope,
e.g. `api://valerix-orders/access_as_user`) are wired in Bicep (`infra/modules/functionapp.bicep`). With all
three set the page loads the vendored `msal-browser` from `static/vendor/` and signs in with the authorization
code flow and PKCE (a redirect; tokens stay in the tab's sessionStorage). None of them is a secret: a SPA is a
public client. Anything partial or malformed is logged and ignored, so the page falls back to the token box
instead of pointing people at a wrong sign-in.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from valerix_common.env import env_str

log = logging.getLogger(__name__)

SETTINGS = ("DASHBOARD_SIGNIN_CLIENT_ID", "DASHBOARD_SIGNIN_AUTHORITY", "DASHBOARD_SIGNIN_SCOPE")
_CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", re.ASCII)
# an OAuth scope token (RFC 6749 §3.3), without quotes or angle brackets (it goes into an HTML attribute)
_SCOPE = re.compile(r"[!#-&(-;=?-~]{1,300}", re.ASCII)
_AUTHORITY_PATH = re.compile(r"(?:/[A-Za-z0-9._-]{1,100}){1,3}", re.ASCII)


@dataclass(frozen=True)
class EntraSignin:
    client_id: str
    authority: str
    scope: str

    @property
    def origin(self) -> str:
        """Where MSAL.js fetches metadata and redeems the code: the one extra `connect-src` of the page."""
        parts = urlsplit(self.authority)
        return f"{parts.scheme}://{parts.netloc}"


def parse_entra_signin(client_id: str, authority: str, scope: str) -> EntraSignin | None:
    """The settings when they make a usable sign-in, else None (`ValueError` names what is wrong)."""
    if not (client_id or authority or scope):
        return None
    parts = urlsplit(authority)
    problems = [
        name for name, ok in (
            ("DASHBOARD_SIGNIN_CLIENT_ID", bool(_CLIENT_ID.fullmatch(client_id))),
            ("DASHBOARD_SIGNIN_AUTHORITY", parts.scheme == "https" and bool(parts.hostname) and not parts.query
             and not parts.fragment and not parts.username and bool(_AUTHORITY_PATH.fullmatch(parts.path.rstrip("/")))),
            ("DASHBOARD_SIGNIN_SCOPE", bool(_SCOPE.fullmatch(scope))),
        ) if not ok
    ]
    if problems:
        raise ValueError(f"dashboard sign-in settings missing or malformed: {', '.join(problems)}")
    return EntraSignin(client_id, authority.rstrip("/"), scope)


def entra_signin_from_env() -> EntraSignin | None:
    try:
        return parse_entra_signin(*(env_str(name) for name in SETTINGS))
    except ValueError as exc:
        log.error("%s: the dashboard offers the token box instead of Entra sign-in", exc)
        return None
