"""The topics and subscriptions the product uses, declared for the local bus as infra/ declares them in Azure.

A message sent to a topic is copied to the subscriptions that exist at that moment (as in Service Bus), so the
local bus creates these when its schema is ensured, before any publisher or consumer runs.
"""

from __future__ import annotations

RESERVATION_EVENTS_TOPIC = "reservation-events"
ORDER_EVENTS_TOPIC = "order-events"
ORDER_SERVICE_SUBSCRIPTION = "order-service"  # infra/modules/servicebus.bicep names it the same

DEFAULT_SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    # the Order Service settles orders and feeds its catalogue copy from this one
    RESERVATION_EVENTS_TOPIC: (ORDER_SERVICE_SUBSCRIPTION,),
    ORDER_EVENTS_TOPIC: ("notifications",),  # the notifications add-on
}
