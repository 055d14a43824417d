"""Messages on the `verify-order` queue, whose handler settles a pending order when the inventory answers.

The outbox relay sends them (never the checkout itself): `message_id` derives from the order id and the attempt, so
duplicate detection drops repeats of one attempt while a later attempt (the reconciler's) is a new message."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from opentelemetry import propagate

from order_functions.application.ports import OutgoingMessage


def verify_message(order_id: UUID, attempt: int) -> OutgoingMessage:
    """`verify-{order_id}` for the first attempt, `verify-{order_id}-r{attempt}` after."""
    properties: dict[str, str] = {}
    propagate.inject(properties)  # W3C traceparent: the bus hop stays in the checkout's trace
    message_id = f"verify-{order_id}" if attempt <= 1 else f"verify-{order_id}-r{attempt}"
    body = json.dumps({"order_id": str(order_id), "attempt": attempt}).encode()
    return OutgoingMessage(message_id=message_id, body=body, application_properties=properties)


def parse_verify_body(body: bytes) -> UUID:
    data: Any = json.loads(body)
    return UUID(str(data["order_id"]))
