"""The HTTP front: aiohttp on loopback, dispatching to HTTP-triggered functions by route, as the host does."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import azure.functions as func
from aiohttp import web

from devstack.functions_host.invocation import invoke, log_failed, log_succeeded
from devstack.functions_host.metadata import HttpFunction

log = logging.getLogger("devstack.functions_host")

# Hop-by-hop or framing headers that aiohttp computes itself; everything else the function returns is kept.
_FRAMING_HEADERS = {"content-length", "transfer-encoding", "connection", "keep-alive"}


class HttpFront:
    """Serves `functions` (already in routing order) on host:port; `start()` returns the bound port."""

    def __init__(self, functions: list[HttpFunction], *, host: str, port: int, body_limit: int,
                 shutdown_timeout_s: float) -> None:
        self.functions = functions
        self.host = host
        self.port = port
        self.body_limit = body_limit
        self.shutdown_timeout_s = shutdown_timeout_s
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        web_app = web.Application(client_max_size=self.body_limit, handler_args={"max_field_size": 65536})
        web_app.router.add_route("*", "/{tail:.*}", self.dispatch)
        self._runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=self.shutdown_timeout_s)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        return int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        """Closes the listener and waits for in-flight requests (bounded by the shutdown timeout)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path
        method = request.method.upper()
        for fn in self.functions:
            values = fn.route.match(raw_path)
            if values is None or (fn.methods is not None and method not in fn.methods):
                continue
            return await self._invoke(fn, request, values)
        # The host answers an unknown route, a failed constraint and an unsupported method alike: 404, empty body.
        return web.Response(status=404)

    async def _invoke(self, fn: HttpFunction, request: web.Request, route_params: dict[str, str]) -> web.Response:
        try:
            http_request = await to_http_request(request, route_params)
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413)
        # Per-request lines only at DEBUG: at INFO they were ~5 % of the host's CPU per order (docs/benchmarks.md).
        # A failure is always logged, at ERROR, with an invocation id of its own.
        debug = log.isEnabledFor(logging.DEBUG)
        invocation_id = str(uuid.uuid4()) if debug else ""
        if debug:
            log.debug(
                "Executing 'Functions.%s' (Reason='This function was programmatically called via the host APIs.',"
                " Id=%s)", fn.name, invocation_id,
            )
        started = time.monotonic()
        try:
            result = await invoke(fn.user_function, {fn.arg_name: http_request})
            response = to_aiohttp_response(result)
        except Exception as exc:
            log_failed(fn.name, invocation_id or str(uuid.uuid4()), started, exc)
            return web.Response(status=500)
        if debug:
            log_succeeded(fn.name, invocation_id, started, level=logging.DEBUG)
        return response


async def to_http_request(request: web.Request, route_params: dict[str, str]) -> func.HttpRequest:
    """The worker's `func.HttpRequest`: repeated headers joined with ', ', repeated query keys with ','."""
    body = await request.read()
    raw = request.headers
    headers: dict[str, str] = {}
    seen: set[str] = set()
    for key in raw:
        folded = key.lower()
        if folded not in seen:
            seen.add(folded)
            headers[key] = ", ".join(raw.getall(key))
    query = request.query
    params = {key: ",".join(query.getall(key)) for key in query}  # as ASP.NET StringValues.ToString()
    return func.HttpRequest(
        method=request.method, url=str(request.url), headers=headers, params=params, route_params=route_params,
        body=body,
    )


def to_aiohttp_response(result: Any) -> web.Response:
    """The worker's HttpResponse → HTTP conversion (content type from mimetype/charset unless a header sets it)."""
    if result is None:
        return web.Response(status=204)  # http $return with no value: the host answers an empty response
    if isinstance(result, str):
        result = func.HttpResponse(result)
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"an HTTP function returned {type(result).__name__}, expected azure.functions.HttpResponse")
    response = web.Response(status=int(result.status_code), body=result.get_body() or b"")
    headers = result.headers
    for name in list(headers.keys()):
        if name.lower() in _FRAMING_HEADERS:
            continue
        values = headers.get_all(name) if hasattr(headers, "get_all") else [headers[name]]
        for value in values:
            response.headers.add(name, value)
    if "Content-Type" not in response.headers:
        mimetype, charset = result.mimetype, result.charset
        text = mimetype.startswith("text/")
        response.headers["Content-Type"] = f"{mimetype}; charset={charset}" if text else mimetype
    return response
