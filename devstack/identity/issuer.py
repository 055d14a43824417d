"""The local issuer over HTTP on loopback: OpenID configuration, JWKS, and a client-credentials token endpoint.

Only the application identities it is told about get tokens from `/oauth2/v2.0/token` (locally, the Order
Service calling the inventory); customer tokens come from `python -m devstack token`, which signs with the same
keys. It serves loopback unless told otherwise: anybody who can reach it can obtain the Order Service's token.
Only `python -m devstack.identity serve --bind ...` (docker-compose's `issuer` service) binds beyond loopback,
and then only over TLS (`tls.py`), under the public URL it is given (`https://issuer:7072` on the compose network).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import secrets
import ssl
import threading
import time
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from devstack.identity.keys import KeyStore
from devstack.identity.settings import ORDERS_AUDIENCE
from devstack.identity.tokens import DEFAULT_TTL_S, ORDER_SERVICE_CLIENT_ID, TokenMinter

log = logging.getLogger(__name__)

CONFIG_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/discovery/v2.0/keys"
TOKEN_PATH = "/oauth2/v2.0/token"
# development only: the dashboard trades the one-time code in the URL `make up` prints for a short-lived token
DEV_SIGNIN_PATH = "/dev/signin"
SIGNIN_CODE_TTL_S = 600
SIGNIN_TOKEN_TTL_S = 8 * 3600
MAX_FORM_BYTES = 4096
_LOOPBACK_ORIGIN = re.compile(r"http://(?:127\.0\.0\.1|localhost|\[::1\])(?::[0-9]{1,5})?", re.ASCII)


class LocalIssuer:
    def __init__(
        self, keys: KeyStore | None = None, *, host: str = "127.0.0.1", port: int = 0,
        clients: frozenset[str] = frozenset({ORDER_SERVICE_CLIENT_ID}),
        public_url: str = "", tls: ssl.SSLContext | None = None,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback and tls is None:
            raise ValueError(f"the local issuer serves loopback only, not {host}, unless it is given TLS")
        if public_url and not public_url.startswith("https://" if tls else "http://"):
            raise ValueError(f"public URL {public_url} does not match the transport ({'https' if tls else 'http'})")
        self.keys = keys or KeyStore()
        self._public_url = public_url.rstrip("/")
        self.clients = clients
        self.requests: Counter[str] = Counter()  # path -> count, so tests can see keys were fetched over HTTP
        self._codes: dict[str, tuple[str, tuple[str, ...], float]] = {}  # code -> (subject, roles, expires at)
        self._codes_lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        if tls is not None:
            # the handshake happens in the request thread, so a stalled client cannot block accept()
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True, do_handshake_on_connect=False)
        self._thread: threading.Thread | None = None
        self.keys.keys()  # create the first key now, not inside a request

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The issuer identifier (`iss`); the OpenID configuration lives under it."""
        return self._public_url or f"http://127.0.0.1:{self.port}"

    @property
    def minter(self) -> TokenMinter:
        return TokenMinter(self.keys, self.url)

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": self.url + JWKS_PATH,
            "token_endpoint": self.url + TOKEN_PATH,
            "grant_types_supported": ["client_credentials"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def client_credentials(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        """RFC 6749 §4.4, shaped like Entra's: `scope=<audience>/.default`."""
        grant = form.get("grant_type", [""])[0]
        client_id = form.get("client_id", [""])[0]
        scope = form.get("scope", [""])[0]
        if grant != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if client_id not in self.clients:
            return 401, {"error": "invalid_client"}
        if not scope.endswith("/.default") or len(scope) <= len("/.default"):
            return 400, {"error": "invalid_scope", "error_description": "scope must be <audience>/.default"}
        token = self.minter.mint(client_id, scope.removesuffix("/.default"), application=True)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": DEFAULT_TTL_S}

    def one_time_code(self, subject: str, roles: tuple[str, ...] = (), ttl_s: float = SIGNIN_CODE_TTL_S) -> str:
        """A code for `DEV_SIGNIN_PATH`: good for one exchange within `ttl_s` (so a URL holding it goes stale)."""
        code = secrets.token_urlsafe(24)
        with self._codes_lock:
            now = time.time()
            self._codes = {c: v for c, v in self._codes.items() if v[2] > now}
            self._codes[code] = (subject, roles, now + ttl_s)
        return code

    def redeem(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        with self._codes_lock:
            found = self._codes.pop(form.get("code", [""])[0], None)
        if found is None or found[2] < time.time():
            return 400, {"error": "invalid_grant", "error_description": "unknown, used or expired sign-in code"}
        subject, roles, _ = found
        token = self.minter.mint(subject, ORDERS_AUDIENCE, roles=roles, ttl_s=SIGNIN_TOKEN_TTL_S)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": SIGNIN_TOKEN_TTL_S,
                     "subject": subject, "roles": list(roles)}

    def start(self) -> LocalIssuer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-issuer", daemon=True)
        self._thread.start()
        log.info("local token issuer on %s", self.url)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalIssuer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _handler_for(issuer: LocalIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # seconds a connection may stall (handshake included) before its thread gives up

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            issuer.requests[path] += 1
            if path == CONFIG_PATH:
                self._json(200, issuer.openid_configuration())
            elif path == JWKS_PATH:
                self._json(200, issuer.keys.jwks())
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            issuer.requests[path] += 1
            length = int(self.headers.get("Content-Length") or 0)
            if path not in (TOKEN_PATH, DEV_SIGNIN_PATH):
                self._json(404, {"error": "not_found"})
            elif not 0 < length <= MAX_FORM_BYTES:
                self._json(400, {"error": "invalid_request"})
            else:
                form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
                if path == TOKEN_PATH:
                    self._json(*issuer.client_credentials(form))
                else:  # a page on another loopback port (the dashboard) may read the answer: CORS for loopback
                    self._json(*issuer.redeem(form), cors=True)

        def _json(self, status: int, payload: dict[str, Any], *, cors: bool = False) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            origin = self.headers.get("Origin", "")
            if cors and _LOOPBACK_ORIGIN.fullmatch(origin):
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Vary", "Origin")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("issuer: " + format, *args)

    return Handler
