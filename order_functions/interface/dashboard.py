"""The live dashboard, served by the function app itself: the page, its static assets, the chaos admin endpoint
and the local bus statistics. The page only calls the public API with relative URLs (no CDN, no build step).

Routes (under the host's `api` prefix):

* `GET dashboard` (anonymous) — the page; `GET dashboard/{*path}` (anonymous) — files from `static/` only;
* `GET|POST ops/chaos` (function key) — the inventory's chaos switches, 404 unless `ADMIN_API_ENABLED=true`.
  Not `admin/chaos`: the Functions host reserves every route starting with `admin` for its own admin API and
  refuses to index such a function ("The specified route conflicts with one or more built in routes");
* `GET stats/bus` (function key) — the local queue's counts when the bus is the local queue.
"""

from __future__ import annotations

import functools
import hashlib
import html
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from order_functions.application.identity import OPS_ROLE, require_role
from order_functions.application.ports import ChaosSwitches
from order_functions.bootstrap import get_services
from order_functions.domain.strict_json import JsonLimits, loads_object
from order_functions.domain.validation import Fault, ValidationFailed
from order_functions.interface.auth import bearer_auth, caller
from order_functions.interface.dashboard_signin import EntraSignin, entra_signin_from_env
from order_functions.interface.http_support import handle_errors, json_response, request_path, request_query
from order_functions.interface.problems import Problem, problem_response
from valerix_common.env import env_str

log = logging.getLogger(__name__)

bp = func.Blueprint()  # type: ignore[no-untyped-call]

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
# one plain name per segment: no dot-segments, no hidden files, no backslashes, no encoded tricks
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
VERSION_PLACEHOLDER = "__ASSET_VERSION__"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'"
)
SIGNIN_PLACEHOLDER = "__DEV_SIGNIN_URL__"
ENTRA_PLACEHOLDERS = ("__SIGNIN_CLIENT_ID__", "__SIGNIN_AUTHORITY__", "__SIGNIN_SCOPE__")
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

MAX_CHAOS_BODY = 4096
_PATTERN = re.compile(r"(?:|random|every:[1-9][0-9]{0,5})")


# ------------------------------------------------------------------------------------------------------------
# static files
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def static_file(relative: str) -> Path | None:
    """The file under `static/` named by `relative`, or None: nothing outside the folder, only known types."""
    segments = relative.split("/")
    if not relative or not all(_SEGMENT.fullmatch(s) for s in segments):
        return None
    candidate = STATIC_DIR.joinpath(*segments)
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(STATIC_DIR) or not resolved.is_file():
        return None
    if resolved.suffix.lower() not in CONTENT_TYPES:
        return None
    return resolved


@functools.cache
def asset_version() -> str:
    """One short hash over every static file: changes whenever any asset changes (cache busting). Computed once
    per process: the files ship with the app and do not change while it runs (restart after editing them)."""
    digest = hashlib.sha256()
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(STATIC_DIR).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def load_asset(path: Path, *, version: str | None = None, extra: dict[str, str] | None = None) -> Asset:
    body = path.read_bytes()
    if version is not None:
        body = body.replace(VERSION_PLACEHOLDER.encode(), version.encode())
    for placeholder, value in (extra or {}).items():
        body = body.replace(placeholder.encode(), value.encode())
    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
    return Asset(body, CONTENT_TYPES[path.suffix.lower()], etag)


def dev_signin_url() -> str:
    """The devstack issuer's sign-in exchange (`DASHBOARD_DEV_SIGNIN_URL`), honoured only on loopback http: in
    Azure the page has no such shortcut and needs a real sign-in (docs/identity.md "The dashboard")."""
    url = env_str("DASHBOARD_DEV_SIGNIN_URL")
    parts = urlsplit(url)
    if url and parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "::1"}:
        return url
    return ""


def page_csp(signin_url: str, entra: EntraSignin | None = None) -> str:
    """The page may connect to its own origin, plus the one sign-in service it uses (if any)."""
    if entra is not None:
        return PAGE_CSP.replace("connect-src 'self'", f"connect-src 'self' {entra.origin}")
    if not signin_url:
        return PAGE_CSP
    parts = urlsplit(signin_url)
    return PAGE_CSP.replace("connect-src 'self'", f"connect-src 'self' {parts.scheme}://{parts.netloc}")


def signin_placeholders(signin_url: str, entra: EntraSignin | None) -> dict[str, str]:
    """What the page's sign-in `<meta>` tags carry: Entra (MSAL.js) when configured, else the development one."""
    values = (entra.client_id, entra.authority, entra.scope) if entra else ("", "", "")
    return {SIGNIN_PLACEHOLDER: html.escape("" if entra else signin_url),
            **{name: html.escape(value) for name, value in zip(ENTRA_PLACEHOLDERS, values, strict=True)}}


def _not_modified(req: func.HttpRequest, etag: str) -> bool:
    sent = req.headers.get("If-None-Match", "")
    return any(tag.strip().removeprefix("W/") == etag for tag in sent.split(",")) if sent else False


def asset_response(req: func.HttpRequest, asset: Asset, cache_control: str,
                   extra: dict[str, str] | None = None) -> func.HttpResponse:
    headers = {"Cache-Control": cache_control, "ETag": asset.etag, **SECURITY_HEADERS, **(extra or {})}
    if _not_modified(req, asset.etag):
        return func.HttpResponse(status_code=304, headers=headers)
    if req.method.upper() == "HEAD":
        return func.HttpResponse(status_code=200, headers={**headers, "Content-Type": asset.content_type})
    return func.HttpResponse(asset.body, status_code=200, headers=headers, mimetype=asset.content_type.split(";")[0],
                             charset="utf-8")


def _not_found() -> func.HttpResponse:
    return problem_response(Problem(404, "Not found", "no such dashboard file", "not-found"), headers=SECURITY_HEADERS)


def _to_canonical(req: func.HttpRequest) -> func.HttpResponse:
    """`/api/dashboard/` would break the page's relative URLs: send the browser to `/api/dashboard`."""
    query = request_query(req)
    return func.HttpResponse(status_code=308, headers={
        "Location": "../dashboard" + (f"?{query}" if query else ""), **SECURITY_HEADERS,
    })


@bp.route(route="dashboard", methods=["GET", "HEAD"], auth_level=func.AuthLevel.ANONYMOUS)
async def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    """The page. Its asset URLs carry the asset version, so the assets themselves can be cached for a year."""
    if request_path(req).endswith("/"):
        return _to_canonical(req)
    index = static_file("index.html")
    if index is None:
        return _not_found()
    signin, entra = dev_signin_url(), entra_signin_from_env()
    asset = load_asset(index, version=asset_version(), extra=signin_placeholders(signin, entra))
    return asset_response(req, asset, REVALIDATE, {"Content-Security-Policy": page_csp(signin, entra)})


@bp.route(route="dashboard/{*path}", methods=["GET", "HEAD"], auth_level=func.AuthLevel.ANONYMOUS)
async def dashboard_asset(req: func.HttpRequest) -> func.HttpResponse:
    relative = (req.route_params.get("path") or "").strip()
    if relative == "":
        return _to_canonical(req)
    path = static_file(relative)
    if path is None or path.name == "index.html":
        return _not_found()
    asset = load_asset(path)
    versioned = bool(req.params.get("v")) and req.params.get("v") == asset_version()
    return asset_response(req, asset, IMMUTABLE if versioned else REVALIDATE)


# ------------------------------------------------------------------------------------------------------------
# chaos admin (the inventory's GetChaos / SetChaos)
# ------------------------------------------------------------------------------------------------------------


def chaos_json(settings: ChaosSwitches) -> dict[str, Any]:
    return {
        "gremlin_enabled": settings.gremlin_enabled,
        "min_delay_s": round(settings.min_delay_s, 3),
        "max_delay_s": round(settings.max_delay_s, 3),
        "pattern": settings.pattern or "random",
        "crash_rate": round(settings.crash_rate, 4),
    }


CHAOS_FIELDS = ("gremlin_enabled", "min_delay_s", "max_delay_s", "pattern", "crash_rate")


def is_json(content_type: str | None) -> bool:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def parse_chaos_update(raw: bytes, current: dict[str, Any]) -> dict[str, Any]:
    """The requested settings merged over the current ones; fields left out keep their value.
    Malformed JSON or a non-object body: 400. Wrong types, unknown fields or values out of range: 422."""
    body = loads_object(raw or b"null", JsonLimits(max_bytes=MAX_CHAOS_BODY))
    errors: list[dict[str, str]] = []
    for name in sorted(set(body) - set(CHAOS_FIELDS)):
        errors.append({"field": str(name)[:60], "message": f"unknown field; known: {', '.join(CHAOS_FIELDS)}"})
    if not set(body) & set(CHAOS_FIELDS) and not errors:
        errors.append({"field": "", "message": f"give at least one of {', '.join(CHAOS_FIELDS)}"})
    merged = dict(current)
    if "gremlin_enabled" in body:
        if isinstance(body["gremlin_enabled"], bool):
            merged["gremlin_enabled"] = body["gremlin_enabled"]
        else:
            errors.append({"field": "gremlin_enabled", "message": "true or false"})
    for name, low, high, unit in (("min_delay_s", 0, 60, " s"), ("max_delay_s", 0, 60, " s"),
                                  ("crash_rate", 0, 1, "")):
        if name not in body:
            continue
        value = body[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            errors.append({"field": name, "message": f"a number from {low} to {high}{unit}"})
        elif not low <= value <= high:
            errors.append({"field": name, "message": f"must be within {low}..{high}{unit}"})
        else:
            merged[name] = float(value)
    if "pattern" in body:
        value = body["pattern"]
        if isinstance(value, str) and _PATTERN.fullmatch(value):
            merged["pattern"] = value or "random"
        else:
            errors.append({"field": "pattern", "message": "'' or 'random' (every call) or 'every:N' (every Nth call)"})
    if not errors and merged["min_delay_s"] > merged["max_delay_s"]:
        errors.append({"field": "min_delay_s", "message": "must not exceed max_delay_s"})
    if errors:
        raise ValidationFailed(errors, Fault.INVALID, "Invalid chaos settings")
    return merged


@bp.route(route="ops/chaos", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
@bearer_auth
@handle_errors
async def admin_chaos(req: func.HttpRequest) -> func.HttpResponse:
    """GET: the inventory's chaos settings. POST: change them (partial JSON object). 404 unless enabled.
    Operators only; a POST must be `application/json` (a cross-site form cannot send that without CORS)."""
    require_role(caller(), OPS_ROLE)
    if req.method.upper() == "POST" and not is_json(req.headers.get("Content-Type")):
        unsupported = Problem(415, "Unsupported media type", "send the settings as application/json",
                              "unsupported-media-type", headers={"Accept-Post": "application/json"})
        return problem_response(unsupported, request_path(req))
    chaos = (await get_services()).chaos
    headers = {"Cache-Control": "no-store"}
    current = chaos_json(await chaos.current())
    if req.method.upper() == "GET":
        return json_response(current, headers=headers)
    wanted = parse_chaos_update(req.get_body(), current)
    applied = await chaos.apply(ChaosSwitches(**wanted))
    return json_response(chaos_json(applied), headers=headers)


# ------------------------------------------------------------------------------------------------------------
# bus statistics (local queue only)
# ------------------------------------------------------------------------------------------------------------


@bp.route(route="stats/bus", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bearer_auth
@handle_errors
async def bus_stats(req: func.HttpRequest) -> func.HttpResponse:
    require_role(caller(), OPS_ROLE)
    body = await (await get_services()).bus_status()
    return json_response(body, headers={"Cache-Control": "no-store"})
