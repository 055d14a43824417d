"""VerifyOrder (Service Bus queue trigger), reservation events (topic subscription trigger), the reconciler and the
catalogue refresh (timer triggers)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from uuid import UUID

import azure.functions as func
from opentelemetry import context, propagate, trace

from order_functions.application.verify_queue import parse_verify_body
from order_functions.bootstrap import get_services
from order_functions.config import RESERVATION_EVENTS_SUBSCRIPTION, RESERVATION_EVENTS_TOPIC, VERIFY_QUEUE
from order_functions.domain.reservation_events import PoisonEvent, ReservationEvent, parse_reservation_event
from order_functions.interface.batch_spans import batch_consumer_span
from valerix_common.env import env_str

log = logging.getLogger(__name__)
tracer = trace.get_tracer("valerix.orders")

bp = func.Blueprint()  # type: ignore[no-untyped-call]

RECONCILE_SCHEDULE = env_str("RECONCILE_SCHEDULE", "0 */5 * * * *")  # Flex idles between runs; devstack: 5 s
CATALOGUE_REFRESH_SCHEDULE = "*/30 * * * * *"  # the safety net for lost or late stock events


class MalformedVerifyMessage(Exception):
    """A VerifyOrder message nobody can process; raised so the bus keeps it (dead-letter), never deletes it."""


@bp.service_bus_queue_trigger(arg_name="msg", queue_name=VERIFY_QUEUE, connection="ServiceBusConnection")
async def verify_order(msg: func.ServiceBusMessage) -> None:
    try:
        order_id: UUID = parse_verify_body(msg.get_body())
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        # Never dropped: failing the delivery makes the bus redeliver it until its max delivery count, then
        # dead-letter it with its body intact, where an operator can see what was sent (and by what).
        log.error("VerifyOrder message %s is malformed (delivery %s); failing it so the bus dead-letters it: %r",
                  msg.message_id, msg.delivery_count, exc)
        raise MalformedVerifyMessage(f"message {msg.message_id} is not a VerifyOrder message: {exc!r}"[:300]) from exc
    delivery_count = msg.delivery_count or 1
    sent_from = propagate.extract(_carrier(msg.application_properties))
    producer = trace.get_current_span(sent_from).get_span_context()
    links: list[trace.Link] = []
    if trace.get_current_span().get_span_context().is_valid:
        # the Functions worker's trigger context (Azure, OpenTelemetry mode): continue it, link the send
        parent = context.get_current()
        links = [trace.Link(producer)] if producer.is_valid else []
    else:
        parent = sent_from  # the checkout's trace: this span is the send span's child
    attributes: dict[str, Any] = {
        "messaging.system": "servicebus",
        "messaging.operation.type": "process",
        "messaging.destination.name": VERIFY_QUEUE,
        "messaging.message.id": msg.message_id or "",
        "messaging.servicebus.message.delivery_count": delivery_count,
        "valerix.order_id": str(order_id),
    }
    with tracer.start_as_current_span("servicebus process verify-order", context=parent,
                                      kind=trace.SpanKind.CONSUMER, links=links, attributes=attributes) as span:
        order = await (await get_services()).verify_order(order_id, delivery_count)
        if order is not None:
            span.set_attribute("valerix.order_status", order.status.value)


def _carrier(properties: Mapping[Any, Any] | None) -> dict[str, str]:
    """Application properties as a text carrier; the AMQP layer may hand keys and values over as bytes."""
    carrier: dict[str, str] = {}
    for key, value in (properties or {}).items():
        k = key.decode() if isinstance(key, bytes) else str(key)
        carrier[k.lower()] = value.decode() if isinstance(value, bytes) else str(value)
    return carrier


@bp.timer_trigger(schedule=RECONCILE_SCHEDULE, arg_name="timer", run_on_startup=False)
async def reconcile_orders(timer: func.TimerRequest) -> None:
    with tracer.start_as_current_span("timer reconcile-orders", kind=trace.SpanKind.INTERNAL) as span:
        if timer.past_due:
            log.info("reconciler running late")
        report = await (await get_services()).reconcile()
        span.set_attribute("valerix.reenqueued", report.reenqueued)
        span.set_attribute("valerix.cancelled", report.cancelled)


@bp.service_bus_topic_trigger(arg_name="msgs", topic_name=RESERVATION_EVENTS_TOPIC,
                              subscription_name=RESERVATION_EVENTS_SUBSCRIPTION, connection="ServiceBusConnection",
                              cardinality=func.Cardinality.MANY)
async def reservation_events(msgs: list[func.ServiceBusMessage]) -> None:
    """Settles orders the moment the inventory's decisions arrive; stock changes feed the catalogue copy. A batch per
    call, in the order received. An unreadable message is raised after the others are handled: the batch is abandoned
    (the handled ones come back as duplicates, recognised by their event ids) and the unreadable one is dead-lettered
    after the subscription's max delivery count, for an operator."""
    events: list[ReservationEvent] = []
    carriers: list[dict[str, str]] = []
    poison: list[str] = []
    for msg in msgs:
        try:
            events.append(parse_reservation_event(msg.get_body()))
            carriers.append(_carrier(msg.application_properties))
        except PoisonEvent as exc:
            log.error("reservation event %s is unreadable (delivery %s): %s", msg.message_id, msg.delivery_count, exc)
            poison.append(f"message {msg.message_id}: {exc}")
    if events:
        destination = f"{RESERVATION_EVENTS_TOPIC}/{RESERVATION_EVENTS_SUBSCRIPTION}"
        with batch_consumer_span(tracer, RESERVATION_EVENTS_TOPIC, destination, carriers) as span:
            effects = await (await get_services()).reservation_event.batch(events)
            if len(events) == 1:
                handled = effects[0]
                span.set_attribute("valerix.event_type", events[0].event_type)
                span.set_attribute("valerix.effect", handled.effect)
                if handled.order is not None:
                    span.set_attribute("valerix.order_id", str(handled.order.order_id))
                    span.set_attribute("valerix.order_status", handled.order.status.value)
            else:
                span.set_attribute("valerix.applied", sum(1 for h in effects if h.effect == "applied"))
    if poison:
        raise PoisonEvent("; ".join(poison))


@bp.timer_trigger(schedule=CATALOGUE_REFRESH_SCHEDULE, arg_name="timer", run_on_startup=False)
async def refresh_catalogue(timer: func.TimerRequest) -> None:
    with tracer.start_as_current_span("timer refresh-catalogue", kind=trace.SpanKind.INTERNAL) as span:
        span.set_attribute("valerix.rows", await (await get_services()).catalogue.refresh())
