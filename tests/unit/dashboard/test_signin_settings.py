"""The dashboard's Entra sign-in settings: all three and well-formed, or none at all."""

from __future__ import annotations

import pytest

from order_functions.interface.dashboard import page_csp, signin_placeholders
from order_functions.interface.dashboard_signin import EntraSignin, parse_entra_signin

CLIENT = "11111111-2222-3333-4444-555555555555"
AUTHORITY = "https://login.microsoftonline.com/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SCOPE = "api://valerix-orders/access_as_user"


def test_nothing_set_is_no_entra_sign_in() -> None:
    assert parse_entra_signin("", "", "") is None


def test_a_complete_setting_is_used_as_given() -> None:
    entra = parse_entra_signin(CLIENT, AUTHORITY + "/", SCOPE)
    assert entra == EntraSignin(CLIENT, AUTHORITY, SCOPE)
    assert entra.origin == "https://login.microsoftonline.com"
    csp = page_csp("http://127.0.0.1:7072/dev/signin", entra)
    assert "connect-src 'self' https://login.microsoftonline.com;" in csp and "7072" not in csp
    filled = signin_placeholders("http://127.0.0.1:7072/dev/signin", entra)
    assert filled["__DEV_SIGNIN_URL__"] == "" and filled["__SIGNIN_SCOPE__"] == SCOPE


@pytest.mark.parametrize("client, authority, scope, wrong", [
    (CLIENT, "", SCOPE, "AUTHORITY"),
    ("", AUTHORITY, SCOPE, "CLIENT_ID"),
    (CLIENT, AUTHORITY, "", "SCOPE"),
    (CLIENT, "http://login.microsoftonline.com/t", SCOPE, "AUTHORITY"),
    (CLIENT, "https://login.microsoftonline.com/t?x=1", SCOPE, "AUTHORITY"),
    (CLIENT, "https://user@login.microsoftonline.com/t", SCOPE, "AUTHORITY"),
    (CLIENT, "https://login.microsoftonline.com", SCOPE, "AUTHORITY"),
    ('a"b', AUTHORITY, SCOPE, "CLIENT_ID"),
    (CLIENT, AUTHORITY, 'api://x/y"><script>', "SCOPE"),
    (CLIENT, AUTHORITY, "two scopes", "SCOPE"),
])
def test_partial_or_malformed_settings_are_refused_by_name(client: str, authority: str, scope: str, wrong: str) -> None:
    with pytest.raises(ValueError, match=f"DASHBOARD_SIGNIN_{wrong}"):
        parse_entra_signin(client, authority, scope)
