"""The topics and subscriptions the product uses, declared for the local bus as infra/ declares them in Azure.

A message sent to a topic is copied to the subscriptions that exist at that moment (as in Service Bus), so the
local bus creates these when its schema is ensured, before any publisher or consumer runs.
"""

from __future__ import annotations

RESERVATION_EVENTS_TOPIC = "reservation-events"
ORDER_EVENTS_TOPIC = "order-events"

DEFAULT_SUBSCRIPTIONS: dict[str, tuple[str, ...]] = {
    RESERVATION_EVENTS_TOPIC: ("orders",),  # the Order Service settles orders and feeds its catalogue copy
    ORDER_EVENTS_TOPIC: ("notifications",),  # the notifications add-on
}
