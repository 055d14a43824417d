"""VerifyOrder (Service Bus trigger) and the reconciler (timer trigger)."""

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
from order_functions.config import VERIFY_QUEUE
from valerix_common.env import env_str

log = logging.getLogger(__name__)
tracer = trace.get_tracer("valerix.orders")

bp = func.Blueprint()  # type: ignore[no-untyped-call]

RECONCILE_SCHEDULE = env_str("RECONCILE_SCHEDULE", "0 */5 * * * *")  # Flex idles between runs; devstack: 5 s


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
