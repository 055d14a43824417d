"""The add-on's functions: the `order-events` subscription trigger and its read API (through the same route
plumbing as every other HTTP function, so it gets the same auth, errors, tracing and latency recording)."""

from __future__ import annotations

import logging
from uuid import UUID

import azure.functions as func
from opentelemetry import propagate, trace

from order_functions.addons.notifications.access import listed_customer, order_reader
from order_functions.addons.notifications.service import get_store
from order_functions.contracts.order_events import ORDER_EVENTS_TOPIC, MalformedEvent, parse_event
from order_functions.interface.auth import bearer_auth, caller
from order_functions.interface.http_support import api, json_response
from order_functions.interface.problems import Problem

log = logging.getLogger(__name__)
tracer = trace.get_tracer("valerix.addons.notifications")

bp = func.Blueprint()  # type: ignore[no-untyped-call]

SUBSCRIPTION = "notifications"
MAX_LISTED = 100


class PoisonEvent(Exception):
    """A message that can never be applied: raising abandons it, and the subscription dead-letters it after its
    max delivery count (the Service Bus trigger's only dead-letter path outside C#)."""


@bp.service_bus_topic_trigger(arg_name="msg", topic_name=ORDER_EVENTS_TOPIC, subscription_name=SUBSCRIPTION,
                              connection="ServiceBusConnection")
async def notify_customer(msg: func.ServiceBusMessage) -> None:
    try:
        event = parse_event(msg.get_body())
    except MalformedEvent as exc:
        log.error("notifications: poison message %s (delivery %s): %s", msg.message_id, msg.delivery_count, exc)
        raise PoisonEvent(f"message {msg.message_id}: {exc}") from exc
    parent = propagate.extract({"traceparent": event.traceparent, "tracestate": event.tracestate})
    with tracer.start_as_current_span(
        f"servicebus process {ORDER_EVENTS_TOPIC}", context=parent, kind=trace.SpanKind.CONSUMER,
        attributes={"messaging.system": "servicebus", "messaging.destination.name": ORDER_EVENTS_TOPIC,
                    "messaging.message.id": msg.message_id or "", "valerix.order_id": str(event.order_id),
                    "valerix.event_type": event.type},
    ) as span:
        fresh = await (await get_store()).apply(event)
        span.set_attribute("valerix.duplicate", not fresh)
        if not fresh:
            log.info("notifications: event %s delivered again; already applied", event.event_id)


@bp.route(route="orders/{order_id}/notifications", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bearer_auth
@api
async def order_notifications(req: func.HttpRequest) -> func.HttpResponse:
    raw = req.route_params.get("order_id", "")
    try:
        order_id = UUID(raw)
    except ValueError:
        raise Problem(400, "Malformed order id", f"{raw[:64]!r} is not an order id (a UUID)",
                      "malformed-request") from None
    # somebody else's order reads like one without notifications (existence is not told apart)
    found = await (await get_store()).for_order(order_id, customer_id=order_reader(caller()))
    return json_response({"order_id": str(order_id), "notifications": [n.to_json() for n in found]})


@bp.route(route="notifications", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@bearer_auth
@api
async def customer_notifications(req: func.HttpRequest) -> func.HttpResponse:
    requested = (req.params.get("customer_id") or "").strip()
    if len(requested) > 128 or ("customer_id" in req.params and not requested):
        raise Problem(422, "Validation failed", "customer_id must be 1-128 characters (or left out)",
                      "validation-failed", errors=[{"field": "customer_id", "message": "1-128 characters"}])
    customer_id = listed_customer(caller(), requested or None)
    found = await (await get_store()).for_customer(customer_id, MAX_LISTED)
    return json_response({"customer_id": customer_id, "notifications": [n.to_json() for n in found]})
