"""The add-on's functions: the `order-events` subscription trigger and its read API (through the same route
plumbing as every other HTTP function, so it gets the same auth, errors, tracing and latency recording)."""

from __future__ import annotations

import logging
from uuid import UUID

import azure.functions as func
from opentelemetry import trace

from order_functions.addons.notifications.access import listed_customer, order_reader
from order_functions.addons.notifications.service import get_store
from order_functions.contracts.order_events import ORDER_EVENTS_TOPIC, MalformedEvent, OrderEvent, parse_event
from order_functions.interface.auth import bearer_auth, caller
from order_functions.interface.batch_spans import batch_consumer_span
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


@bp.service_bus_topic_trigger(arg_name="msgs", topic_name=ORDER_EVENTS_TOPIC, subscription_name=SUBSCRIPTION,
                              connection="ServiceBusConnection", cardinality=func.Cardinality.MANY)
async def notify_customer(msgs: list[func.ServiceBusMessage]) -> None:
    """A batch per call, applied in one statement. An unreadable message is raised after the readable ones are
    applied: the batch is abandoned, its applied events come back as duplicates (recognised, nothing written again),
    and the unreadable one is dead-lettered after the subscription's max delivery count."""
    events: list[OrderEvent] = []
    poison: list[str] = []
    for msg in msgs:
        try:
            events.append(parse_event(msg.get_body()))
        except MalformedEvent as exc:
            log.error("notifications: poison message %s (delivery %s): %s", msg.message_id, msg.delivery_count, exc)
            poison.append(f"message {msg.message_id}: {exc}")
    if events:
        carriers = [{"traceparent": e.traceparent, "tracestate": e.tracestate} for e in events]
        with batch_consumer_span(tracer, ORDER_EVENTS_TOPIC, ORDER_EVENTS_TOPIC, carriers) as span:
            if len(events) == 1:
                span.set_attribute("valerix.order_id", str(events[0].order_id))
                span.set_attribute("valerix.event_type", events[0].type)
            fresh = await (await get_store()).apply_many(events)
            again = [str(e.event_id) for e, f in zip(events, fresh, strict=True) if not f]
            span.set_attribute("valerix.duplicates", len(again))
            if again:
                log.info("notifications: events %s delivered again; already applied", ", ".join(again))
    if poison:
        raise PoisonEvent("; ".join(poison))


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
