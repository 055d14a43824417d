"""VerifyOrder (Service Bus trigger) and the reconciler (timer trigger)."""

from __future__ import annotations

import json
import logging
from uuid import UUID

import azure.functions as func
from opentelemetry import context, propagate, trace

from order_functions.application.service import parse_verify_body
from order_functions.infrastructure.container import get_resources

log = logging.getLogger(__name__)
tracer = trace.get_tracer("valerix.orders")

bp = func.Blueprint()  # type: ignore[no-untyped-call]

VERIFY_QUEUE = "verify-order"  # literal: the trigger binding is read before app settings are; Bicep declares it
RECONCILE_SCHEDULE = "*/5 * * * * *"


@bp.service_bus_queue_trigger(arg_name="msg", queue_name=VERIFY_QUEUE, connection="ServiceBusConnection")
async def verify_order(msg: func.ServiceBusMessage) -> None:
    try:
        order_id: UUID = parse_verify_body(msg.get_body())
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        # a malformed message can never succeed: record it loudly and let it go rather than retry it 10 times
        log.error("VerifyOrder message %s is malformed and was dropped: %r", msg.message_id, exc)
        return
    carrier = {str(k): str(v) for k, v in (msg.application_properties or {}).items()}
    token = context.attach(propagate.extract(carrier))
    try:
        with tracer.start_as_current_span("servicebus process verify-order", kind=trace.SpanKind.CONSUMER) as span:
            span.set_attribute("valerix.order_id", str(order_id))
            span.set_attribute("messaging.message.id", msg.message_id or "")
            span.set_attribute("messaging.delivery_count", msg.delivery_count or 0)
            order = await (await get_resources()).service.verify(order_id, msg.delivery_count or 1)
            if order is not None:
                span.set_attribute("valerix.order_status", order.status.value)
    finally:
        context.detach(token)


@bp.timer_trigger(schedule=RECONCILE_SCHEDULE, arg_name="timer", run_on_startup=False)
async def reconcile_orders(timer: func.TimerRequest) -> None:
    if timer.past_due:
        log.info("reconciler running late")
    await (await get_resources()).service.reconcile()
