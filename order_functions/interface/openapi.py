"""The API contract as an OpenAPI 3.1 document, served at `GET /api/openapi.json` (anonymous).

Written by hand next to the routes it describes; a test checks every registered HTTP route is in it, and another
fuzzes the running stack from it (schemathesis) for 5xx answers and answers the document does not allow.
"""

from __future__ import annotations

import functools
from typing import Any

from order_functions.domain.identifiers import MAX_CUSTOMER_ID_LENGTH, MAX_IDEMPOTENCY_KEY_LENGTH
from order_functions.domain.models import OrderStatus
from order_functions.domain.query_params import MAX_LIMIT
from order_functions.domain.validation import MAX_ITEMS, MAX_QUANTITY

JSON = "application/json"
PROBLEM = "application/problem+json"
ORDER_ID = {"type": "string", "format": "uuid"}
PROBLEM_CODES = {
    "400": "Malformed request: not JSON, nested too deep, a number too long, duplicate keys, a bad query parameter",
    "401": "No valid bearer token (`WWW-Authenticate: Bearer …`)",
    "403": "Authenticated, but not allowed (a missing role, or a body naming another customer)",
    "404": "No such order (or not the caller's: told apart from a missing one by nobody)",
    "409": "The order is rejected, or a request with this Idempotency-Key is still in flight",
    "413": "Request body too large",
    "415": "Unsupported media type",
    "422": "Readable, but breaks the rules (field errors listed)",
    "429": "Too many orders in a short time (`Retry-After`)",
    "503": "A dependency is unavailable; retry after `Retry-After`",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problems(*codes: str) -> dict[str, Any]:
    return {code: {"description": PROBLEM_CODES[code], "content": {PROBLEM: {"schema": _ref("Problem")}}}
            for code in codes}


def _json(description: str, schema: dict[str, Any], **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        answer["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                             for name, text in headers.items()}
    return answer


def _operation(summary: str, responses: dict[str, Any], *, anonymous: bool = False, **extra: Any) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    if anonymous:
        operation["security"] = []
    return operation


SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object", "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
            "detail": {"type": "string"}, "instance": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "field": {"type": "string"}, "message": {"type": "string"}}}},
        },
    },
    "LineItem": {
        "type": "object", "required": ["product_id", "quantity"], "additionalProperties": False,
        "properties": {
            "product_id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
            "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
        },
    },
    "CheckoutRequest": {
        "type": "object", "required": ["items"], "additionalProperties": False,
        "properties": {
            "customer_id": {"type": "string", "maxLength": MAX_CUSTOMER_ID_LENGTH,
                            "description": "optional; must be the signed-in customer (the token's subject)"},
            "items": {"type": "array", "minItems": 1, "maxItems": MAX_ITEMS, "items": _ref("LineItem")},
        },
    },
    "Order": {
        "type": "object", "required": ["order_id", "customer_id", "status", "items"],
        "properties": {
            "order_id": ORDER_ID, "customer_id": {"type": "string"},
            "status": {"type": "string", "enum": [s.value for s in OrderStatus]},
            "items": {"type": "array", "items": _ref("LineItem")},
            "reason": {"type": "string"}, "message": {"type": "string"},
            "created_at": {"type": "string"}, "updated_at": {"type": "string"},
            "settled_via": {"type": ["string", "null"]}, "settled_at": {"type": ["string", "null"]},
        },
    },
    "OrderPage": {
        "type": "object", "required": ["orders", "next_cursor"],
        "properties": {"orders": {"type": "array", "items": _ref("Order")},
                       "next_cursor": {"type": ["string", "null"]}},
    },
    "Products": {
        "type": "object", "required": ["products"],
        "properties": {"products": {"type": "array", "items": {"type": "object", "required": ["product_id"]}},
                       "as_of": {"type": ["string", "null"]}, "source": {"type": "string"},
                       "complete": {"type": "boolean"}},
    },
    "Health": {
        "type": "object", "required": ["status", "checks"],
        "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]},
                       "checks": {"type": "object", "additionalProperties": {
                           "type": "object", "required": ["status"],
                           "properties": {"status": {"type": "string", "enum": ["ok", "failed"]}}}}},
    },
    "Notifications": {
        "type": "object", "required": ["notifications"],
        "properties": {
            "order_id": ORDER_ID, "customer_id": {"type": "string"},
            "notifications": {"type": "array", "items": {
                "type": "object", "required": ["event_id", "order_id", "customer_id", "type", "message", "occurred_at"],
                "properties": {"event_id": {"type": "string", "format": "uuid"}, "order_id": ORDER_ID,
                               "customer_id": {"type": "string"}, "type": {"type": "string"},
                               "message": {"type": "string"}, "occurred_at": {"type": "string"}}}},
        },
    },
    "ChaosSettings": {
        "type": "object",
        "properties": {"gremlin_enabled": {"type": "boolean"}, "min_delay_s": {"type": "number"},
                       "max_delay_s": {"type": "number"}, "pattern": {"type": "string"},
                       "crash_rate": {"type": "number"}},
    },
}

ORDER_ID_PARAMETER = {"name": "order_id", "in": "path", "required": True, "schema": ORDER_ID}
ORDER_ANSWERS = {
    "200": _json("The order", _ref("Order")),
    "201": _json("Created and confirmed", _ref("Order"), Location="the order's URL"),
    "202": _json("Accepted: the stock is still being confirmed; poll `Location`", _ref("Order"),
                 Location="the order's URL", **{"Retry-After": "seconds"}),
}


def _paths() -> dict[str, Any]:
    customer = {"type": "string", "maxLength": MAX_CUSTOMER_ID_LENGTH}
    return {
        "/orders": {
            "post": _operation(
                "Place an order in the caller's name", {
                    **{k: v for k, v in ORDER_ANSWERS.items() if k != "200"},
                    "200": _json("A cancelled order replayed for this Idempotency-Key", _ref("Order")),
                    "409": {"description": PROBLEM_CODES["409"],
                            "content": {JSON: {"schema": _ref("Order")}, PROBLEM: {"schema": _ref("Problem")}}},
                    **_problems("400", "401", "403", "413", "422", "429", "503")},
                parameters=[{"name": "Idempotency-Key", "in": "header", "required": False,
                             "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH}}],
                requestBody={"required": True, "content": {JSON: {
                    "schema": _ref("CheckoutRequest"),
                    "example": {"items": [{"product_id": "VLX-KB-001", "quantity": 1}]}}}}),
            "get": _operation(
                "The caller's orders, newest first (everybody's, or another customer's, for `ops`)",
                {"200": _json("A page of orders", _ref("OrderPage")), **_problems("400", "401", "403", "503")},
                parameters=[
                    {"name": "status", "in": "query", "schema": {"type": "string",
                                                                  "enum": [s.value for s in OrderStatus]}},
                    {"name": "customer_id", "in": "query", "schema": customer},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}},
                    {"name": "cursor", "in": "query", "schema": {"type": "string", "maxLength": 128}},
                ]),
        },
        "/orders/{order_id}": {"get": _operation(
            "One of the caller's orders", {"200": ORDER_ANSWERS["200"], **_problems("400", "401", "404", "503")},
            parameters=[ORDER_ID_PARAMETER])},
        "/orders/{order_id}/cancel": {"post": _operation(
            "Cancel one of the caller's orders", {
                "200": ORDER_ANSWERS["200"], "202": _json("Cancellation accepted; the release finishes later",
                                                          _ref("Order")),
                "409": {"description": PROBLEM_CODES["409"], "content": {PROBLEM: {"schema": _ref("Problem")}}},
                **_problems("400", "401", "404", "503")},
            parameters=[ORDER_ID_PARAMETER])},
        "/orders/{order_id}/ship": {"post": _operation(
            "Operations: a confirmed order has left the warehouse (`ops`; a replay answers 200 again)", {
                "200": ORDER_ANSWERS["200"],
                "409": {"description": PROBLEM_CODES["409"], "content": {PROBLEM: {"schema": _ref("Problem")}}},
                **_problems("400", "401", "403", "404", "503")},
            parameters=[ORDER_ID_PARAMETER])},
        "/products": {"get": _operation("The catalogue with stock", {
            "200": _json("Products", _ref("Products")), **_problems("401", "503")})},
        "/health": {"get": _operation("ok / failed per dependency (details with an `ops` token)", {
            "200": _json("All dependencies ok", _ref("Health")),
            "503": _json("A dependency failed", _ref("Health"))}, anonymous=True)},
        "/openapi.json": {"get": _operation("This document", {"200": _json("OpenAPI 3.1", {"type": "object"})},
                                            anonymous=True)},
        "/stats/latency": {"get": _operation("The Order Service's own response times (`ops`)", {
            "200": _json("Rolling window", {"type": "object"}), **_problems("401", "403")})},
        "/stats/bus": {"get": _operation("The verify-order queue's counts (`ops`)", {
            "200": _json("Queue statistics", {"type": "object"}), **_problems("401", "403", "503")})},
        "/ops/chaos": {
            "get": _operation("The inventory's chaos switches (`ops`)", {
                "200": _json("Current settings", _ref("ChaosSettings")), **_problems("401", "403", "404", "503")}),
            "post": _operation("Change the inventory's chaos switches (`ops`, JSON only)", {
                "200": _json("Applied settings", _ref("ChaosSettings")),
                **_problems("400", "401", "403", "404", "413", "415", "422", "503")},
                requestBody={"required": True, "content": {JSON: {"schema": _ref("ChaosSettings")}}}),
        },
        "/dashboard": {"get": _operation("The live dashboard page", {
            "200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}},
            "304": {"description": "Not modified"}}, anonymous=True)},
        "/dashboard/{path}": {"get": _operation("A static file of the dashboard", {
            "200": {"description": "The file", "content": {"*/*": {"schema": {}}}},
            "304": {"description": "Not modified"}, "308": {"description": "To the canonical page URL"},
            **_problems("404")}, anonymous=True,
            parameters=[{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}])},
    }


def _notification_paths() -> dict[str, Any]:
    """The notifications add-on's read API (order_functions/addons/notifications), by the orders' ownership rules."""
    return {
        "/orders/{order_id}/notifications": {"get": _operation(
            "The notifications of one of the caller's orders (any order's for `ops`; somebody else's order reads"
            " as one without notifications)",
            {"200": _json("Oldest first", _ref("Notifications")), **_problems("400", "401", "503")},
            parameters=[ORDER_ID_PARAMETER])},
        "/notifications": {"get": _operation(
            "The caller's notifications, newest first (another customer's for `ops`)",
            {"200": _json("At most 100", _ref("Notifications")), **_problems("401", "403", "422", "503")},
            parameters=[{"name": "customer_id", "in": "query",
                         "schema": {"type": "string", "minLength": 1, "maxLength": 128}}])},
    }


@functools.cache
def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Valerix Order Service", "version": "2",
                 "description": "Checkout, orders and their state. Every call but /health, this document and the "
                                "dashboard's files needs `Authorization: Bearer <JWT>` (docs/identity.md)."},
        "servers": [{"url": "/api"}],
        "security": [{"bearer": []}],
        "paths": {**_paths(), **_notification_paths()},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                           "description": "An access token from the configured issuer (AUTH_ISSUER)"
                                                          " for the API's audience (AUTH_AUDIENCE)"}},
            "schemas": SCHEMAS,
        },
    }
