"""The Order Service's credential for the inventory: a bearer token on every InventoryService call.

In Azure: the Functions app's managed identity (`ManagedIdentityCredential`; `AZURE_CLIENT_ID` picks a
user-assigned one), scope `<INVENTORY_AUTH_AUDIENCE>/.default`. Locally: the devstack issuer's
client-credentials endpoint (`INVENTORY_AUTH_TOKEN_URL`) for the Order Service's local identity. Either way the
token is cached until five minutes before it expires.

The caller must treat a token it cannot get, and an `UNAUTHENTICATED` / `PERMISSION_DENIED` answer, as
"inventory unavailable" (outcome unknown, retried by the slow path), never as a rejection of the order: a
misconfigured identity is our fault, not the customer's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import grpc

from order_functions.application.ports import InventoryUnavailable
from valerix_common.env import env_str

log = logging.getLogger(__name__)

INVENTORY_SERVICE_PREFIX = "/valerix.inventory.v1.InventoryService/"
REFRESH_MARGIN_S = 300.0
FETCH_TIMEOUT_S = 5.0
LOCAL_CLIENT_ID = "valerix-order-service"

TokenFetch = Callable[[], Awaitable[tuple[str, float]]]  # (token, expires at: epoch seconds)


class CachedToken:
    """One token shared by all calls; one fetch at a time, so a cold start does not stampede the issuer."""

    def __init__(self, fetch: TokenFetch, clock: Callable[[], float] = time.time) -> None:
        self._fetch = fetch
        self._clock = clock
        self._token = ""
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        if self._clock() < self._expires_at - REFRESH_MARGIN_S:
            return self._token
        async with self._lock:
            if self._clock() >= self._expires_at - REFRESH_MARGIN_S:
                self._token, self._expires_at = await asyncio.wait_for(self._fetch(), FETCH_TIMEOUT_S)
            return self._token


def managed_identity_fetch(scope: str, client_id: str | None = None) -> TokenFetch:
    from azure.identity.aio import ManagedIdentityCredential

    credential = ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()

    async def fetch() -> tuple[str, float]:
        token = await credential.get_token(scope)
        return token.token, float(token.expires_on)

    return fetch


def client_credentials_fetch(token_url: str, client_id: str, scope: str) -> TokenFetch:
    """RFC 6749 §4.4 without a secret: only the loopback devstack issuer answers this (it refuses other hosts)."""

    async def fetch() -> tuple[str, float]:
        form = {"grant_type": "client_credentials", "client_id": client_id, "scope": scope}
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.post(token_url, data=form) as reply:
            body: dict[str, Any] = await reply.json(content_type=None)
            if reply.status != 200 or not isinstance(body.get("access_token"), str):
                raise RuntimeError(f"token endpoint answered {reply.status}: {body.get('error', '?')}")
            return body["access_token"], time.time() + float(body.get("expires_in", 0))

    return fetch


def inventory_token_from_env() -> CachedToken:
    audience = env_str("INVENTORY_AUTH_AUDIENCE").split(",")[0].strip()
    if not audience:
        raise RuntimeError("INVENTORY_AUTH_AUDIENCE is not set: the inventory accepts no unauthenticated caller")
    scope = env_str("INVENTORY_AUTH_SCOPE") or f"{audience}/.default"
    token_url = env_str("INVENTORY_AUTH_TOKEN_URL")
    if token_url:
        client_id = env_str("INVENTORY_AUTH_CLIENT_ID", LOCAL_CLIENT_ID)
        return CachedToken(client_credentials_fetch(token_url, client_id, scope))
    return CachedToken(managed_identity_fetch(scope, env_str("AZURE_CLIENT_ID") or None))


class BearerTokenInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds `authorization: Bearer …` to InventoryService calls (health and reflection need none)."""

    def __init__(self, token: CachedToken) -> None:
        self.token = token

    async def intercept_unary_unary(
        self, continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        client_call_details: grpc.aio.ClientCallDetails, request: Any,
    ) -> Any:
        method = client_call_details.method
        name = method.decode() if isinstance(method, bytes) else str(method)
        if not name.startswith(INVENTORY_SERVICE_PREFIX):
            return await continuation(client_call_details, request)
        try:
            token = await self.token.get()
        except Exception as exc:  # any failure to get a credential means the inventory cannot be used now
            log.error("no token for the inventory (%s): %s", name, exc, exc_info=True)
            raise InventoryUnavailable("UNAUTHENTICATED", f"no credential for the inventory: {exc}") from exc
        metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()))
        metadata.add("authorization", f"Bearer {token}")
        details = grpc.aio.ClientCallDetails(
            client_call_details.method, client_call_details.timeout, metadata,
            client_call_details.credentials, client_call_details.wait_for_ready,
        )
        return await continuation(details, request)
